import type { UserWorkspaceConfig } from 'vitest/config';
export function packageTestConfig(name: string): UserWorkspaceConfig;
