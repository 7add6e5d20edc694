import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/platform/helpers.ts';
import { bundleIsFresh, ensureProcessBundle } from './process-bundle.ts';

/** A checkout of two modules: main.ts prints what word.ts exports. */
function checkout(word: string): string {
  const root = tempDir('kith-process-bundle-');
  writeFileSync(path.join(root, 'word.ts'), `export const word: string = ${JSON.stringify(word)};\n`);
  writeFileSync(path.join(root, 'main.ts'), `import { word } from './word.ts';\nprocess.stdout.write(word);\n`);
  return root;
}
const run = (file: string) => execFileSync(process.execPath, [file], { encoding: 'utf8' });

describe('process bundles', () => {
  it('builds once, then rebuilds only when a source changed', async () => {
    const root = checkout('one');
    const out = path.join(root, 'dist', 'p.cjs');
    expect(bundleIsFresh(root, out)).toBe(false);
    const first = await ensureProcessBundle(root, 'main.ts', out);
    expect(first).toMatchObject({ outfile: out, built: true });
    expect(run(out)).toBe('one');
    expect(readFileSync(out, 'utf8')).not.toMatch(/^import /m); // CommonJS, Node starts it without its ESM loader
    expect(await ensureProcessBundle(root, 'main.ts', out)).toMatchObject({ built: false, bytes: first.bytes });

    writeFileSync(path.join(root, 'word.ts'), 'export const word: string = "two";\n');
    expect(bundleIsFresh(root, out)).toBe(false);
    expect(await ensureProcessBundle(root, 'main.ts', out)).toMatchObject({ built: true });
    expect(run(out)).toBe('two');
  });

  it('rebuilds when the bundle or its record is missing or unreadable, or an input is gone', async () => {
    const root = checkout('three');
    const out = path.join(root, 'dist', 'p.cjs');
    await ensureProcessBundle(root, 'main.ts', out);
    rmSync(out);
    expect(await ensureProcessBundle(root, 'main.ts', out)).toMatchObject({ built: true });
    writeFileSync(`${out}.inputs.json`, '{ not json');
    expect(await ensureProcessBundle(root, 'main.ts', out)).toMatchObject({ built: true });
    writeFileSync(`${out}.inputs.json`, JSON.stringify({ recipe: 'other', inputs: {} }));
    expect(bundleIsFresh(root, out)).toBe(false);
    await ensureProcessBundle(root, 'main.ts', out);
    const record = JSON.parse(readFileSync(`${out}.inputs.json`, 'utf8')) as { inputs: Record<string, string> };
    expect(Object.keys(record.inputs).sort()).toEqual(['main.ts', 'word.ts']);
    record.inputs['gone.ts'] = '0'.repeat(64);
    writeFileSync(`${out}.inputs.json`, JSON.stringify(record));
    expect(bundleIsFresh(root, out)).toBe(false);
    expect(run(out)).toBe('three');
  });

  it('two builds at once each leave a whole bundle', async () => {
    const root = checkout('four');
    const out = path.join(root, 'dist', 'p.cjs');
    const [a, b] = await Promise.all([ensureProcessBundle(root, 'main.ts', out), ensureProcessBundle(root, 'main.ts', out)]);
    expect(a.bytes).toBe(b.bytes);
    expect(run(out)).toBe('four');
    expect(bundleIsFresh(root, out)).toBe(true);
  });
});
