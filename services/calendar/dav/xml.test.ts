import { describe, expect, it } from 'vitest';
import { DAV, XmlError, el, escapeXml, parseXml, serialize } from './xml.ts';

describe('WebDAV XML', () => {
  it('resolves namespaces whatever the prefixes', () => {
    const a = parseXml('<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>');
    const b = parseXml('<x:propfind xmlns:x="DAV:"><x:prop><x:getetag/></x:prop></x:propfind>');
    for (const r of [a, b]) {
      expect([r.ns, r.name]).toEqual([DAV, 'propfind']);
      expect(r.children[0]!.children[0]).toMatchObject({ ns: DAV, name: 'getetag' });
    }
  });

  it('refuses DOCTYPE and entities, deep nesting, huge attributes, many elements and bad XML', () => {
    const cases = [
      '<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
      '<a>&unknown;</a>',
      '<a xmlns="DAV:">' + '<b>'.repeat(100) + '</b>'.repeat(100) + '</a>',
      `<a b="${'x'.repeat(5000)}"/>`,
      '<a>' + '<b/>'.repeat(60_000) + '</a>',
      '<a><b></a>',
      '',
      '<a/><b/>',
      '<a xmlns:p="urn:x"><q:b/></a>',
    ];
    for (const c of cases) expect(() => parseXml(c), c.slice(0, 40)).toThrow(XmlError);
  });

  it('escapes text, and keeps dead properties namespaced when written back', () => {
    expect(escapeXml('a<&>"\u0001b')).toBe('a&lt;&amp;&gt;&quot;b');
    expect(el(DAV, 'displayname', 'x')).toBe('<D:displayname>x</D:displayname>');
    const p = parseXml('<p:x xmlns:p="urn:y" a="1"><p:y>t&amp;</p:y></p:x>');
    const out = serialize(p);
    expect(parseXml(out)).toEqual(p);
  });
});
