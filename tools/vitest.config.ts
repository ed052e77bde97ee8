import { defineProject } from 'vitest/config';
import { packageTestConfig } from './vitest/config.js';

export default defineProject(packageTestConfig('tools'));
