/**
 * The tree's shape, checked: the layering rules of docs/architecture.md hold for every
 * non-test source file, and a service bundle holds no other service's code.
 *   - nothing under platform/ imports from installer/ or services/;
 *   - a service imports no other service (they meet through links and the config registry);
 *   - there is no import circle anywhere.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleService } from '../../platform/build/bundle.ts';

const REPO = resolve(import.meta.dirname, '../..');
const TOP = ['platform', 'services', 'installer'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'testdata' || name === 'test') continue;
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of a file (static, re-exports and type-only ones too), as repo paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.map((s) => relative(REPO, resolve(dirname(file), s)));
}

const files = TOP.flatMap((t) => sources(join(REPO, t)));
const graph = new Map(files.map((f) => [relative(REPO, f), importsOf(f)]));

describe('the tree', () => {
  it('platform/ imports nothing from installer/ or services/', () => {
    const bad = [...graph].flatMap(([f, deps]) => (f.startsWith('platform/') ? deps.filter((d) => d.startsWith('installer/') || d.startsWith('services/')).map((d) => `${f} -> ${d}`) : []));
    expect(bad).toEqual([]);
  });

  it('no service imports another service', () => {
    const serviceOf = (p: string) => (p.startsWith('services/') ? p.split('/')[1] : undefined);
    const bad = [...graph].flatMap(([f, deps]) => {
      const own = serviceOf(f);
      return own ? deps.filter((d) => serviceOf(d) !== undefined && serviceOf(d) !== own).map((d) => `${f} -> ${d}`) : [];
    });
    // Files directly in services/ (not in a service's folder) would be shared service code.
    const loose = [...graph.keys()].filter((f) => /^services\/[^/]+$/.test(f));
    expect([...bad, ...loose]).toEqual([]);
  });

  it('has no import circles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'visiting');
      stack.push(f);
      for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d);
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f);
    expect(cycles).toEqual([]);
  });

  it('dist/storage.mjs holds no other service\'s code (it validates through the config registry)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kith-arch-'));
    const report = await bundleService('storage', join(REPO, 'services/storage/main.ts'), out).finally(() => rmSync(out, { recursive: true, force: true }));
    const foreign = report.contributors.map((c) => c.input).filter((i) => /(^|\/)services\//.test(i) && !/(^|\/)services\/storage\//.test(i));
    expect(foreign).toEqual([]);
    expect(report.packages.map((p) => p.name)).not.toContain('dns-packet');
  });
});
