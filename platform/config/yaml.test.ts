import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryConfigSource } from './fs-source.ts';
import { loadYamlFile, parseYamlText } from './yaml.ts';
import { formatIssue } from './spec.ts';

const Schema = z.object({
  upstreams: z.array(z.string().regex(/^\d+\.\d+\.\d+\.\d+$/, 'expected an IPv4 address')),
  cache: z.object({ size: z.number().int().positive() }).strict(),
}).strict();

describe('YAML config files', () => {
  it('maps schema problems to file, line and field', () => {
    const r = parseYamlText('dns/dns.yaml', 'upstreams:\n  - 192.0.2.1\n  - not-an-ip\ncache:\n  size: -4\n', Schema);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map(formatIssue)).toEqual([
      'dns/dns.yaml:3: upstreams.1: expected an IPv4 address',
      'dns/dns.yaml:5: cache.size: Too small: expected number to be >0',
    ]);
  });
  it('points a missing key at its parent mapping and an unknown key at itself', () => {
    const r = parseYamlText('x.yaml', 'upstreams: []\ncache:\n  sise: 3\n', Schema);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => [i.line, i.field, i.message])).toEqual([
      [3, 'cache.size', 'Invalid input: expected number, received undefined'],
      [3, 'cache.sise', "unknown key 'sise'"],
    ]);
  });
  it('reports YAML syntax errors with their line', () => {
    const r = parseYamlText('x.yaml', 'upstreams: [1.2.3.4\ncache: {size: 1}\nfoo: : bar\n', Schema);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.line).toBeGreaterThanOrEqual(1);
  });
  it('refuses duplicate keys and alias bombs without hanging', () => {
    const dup = parseYamlText('x.yaml', 'cache: {size: 1}\ncache: {size: 2}\nupstreams: []\n', Schema);
    expect(dup.ok).toBe(false);
    const bomb = 'a: &a [x,x,x,x,x,x,x,x,x]\n' + Array.from({ length: 8 }, (_, i) => `${'b'.repeat(i + 1)}: &${'b'.repeat(i + 1)} [${Array(9).fill(i === 0 ? '*a' : '*' + 'b'.repeat(i)).join(',')}]`).join('\n') + '\n';
    // 9^9 nodes if expanded: it is refused by the alias count before any expansion (the
    // message says so), which is what keeps it from hanging; the time is printed, not asserted.
    const t0 = performance.now();
    const r = parseYamlText('bomb.yaml', bomb, Schema);
    process.stdout.write(`yaml alias bomb refused in ${(performance.now() - t0).toFixed(1)} ms\n`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.message).toMatch(/alias/i);
  });
  it('validates an absent file as {} unless it is required', async () => {
    const src = memoryConfigSource({});
    const opt = await loadYamlFile(src, 'dns/dns.yaml', z.object({ a: z.number().default(1) }));
    expect(opt).toEqual({ ok: true, value: { a: 1 } });
    const req = await loadYamlFile(src, 'dns/dns.yaml', Schema, { missing: 'error' });
    expect(req).toEqual({ ok: false, issues: [{ file: 'dns/dns.yaml', message: 'file is missing' }] });
  });
});
