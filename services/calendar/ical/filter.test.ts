import { describe, expect, it } from 'vitest';
import { parseXml } from '../dav/xml.ts';
import { parseComponent } from './calendar-object.ts';
import { FilterError, calendarFilterMatches, prefilterOf } from './filter.ts';

const C = 'xmlns:C="urn:ietf:params:xml:ns:caldav"';
const filter = (inner: string) => parseXml(`<C:filter ${C}><C:comp-filter name="VCALENDAR">${inner}</C:comp-filter></C:filter>`);
const obj = parseComponent('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260110T100000Z\r\nDTEND:20260110T110000Z\r\nSUMMARY:Team Meeting\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:a@example.org\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n');

describe('calendar-query filters', () => {
  const m = (inner: string) => calendarFilterMatches(obj, filter(inner), 100);
  it('comp-filter, time-range, prop-filter, text-match, param-filter, is-not-defined', () => {
    expect(m('<C:comp-filter name="VEVENT"/>')).toBe(true);
    expect(m('<C:comp-filter name="VTODO"/>')).toBe(false);
    expect(m('<C:comp-filter name="VTODO"><C:is-not-defined/></C:comp-filter>')).toBe(true);
    expect(m('<C:comp-filter name="VEVENT"><C:time-range start="20260110T103000Z" end="20260110T120000Z"/></C:comp-filter>')).toBe(true);
    expect(m('<C:comp-filter name="VEVENT"><C:time-range start="20260110T110000Z" end="20260110T120000Z"/></C:comp-filter>')).toBe(false);
    expect(m('<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match>meeting</C:text-match></C:prop-filter></C:comp-filter>')).toBe(true);
    expect(m('<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match collation="i;octet">meeting</C:text-match></C:prop-filter></C:comp-filter>')).toBe(false);
    expect(m('<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes">party</C:text-match></C:prop-filter></C:comp-filter>')).toBe(true);
    expect(m('<C:comp-filter name="VEVENT"><C:prop-filter name="LOCATION"><C:is-not-defined/></C:prop-filter></C:comp-filter>')).toBe(true);
    expect(m('<C:comp-filter name="VEVENT"><C:prop-filter name="ATTENDEE"><C:param-filter name="PARTSTAT"><C:text-match>accepted</C:text-match></C:param-filter></C:prop-filter></C:comp-filter>')).toBe(true);
    expect(m('<C:comp-filter name="VEVENT"><C:comp-filter name="VALARM"/></C:comp-filter>')).toBe(true);
  });
  it('refuses what it cannot evaluate, with the precondition to answer', () => {
    expect(() => m('<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match collation="i;klingon">x</C:text-match></C:prop-filter></C:comp-filter>')).toThrow(FilterError);
    expect(() => m('<C:comp-filter name="VEVENT"><C:time-range start="2026-01-01" end="20260110T120000Z"/></C:comp-filter>')).toThrow(/UTC date-time/);
    expect(() => m('<C:comp-filter name="VEVENT"><C:time-range start="20260111T000000Z" end="20260110T120000Z"/></C:comp-filter>')).toThrow(/after start/);
  });
  it('tells the index which component and range to look at', () => {
    expect(prefilterOf(filter('<C:comp-filter name="VEVENT"><C:time-range start="20260110T000000Z"/></C:comp-filter>'))).toEqual({ comp: 'VEVENT', range: { from: Date.UTC(2026, 0, 10), to: Infinity }, simple: true });
    expect(prefilterOf(filter('<C:comp-filter name="VEVENT"><C:time-range start="20260110T000000Z"/><C:prop-filter name="SUMMARY"/></C:comp-filter>')).simple).toBe(false);
  });
});
