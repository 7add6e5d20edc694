/**
 * Address object resources (RFC 6352 §5.1): one vCard (RFC 2426 v3.0 or RFC 6350 v4.0)
 * with a UID, parsed by ical.js; and addressbook-query filters (RFC 6352 §10.5:
 * prop-filter, param-filter, text-match with i;unicode-casemap / i;ascii-casemap /
 * i;octet and equals / contains / starts-with / ends-with, test="anyof" | "allof").
 */
import ICAL from 'ical.js';
import { CARDDAV, child, children, type XmlElement } from '../dav/xml.ts';
import { FilterError, textMatches } from '../ical/filter.ts';
import type { Parsed } from '../ical/calendar-object.ts';

export interface CardSummary {
  uid: string;
}

export function parseCard(text: string): ICAL.Component {
  return new ICAL.Component(ICAL.parse(text) as unknown[]);
}

export function validateCard(text: string): Parsed<CardSummary> {
  if (!/^\s*BEGIN:VCARD/i.test(text)) return { ok: false, reason: 'the body is not a vCard: it must start with BEGIN:VCARD', precondition: 'valid-address-data' };
  let parsed: unknown;
  try {
    parsed = ICAL.parse(text);
  } catch (err) {
    return { ok: false, reason: `not a valid vCard: ${(err as Error).message}`, precondition: 'valid-address-data' };
  }
  if (Array.isArray(parsed) && typeof parsed[0] !== 'string') return { ok: false, reason: 'one vCard per resource (RFC 6352 §5.1)', precondition: 'valid-address-data' };
  const card = new ICAL.Component(parsed as unknown[]);
  if (card.name !== 'vcard') return { ok: false, reason: 'the body must be one BEGIN:VCARD … END:VCARD', precondition: 'valid-address-data' };
  const version = String(card.getFirstPropertyValue('version') ?? '');
  if (version !== '3.0' && version !== '4.0') return { ok: false, reason: `VERSION must be 3.0 or 4.0, not ${JSON.stringify(version.slice(0, 20))}`, precondition: 'supported-address-data' };
  if (!card.getFirstProperty('fn')) return { ok: false, reason: 'a vCard needs an FN property', precondition: 'valid-address-data' };
  const uid = String(card.getFirstPropertyValue('uid') ?? '');
  if (!uid) return { ok: false, reason: 'a vCard needs a UID (RFC 6352 §5.1)', precondition: 'valid-address-data' };
  return { ok: true, value: { uid } };
}

const propText = (p: ICAL.Property) => p.getValues().map((v) => (Array.isArray(v) ? v.join(';') : String(v))).join(',');

function cardTextMatch(value: string, tm: XmlElement): boolean {
  return textMatches(value, { ...tm, attrs: { collation: 'i;unicode-casemap', ...tm.attrs } });
}

function propFilterMatches(card: ICAL.Component, pf: XmlElement): boolean {
  const name = (pf.attrs.name ?? '').toLowerCase();
  if (!name) throw new FilterError('prop-filter needs a name', 'valid-filter');
  const props = card.getAllProperties(name);
  if (child(pf, CARDDAV, 'is-not-defined')) return props.length === 0;
  if (props.length === 0) return false;
  const tests = [...children(pf, CARDDAV, 'text-match'), ...children(pf, CARDDAV, 'param-filter')];
  if (tests.length === 0) return true;
  const allof = pf.attrs.test === 'allof';
  return props.some((p) => {
    const results = tests.map((t) => {
      if (t.name === 'text-match') return cardTextMatch(propText(p), t);
      const val = p.getParameter((t.attrs.name ?? '').toLowerCase());
      const defined = val !== undefined && val !== null;
      if (child(t, CARDDAV, 'is-not-defined')) return !defined;
      if (!defined) return false;
      const ptm = child(t, CARDDAV, 'text-match');
      return ptm ? cardTextMatch(Array.isArray(val) ? val.join(',') : String(val), ptm) : true;
    });
    return allof ? results.every(Boolean) : results.some(Boolean);
  });
}

/** The whole CARDDAV:filter against one card; an empty filter matches every card. */
export function cardFilterMatches(card: ICAL.Component, filter: XmlElement): boolean {
  const pfs = children(filter, CARDDAV, 'prop-filter');
  if (pfs.length === 0) return true;
  const results = pfs.map((pf) => propFilterMatches(card, pf));
  return filter.attrs.test === 'allof' ? results.every(Boolean) : results.some(Boolean);
}
