import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fsConfigSource, memoryConfigSource } from './fs-source.ts';

describe('config sources', () => {
  it('reads and lists inside the tree, and refuses to leave it', async () => {
    const outside = mkdtempSync(path.join(tmpdir(), 'kith-outside-'));
    writeFileSync(path.join(outside, 'secret'), 'no');
    const root = mkdtempSync(path.join(tmpdir(), 'kith-src-'));
    mkdirSync(path.join(root, 'dns/zones'), { recursive: true });
    writeFileSync(path.join(root, 'dns/dns.yaml'), 'a: 1\n');
    symlinkSync(path.join(outside, 'secret'), path.join(root, 'dns/escape'));
    const src = fsConfigSource(root);
    expect(await src.read('dns/dns.yaml')).toBe('a: 1\n');
    expect(await src.list('dns')).toEqual(['dns.yaml', 'escape', 'zones/']);
    expect(await src.read('../' + path.basename(outside) + '/secret')).toBeUndefined();
    expect(await src.read(path.join(outside, 'secret'))).toBeUndefined();
    expect(await src.read('dns/escape')).toBeUndefined();
    expect(await src.read('dns/missing')).toBeUndefined();
    expect(await src.read('dns/zones')).toBeUndefined();
  });
  it('lists an in-memory tree like a folder', async () => {
    const src = memoryConfigSource({ 'dns/dns.yaml': 'x', 'dns/zones/a.zone': 'y', 'mail/m.yaml': 'z' });
    expect(await src.list('')).toEqual(['dns/', 'mail/']);
    expect(await src.list('dns')).toEqual(['dns.yaml', 'zones/']);
    expect(await src.read('dns/zones/a.zone')).toBe('y');
    expect(await src.read('constructor')).toBeUndefined();
  });
});
