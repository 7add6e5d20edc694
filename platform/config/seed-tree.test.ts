import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readTree, seedMissingFiles } from './seed-tree.ts';

const seedTree = (from: string, to: string) => seedMissingFiles(to, readTree(from));

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('seedMissingFiles', () => {
  it('copies missing files only, keeping the owner\'s edits', () => {
    dir = mkdtempSync(join(tmpdir(), 'kith-seed-'));
    const from = join(dir, 'defaults');
    const to = join(dir, 'config');
    mkdirSync(join(from, 'dns/zones'), { recursive: true });
    writeFileSync(join(from, 'dns/dns.yaml'), 'default\n');
    writeFileSync(join(from, 'dns/zones/home.arpa.zone'), 'zone\n');
    writeFileSync(join(from, 'storage.yaml'), 's\n');
    symlinkSync('/etc/passwd', join(from, 'link')); // never followed out of the tree
    mkdirSync(join(to, 'dns'), { recursive: true });
    writeFileSync(join(to, 'dns/dns.yaml'), 'edited\n');
    expect(seedTree(from, to)).toEqual(['dns/zones/home.arpa.zone', 'storage.yaml']);
    expect(readFileSync(join(to, 'dns/dns.yaml'), 'utf8')).toBe('edited\n');
    expect(readFileSync(join(to, 'dns/zones/home.arpa.zone'), 'utf8')).toBe('zone\n');
    expect(seedTree(from, to)).toEqual([]);
  });
});
