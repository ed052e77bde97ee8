import { defineProject } from 'vitest/config';
import { packageTestConfig } from '../../tools/vitest/config.js';

export default defineProject(packageTestConfig('exporter'));
