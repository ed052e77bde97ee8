import type { TestContext } from 'vitest';

export const inGuest: boolean;
export function kernelConfigFile(): { source: string; options: Map<string, string> } | undefined;
export interface FeatureCheck {
  /** Config options that must be `y` or `m` in /proc/config.gz. */
  config?: string[];
  /** A load that the kernel refuses (a BpfError) when it lacks the feature. */
  probe?: () => void;
}
export function lackOf(how?: FeatureCheck): string | undefined;
export function requireFeature(ctx: TestContext, feature: string, how: FeatureCheck): void;
export function errorOf(fn: () => unknown): Error;
