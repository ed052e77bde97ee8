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

describe('package READMEs link only to what their tarball holds', () => {
  for (const pkg of readdirSync(packages).sort())
    it(`${pkg}: every relative link resolves inside the published package`, () => {
      const dir = new URL(`${pkg}/`, packages);
      const manifest = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { files?: string[] };
      const published = ['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json', ...(manifest.files ?? [])];
      const text = readFileSync(new URL('README.md', dir), 'utf8').replace(/```[\s\S]*?```/g, '');
      const bad: string[] = [];
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:|#)/.test(target!)) continue;
        const path = target!.split('#')[0]!.replace(/^\.\//, '');
        const top = path.split('/')[0]!;
        if (path.startsWith('../') || !published.some((f) => f === top || f === path)) bad.push(target!);
      }
      expect(bad, `${pkg}/README.md links outside its tarball`).toEqual([]);
    });
});
