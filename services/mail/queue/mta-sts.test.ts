import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prng } from '../../../test/support/prng.ts';
import { loadPolicyCache, MAX_POLICY_BYTES, mxMatches, parsePolicy, parseStsRecord } from './mta-sts.ts';

const POLICY = 'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n';

describe('MTA-STS TXT records (RFC 8461 §3.1)', () => {
  it('takes the one v=STSv1 record, its chunks joined, and ignores other TXT records', () => {
    expect(parseStsRecord([['v=STSv1; id=20160831085700Z;']])).toEqual({ id: '20160831085700Z' });
    expect(parseStsRecord([['v=STSv1; id=2016', '0831085700Z']])).toEqual({ id: '20160831085700Z' });
    expect(parseStsRecord([['v=spf1 -all'], ['v=STSv1;id=abc']])).toEqual({ id: 'abc' });
    expect(parseStsRecord([['v=STSv1; id=abc; ext_1=value']])).toEqual({ id: 'abc' });
  });
  it('is no policy when there are none, several, or a malformed one', () => {
    for (const bad of [
      [], [['v=spf1 -all']], [['v=STSv1; id=a'], ['v=STSv1; id=b']], [['v=STSv1;']], [['v=STSv1; id=']],
      [['v=STSv1; id=' + 'a'.repeat(33)]], [['v=STSv1; id=a-b']], [['v=STSv1; id=a; id=b']], [['V=STSv1; id=a']],
      [['v=STSv1 id=a']], [['v=STSv1; id=a; bad']], [['v=STSv1; id=a; x=with space']], [['v=STSv1; id=a; x=semi=']],
      [['v=STSv10; id=a']], [['v=STSv1; id=a\u0000']], [['v=STSv1; id=a; ' + 'x'.repeat(40) + '=1']],
    ]) expect(parseStsRecord(bad), JSON.stringify(bad)).toBeUndefined();
  });
});

describe('MTA-STS policies (RFC 8461 §3.2)', () => {
  it('reads a policy with CRLF or LF, ignoring unknown keys; the first of a repeated key counts, every mx', () => {
    expect(parsePolicy(POLICY)).toEqual({ mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAge: 604800 });
    expect(parsePolicy(POLICY.replace(/\r\n/g, '\n') + 'future_key: 1\nmode: none\n')).toEqual({ mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAge: 604800 });
    expect(parsePolicy('version: STSv1\nmode: none\nmax_age: 86400')).toEqual({ mode: 'none', mx: [], maxAge: 86400 });
    expect(parsePolicy('version: STSv1\nmode: testing\nmx: MX.Example.ORG\nmax_age: 9999999999')).toEqual({ mode: 'testing', mx: ['mx.example.org'], maxAge: 31_557_600 });
  });
  it('refuses a broken policy with the reason', () => {
    const cases: [string, RegExp][] = [
      ['', /version/],
      ['version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1', /version/],
      ['version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1', /mode/],
      ['version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1', /max_age/],
      ['version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901', /max_age/],
      ['version: STSv1\nmode: enforce\nmax_age: 1', /mx: at least one/],
      ['version: STSv1\nmode: enforce\nmx: *.*.b\nmax_age: 1', /mx: /],
      ['version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1', /mx: /],
      ['version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1', /mx: /],
      ['version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 1', /mx: /],
      ['version: STSv1\nmode: enforce\nmx: a.b c\nmax_age: 1', /mx: /],
      ['version: STSv1\nmode enforce\nmx: a.b\nmax_age: 1', /key: value/],
      ['<html><body>not a policy</body></html>', /key: value/],
      [POLICY + 'x'.repeat(MAX_POLICY_BYTES), /larger than/],
    ];
    for (const [text, why] of cases) {
      const r = parsePolicy(text);
      expect('error' in r ? r.error : 'parsed', text.slice(0, 60)).toMatch(why);
    }
  });
  it('survives random and mutated input: a policy or a reason, never a throw', () => {
    const rnd = prng(8461);
    const alphabet = 'versionmodemxmax_age:STSv1enforcetesting*.-\r\n \t;=0123456789\u0000\u00ff\u2028';
    for (let i = 0; i < 3000; i++) {
      let text: string;
      if (i % 2 === 0) {
        const chars = Array.from(POLICY);
        for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) chars[Math.floor(rnd() * chars.length)] = alphabet[Math.floor(rnd() * alphabet.length)]!;
        text = chars.join('');
      } else {
        text = Array.from({ length: Math.floor(rnd() * 200) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
      }
      const r = parsePolicy(text);
      if (!('error' in r)) {
        expect(['enforce', 'testing', 'none']).toContain(r.mode);
        expect(r.maxAge).toBeLessThanOrEqual(31_557_600);
      }
      expect(() => parseStsRecord([[text]])).not.toThrow();
    }
  });
});

describe('MX patterns (RFC 8461 §4.1)', () => {
  it('matches names exactly and *. as one leftmost label, without case or a trailing dot', () => {
    expect(mxMatches(['mail.example.com'], 'Mail.Example.com.')).toBe(true);
    expect(mxMatches(['*.example.net'], 'mx1.example.net')).toBe(true);
    expect(mxMatches(['*.example.net'], 'example.net')).toBe(false);
    expect(mxMatches(['*.example.net'], 'a.b.example.net')).toBe(false);
    expect(mxMatches(['*.example.net'], '.example.net')).toBe(false);
    expect(mxMatches(['mail.example.com'], 'evil-mail.example.com')).toBe(false);
    expect(mxMatches(['mail.example.com'], 'mail.example.com.evil.net')).toBe(false);
    expect(mxMatches([], 'mail.example.com')).toBe(false);
  });
});

describe('the policy cache on disk', () => {
  it('keeps only entries that are policies as a fetched one would be', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'kith-sts-')), 'mta-sts.json');
    const good = { domain: 'Example.COM', id: 'abc', fetchedAt: 1, mode: 'enforce', mx: ['mx.example.com'], maxAge: 86400 };
    writeFileSync(file, JSON.stringify({ policies: [
      good,
      { ...good, domain: 'a.test', mode: 'enforce\nmx: evil.test' },
      { ...good, domain: 'b.test', mx: ['mx.b.test\nmode: none'] },
      { ...good, domain: 'c.test', id: 'not valid!' },
      { ...good, domain: 'd.test', mx: [] },
      { ...good, domain: 'e.test', maxAge: 'forever' },
      { ...good, domain: 'f.test', fetchedAt: '1' },
      null, 7, 'x',
    ] }));
    expect(loadPolicyCache(file)).toEqual([{ domain: 'example.com', id: 'abc', fetchedAt: 1, mode: 'enforce', mx: ['mx.example.com'], maxAge: 86400 }]);
    for (const bad of ['', '{', '[]', '{"policies": {}}', 'null']) {
      writeFileSync(file, bad);
      expect(loadPolicyCache(file)).toEqual([]);
    }
    expect(loadPolicyCache(path.join(path.dirname(file), 'none.json'))).toEqual([]);
  });
});
