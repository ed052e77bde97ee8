// Every README's example (the root one and each package's) is run here against the real
// kernel, so the docs cannot rot.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';

const packages = new URL('../../packages/', import.meta.url);
const tmp = new URL(`./.readme-${process.pid}/`, import.meta.url);
mkdirSync(tmp, { recursive: true });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The first ```ts block after the "## Example" heading. */
function example(readme: string): string | undefined {
  const at = readme.indexOf('## Example');
  if (at < 0) return undefined;
  return /```ts\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
}

async function run(name: string, readme: URL): Promise<void> {
  const code = example(readFileSync(readme, 'utf8'));
  expect(code, `${readme.pathname} needs a "## Example" with a ts block`).toBeDefined();
  const file = new URL(`${name}.ts`, tmp);
  writeFileSync(file, code!);
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await import(file.pathname);
  } finally {
    log.mockRestore();
  }
}

describe('README examples run', () => {
  it('the root README: loads an object, attaches it, reads events', () =>
    run('root', new URL('../../README.md', import.meta.url)));
  for (const pkg of readdirSync(packages).sort())
    it(`${pkg}: its example runs`, () => run(pkg, new URL(`${pkg}/README.md`, packages)));
});
