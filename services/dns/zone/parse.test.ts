import { describe, expect, it } from 'vitest';
import { parseZone, resolveIncludePath } from './parse.ts';
import { TYPE } from '../wire/constants.ts';

const SOA = '@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n  NS ns1\nns1 A 192.0.2.1\n';
const parse = (text: string, include?: (p: string) => string | undefined) =>
  parseZone(text, { origin: 'example.test', file: 'dns/zones/example.test.zone', include });
const ok = (text: string, include?: (p: string) => string | undefined) => {
  const r = parse(text, include);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.zone;
};
const issues = (text: string, include?: (p: string) => string | undefined) => {
  const r = parse(text, include);
  if (r.ok) throw new Error('expected issues');
  return r.issues;
};

describe('parseZone', () => {
  it('reads directives, @, relative and absolute names, owner inheritance, TTL/class in either order', () => {
    const z = ok(`$TTL 1h
$ORIGIN example.test.
${SOA}www IN 300 A 192.0.2.2
     600 IN AAAA 2001:db8::2 ; inherits the owner
$ORIGIN sub.example.test.
host A 192.0.2.3
other.example.test. TXT "x"
`);
    expect(z.origin).toBe('example.test');
    expect(z.get('www.example.test', TYPE.A)!.ttl).toBe(300);
    expect(z.get('www.example.test', TYPE.AAAA)!.ttl).toBe(600);
    expect(z.get('ns1.example.test', TYPE.A)!.ttl).toBe(3600);
    expect(z.get('host.sub.example.test', TYPE.A)!.rdata[0]).toEqual(Buffer.from([192, 0, 2, 3]));
    expect(z.get('other.example.test', TYPE.TXT)).toBeDefined();
    expect(z.exists('sub.example.test')).toBe(true); // empty non-terminal
  });

  it('multi-line records in parentheses, comments, quoted strings with escapes', () => {
    const z = ok(`$TTL 60
@ SOA ns1 hostmaster ( 1 ; serial
   7200 ; refresh
   3600 1209600
   300 )
  NS ns1
ns1 A 192.0.2.1
t TXT "semi;colon" "quote\\"d" "\\065\\066" "paren ( )" unquoted\\ space
`);
    const rd = z.get('t.example.test', TYPE.TXT)!.rdata[0];
    const strs: string[] = [];
    for (let i = 0; i < rd.length; i += 1 + rd[i]) strs.push(rd.subarray(i + 1, i + 1 + rd[i]).toString('latin1'));
    expect(strs).toEqual(['semi;colon', 'quote"d', 'AB', 'paren ( )', 'unquoted space']);
    expect(z.serial).toBe(1);
    expect(z.negativeTtl).toBe(60);
  });

  it('encodes every supported type', () => {
    const z = ok(`$TTL 60
${SOA}mx MX 10 mail
srv SRV 1 2 3 target.example.org.
p PTR host
c CAA 128 tag "va;lue"
ds DS 1 13 2 ABCDEF01 23
k DNSKEY 256 3 13 AAEC AwQ=
t TLSA 3 1 1 00ff
s SVCB 1 . alpn=h2,h3 port=443 ipv4hint=192.0.2.1,192.0.2.2 mandatory=alpn,port key7=abc
h HTTPS 0 svc.example.org.
g TYPE65280 \\# 3 010203
ga A \\# 4 C0000201
`);
    expect(z.get('mx.example.test', TYPE.MX)!.rdata[0].subarray(0, 2)).toEqual(Buffer.from([0, 10]));
    expect(z.get('ds.example.test', TYPE.DS)!.rdata[0]).toEqual(Buffer.from('0001' + '0d' + '02' + 'abcdef0123', 'hex'));
    expect(z.get('k.example.test', TYPE.DNSKEY)!.rdata[0]).toEqual(Buffer.from('01000' + '30d' + '0001020304', 'hex'));
    expect(z.get('t.example.test', TYPE.TLSA)!.rdata[0]).toEqual(Buffer.from('03010100ff', 'hex'));
    expect(z.get('c.example.test', TYPE.CAA)!.rdata[0]).toEqual(Buffer.concat([Buffer.from([128, 3]), Buffer.from('tagva;lue')]));
    const s = z.get('s.example.test', TYPE.SVCB)!.rdata[0];
    // priority 1, root target, then keys 0,1,3,4,7 in order
    expect(s.subarray(0, 3)).toEqual(Buffer.from([0, 1, 0]));
    expect(s.subarray(3, 7)).toEqual(Buffer.from([0, 0, 0, 4])); // mandatory, length 4
    expect(z.get('g.example.test', 65280)!.rdata[0]).toEqual(Buffer.from([1, 2, 3]));
    expect(z.get('ga.example.test', TYPE.A)!.rdata[0]).toEqual(Buffer.from([192, 0, 2, 1]));
  });

  it('every problem names file and line', () => {
    const is = issues(`$TTL 60
${SOA}bad A 300.1.1.1
x IN BOGUS foo
y TXT "unterminated
`);
    expect(is[0]).toEqual({ file: 'dns/zones/example.test.zone', line: 5, message: expect.stringMatching(/IPv4/) });
    expect(is[1]).toMatchObject({ line: 6, message: expect.stringMatching(/record type/) });
    expect(is[2]).toMatchObject({ line: 7, message: expect.stringMatching(/unterminated/) });
  });

  it('validates SOA, CNAME exclusivity, zone membership and name lengths', () => {
    expect(issues('$TTL 60\nns1 A 192.0.2.1\n')[0].message).toMatch(/no SOA/);
    expect(issues(`$TTL 60\n${SOA}@ SOA a b 2 1 1 1 1\n`)[0].message).toMatch(/more than one SOA/);
    expect(issues(`$TTL 60\n${SOA}w CNAME x\nw A 192.0.2.9\n`)).toEqual([
      { file: 'dns/zones/example.test.zone', line: 5, message: expect.stringMatching(/CNAME .* cannot coexist/) },
    ]);
    expect(issues(`$TTL 60\n${SOA}www.example.org. A 192.0.2.1\n`)[0]).toMatchObject({ line: 5, message: expect.stringMatching(/outside the zone/) });
    expect(issues(`$TTL 60\n${SOA}${'a'.repeat(64)} A 192.0.2.1\n`)[0].message).toMatch(/63 octets/);
    expect(issues(`$TTL 60\n${SOA}${Array(60).fill('abcd').join('.')} A 192.0.2.1\n`)[0].message).toMatch(/255 octets/);
    expect(issues(`${SOA.replace('3600 ', '')}`)[0].message).toMatch(/no TTL/);
    expect(issues(`$TTL 60\n${SOA}x CH A 192.0.2.1\n`)[0].message).toMatch(/class IN/);
  });

  it('$INCLUDE goes through the callback, with its own origin, and names the included file', () => {
    const files: Record<string, string> = {
      'dns/zones/hosts.inc': 'a A 192.0.2.7\nb A 999.0.0.1\n',
      'dns/zones/loop.inc': '$INCLUDE loop.inc\n',
    };
    const inc = (p: string) => files[p];
    const z = ok(`$TTL 60\n${SOA}$INCLUDE hosts.inc lan.example.test.\n`, (p) => (p.endsWith('hosts.inc') ? 'a A 192.0.2.7\n' : undefined));
    expect(z.get('a.lan.example.test', TYPE.A)).toBeDefined();
    const is = issues(`$TTL 60\n${SOA}$INCLUDE hosts.inc\n$INCLUDE ../../../etc/passwd\n$INCLUDE missing.inc\n$INCLUDE loop.inc\n`, inc);
    expect(is).toContainEqual({ file: 'dns/zones/hosts.inc', line: 2, message: expect.stringMatching(/IPv4/) });
    expect(is).toContainEqual({ file: 'dns/zones/example.test.zone', line: 6, message: expect.stringMatching(/leaves the config tree/) });
    expect(is).toContainEqual({ file: 'dns/zones/example.test.zone', line: 7, message: expect.stringMatching(/cannot read/) });
    expect(is.some((i) => /nested too deeply/.test(i.message))).toBe(true);
    expect(resolveIncludePath('dns/zones/a.zone', '/etc/passwd')).toBeNull();
    expect(resolveIncludePath('dns/zones/a.zone', 'sub/../b.inc')).toBe('dns/zones/b.inc');
  });

  it('never throws on garbage', () => {
    const chunks = ['$ORIGIN', '(', ')', '"', '\\', ';', '@', 'IN', 'A', 'SOA', '\n', ' ', '1.2.3.4', 'x.', '$INCLUDE', '\\#', 'TYPE1', '99999999999', '..', '$TTL'];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let n = 0; n < 2000; n++) {
      let s = '';
      const len = Math.floor(rnd() * 30);
      for (let i = 0; i < len; i++) s += chunks[Math.floor(rnd() * chunks.length)] + (rnd() < 0.5 ? ' ' : '');
      const r = parse(s, () => s);
      expect(typeof r.ok).toBe('boolean');
    }
  });
});
