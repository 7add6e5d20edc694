import { describe, expect, it } from 'vitest';
import { parseXml } from '../dav/xml.ts';
import { cardFilterMatches, parseCard, validateCard } from './vcard.ts';

const card = 'BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:1\r\nFN:Ada Lovelace\r\nEMAIL;TYPE=work:ada@example.org\r\nTEL:+44 1\r\nEND:VCARD\r\n';
const f = (inner: string, test = '') => parseXml(`<CR:filter xmlns:CR="urn:ietf:params:xml:ns:carddav"${test}>${inner}</CR:filter>`);

describe('vCards', () => {
  it('accepts 3.0 and 4.0 with FN and UID; refuses the rest with the reason', () => {
    expect(validateCard(card).ok).toBe(true);
    expect(validateCard(card.replace('4.0', '3.0')).ok).toBe(true);
    for (const [bad, why] of [[card.replace('VERSION:4.0', 'VERSION:2.1'), 'VERSION'], [card.replace('UID:urn:uuid:1\r\n', ''), 'UID'], [card.replace('FN:Ada Lovelace\r\n', ''), 'FN'], ['BEGIN:VCARD\r\n', 'vCard'], [card + card, 'one vCard']] as const) {
      const v = validateCard(bad);
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.reason).toContain(why);
    }
  });
  it('addressbook-query filters: text-match types, anyof/allof, param-filter, is-not-defined', () => {
    const c = parseCard(card);
    expect(cardFilterMatches(c, f('<CR:prop-filter name="FN"><CR:text-match match-type="starts-with">ada</CR:text-match></CR:prop-filter>'))).toBe(true);
    expect(cardFilterMatches(c, f('<CR:prop-filter name="FN"><CR:text-match match-type="equals">ada</CR:text-match></CR:prop-filter>'))).toBe(false);
    expect(cardFilterMatches(c, f('<CR:prop-filter name="EMAIL"><CR:text-match match-type="ends-with">example.org</CR:text-match></CR:prop-filter>'))).toBe(true);
    expect(cardFilterMatches(c, f('<CR:prop-filter name="EMAIL"><CR:param-filter name="TYPE"><CR:text-match>work</CR:text-match></CR:param-filter></CR:prop-filter>'))).toBe(true);
    expect(cardFilterMatches(c, f('<CR:prop-filter name="NICKNAME"><CR:is-not-defined/></CR:prop-filter>'))).toBe(true);
    const two = '<CR:prop-filter name="FN"><CR:text-match>ada</CR:text-match></CR:prop-filter><CR:prop-filter name="NOTE"/>';
    expect(cardFilterMatches(c, f(two))).toBe(true);
    expect(cardFilterMatches(c, f(two, ' test="allof"'))).toBe(false);
  });
});
