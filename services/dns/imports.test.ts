// The DNS service's import graph has no circles (issue 10: auth/answer.ts ↔ auth/axfr.ts was
// the tree's only one), and the wire layer is the bottom: wire/ imports nothing else of dns.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = import.meta.dirname;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'node_modules') out.push(...sources(p)); }
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of a file (type-only ones too: a circle of types is still a circle). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s+['"](\.[^'"]+)['"]|^\s*import\s+['"](\.[^'"]+)['"]/gm)) {
    out.push(resolve(dirname(file), m[1] ?? m[2]));
  }
  return out;
}

function graph(): Map<string, string[]> {
  const files = sources(ROOT);
  const g = new Map<string, string[]>();
  for (const f of files) g.set(f, importsOf(f).filter((t) => t.startsWith(ROOT + '/')));
  return g;
}

/** Every circle found by a depth-first search, as a list of paths relative to services/dns. */
export function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const m of g.get(n) ?? []) {
      if (state.get(m) === 1) found.push([...stack.slice(stack.indexOf(m)), m].map((p) => relative(ROOT, p)));
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of g.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('services/dns imports', () => {
  it('finds a circle when there is one (the check itself works)', () => {
    const g = new Map([['/a', ['/b']], ['/b', ['/c']], ['/c', ['/a']], ['/d', ['/a']]]);
    expect(cycles(g)).toHaveLength(1);
  });

  it('have no circles', () => {
    expect(cycles(graph())).toEqual([]);
  });

  it('import no other service (only platform/ from outside services/dns)', () => {
    const services = resolve(ROOT, '..');
    const out: string[] = [];
    for (const f of sources(ROOT)) {
      for (const t of importsOf(f)) if (t.startsWith(services + '/') && !t.startsWith(ROOT + '/')) out.push(`${relative(ROOT, f)} → ${relative(services, t)}`);
    }
    expect(out).toEqual([]);
  });

  it('wire/ is the bottom layer: it imports nothing of dns outside wire/', () => {
    const g = graph();
    const up = [...g].filter(([f]) => relative(ROOT, f).startsWith('wire/') && !f.endsWith('.test.ts')).flatMap(([f, ts]) =>
      ts.filter((t) => !relative(ROOT, t).startsWith('wire/')).map((t) => `${relative(ROOT, f)} → ${relative(ROOT, t)}`));
    expect(up).toEqual([]);
  });

  it('one name reader and one constants table: no other file defines them', () => {
    const offenders: string[] = [];
    for (const f of sources(ROOT)) {
      const rel = relative(ROOT, f);
      if (rel.endsWith('.test.ts') || rel === 'imports.test.ts') continue;
      const text = readFileSync(f, 'utf8');
      if (rel !== 'wire/name.ts' && /function (readName|encodeName)\b/.test(text)) offenders.push(`${rel}: defines a name reader/encoder`);
      if (rel !== 'wire/constants.ts' && /\b(NOERROR|SERVFAIL)\s*:\s*[0-9]/.test(text)) offenders.push(`${rel}: its own rcode table`);
      if (rel !== 'wire/constants.ts' && /\bCNAME\s*:\s*5\b/.test(text)) offenders.push(`${rel}: its own type table`);
    }
    expect(offenders).toEqual([]);
  });
});
