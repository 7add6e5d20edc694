import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { loadOrCreateKey, startSigning } from './dkim.ts';

const MSG = 'From: me@example.org\r\nTo: you@example.net\r\nSubject: hello\r\nDate: Wed, 02 Dec 2026 07:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nBody line\r\n\r\n';

describe('DKIM keys and signing', () => {
  it('makes a key per selector (0600, kept across loads) and signs so that an independent verifier passes both', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-dkim-'));
    const ed = await loadOrCreateKey(dir, 'ed', 'ed25519');
    const rsa = await loadOrCreateKey(dir, 'rsa', 'rsa');
    expect(statSync(path.join(dir, 'dkim', 'ed.ed25519.key')).mode & 0o777).toBe(0o600);
    expect((await loadOrCreateKey(dir, 'ed', 'ed25519')).record).toBe(ed.record);
    expect(ed.record).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    const s = await startSigning([ed, rsa], 'example.org');
    s.write(Buffer.from(MSG.slice(0, 50)));
    s.write(Buffer.from(MSG.slice(50)));
    s.end();
    const sig = await s.done;
    expect(sig.match(/^DKIM-Signature:/gm)).toHaveLength(2);
    const records: Record<string, string> = { 'ed._domainkey.example.org': ed.record, 'rsa._domainkey.example.org': rsa.record };
    const res = (await dkimVerify(Buffer.from(sig + MSG), { resolver: async (name: string) => [[records[name]!]] } as never)) as unknown as { results: { status: { result: string }; selector: string }[] };
    expect(res.results.map((r) => [r.selector, r.status.result])).toEqual([['ed', 'pass'], ['rsa', 'pass']]);
  });
});
