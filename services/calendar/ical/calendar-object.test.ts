import { describe, expect, it } from 'vitest';
import { eventSpans, expandObject, instancesOf, limitRecurrenceSet, parseComponent, spansOverlap, validateCalendarObject } from './calendar-object.ts';
import { prng } from '../../../test/support/prng.ts';
import { vtimezoneFor } from './zones.ts';

const cal = (...comps: string[]) => `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n${comps.join('')}END:VCALENDAR\r\n`;
const ev = (lines: string) => `BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20260101T000000Z\r\n${lines}END:VEVENT\r\n`;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16);
const D = (s: string) => Date.parse(s);

describe('calendar objects', () => {
  it('expands a weekly rule in a named zone across both DST changes, with EXDATE and a moved instance', () => {
    const text = cal(
      ev('DTSTART;TZID=America/New_York:20261019T090000\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;UNTIL=20261116T235959Z\r\nEXDATE;TZID=America/New_York:20261026T090000\r\n'),
      ev('RECURRENCE-ID;TZID=America/New_York:20261109T090000\r\nDTSTART;TZID=America/New_York:20261110T140000\r\nDURATION:PT1H\r\n'),
    );
    const root = parseComponent(text);
    const got = instancesOf(root, 'VEVENT', D('2026-10-01T00:00Z'), D('2026-12-01T00:00Z'), 100).map((i) => iso(i.start));
    // EDT (UTC-4) until 1 November, EST (UTC-5) after.
    expect(got).toEqual(['2026-10-19T13:00', '2026-11-02T14:00', '2026-11-10T19:00', '2026-11-16T14:00']);
    const v = validateCalendarObject(text);
    expect(v.ok && v.value.comp).toBe('VEVENT');
    expect(v.ok && v.value.maxEnd).toBeGreaterThan(D('2026-11-16T15:00Z'));
  });

  it('all-day events last the day; RDATEs add instances; an unbounded rule has no upper bound', () => {
    const allDay = parseComponent(cal(ev('DTSTART;VALUE=DATE:20260403\r\n')));
    expect(instancesOf(allDay, 'VEVENT', D('2026-04-03T12:00Z'), D('2026-04-03T13:00Z'), 10)).toHaveLength(1);
    expect(instancesOf(allDay, 'VEVENT', D('2026-04-04T00:00Z'), D('2026-04-05T00:00Z'), 10)).toHaveLength(0);
    const rdate = parseComponent(cal(ev('DTSTART:20260101T100000Z\r\nDURATION:PT30M\r\nRDATE:20260301T100000Z,20260401T100000Z\r\n')));
    expect(instancesOf(rdate, 'VEVENT', D('2026-02-01T00:00Z'), D('2026-05-01T00:00Z'), 10).map((i) => iso(i.start))).toEqual(['2026-03-01T10:00', '2026-04-01T10:00']);
    const forever = validateCalendarObject(cal(ev('DTSTART:20260101T100000Z\r\nRRULE:FREQ=DAILY\r\n')));
    expect(forever.ok && forever.value.maxEnd).toBe(Infinity);
  });

  it('a zero-length event matches a range that contains its start (RFC 4791 §9.9)', () => {
    const r = parseComponent(cal(ev('DTSTART:20260101T100000Z\r\n')));
    expect(instancesOf(r, 'VEVENT', D('2026-01-01T10:00Z'), D('2026-01-01T11:00Z'), 10)).toHaveLength(1);
    expect(instancesOf(r, 'VEVENT', D('2026-01-01T09:00Z'), D('2026-01-01T10:00Z'), 10)).toHaveLength(0);
  });

  it('expand writes instances in UTC with RECURRENCE-ID; limit-recurrence-set keeps the rule', () => {
    const root = parseComponent(cal(ev('DTSTART;TZID=Europe/Berlin:20260328T100000\r\nDTEND;TZID=Europe/Berlin:20260328T110000\r\nRRULE:FREQ=DAILY;COUNT=3\r\n')));
    const out = expandObject(root, D('2026-03-28T00:00Z'), D('2026-03-31T00:00Z'), 100);
    expect(out.match(/DTSTART:\d{8}T\d{6}Z/g)).toEqual(['DTSTART:20260328T090000Z', 'DTSTART:20260329T080000Z', 'DTSTART:20260330T080000Z']);
    expect(out).not.toMatch(/RRULE|VTIMEZONE|TZID/);
    expect(limitRecurrenceSet(root, D('2026-03-28T00:00Z'), D('2026-03-29T00:00Z'))).toContain('RRULE');
  });

  it('the index spans answer time ranges exactly as the full expansion does', () => {
    const objects = [
      cal(ev('DTSTART;TZID=Europe/Berlin:20260302T100000\r\nDTEND;TZID=Europe/Berlin:20260302T103000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\nEXDATE;TZID=Europe/Berlin:20260316T100000\r\n'), ev('RECURRENCE-ID;TZID=Europe/Berlin:20260330T100000\r\nDTSTART;TZID=Europe/Berlin:20260331T150000\r\nDTEND;TZID=Europe/Berlin:20260331T153000\r\n')),
      cal(ev('DTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=YEARLY\r\n')),
      cal(ev('DTSTART:20260101T100000Z\r\nRRULE:FREQ=DAILY;COUNT=400\r\n')),
      cal(ev('DTSTART:20260101T100000Z\r\n')),
      cal(ev('DTSTART:20260101T100000Z\r\nDURATION:PT2H\r\nRDATE:20260601T100000Z\r\n')),
    ];
    const rand = prng(7);
    for (const text of objects) {
      const root = parseComponent(text);
      const { spans, horizon } = eventSpans(root, 256) as { spans: number[]; horizon?: number };
      for (let i = 0; i < 300; i++) {
        const from = D('2025-12-01T00:00Z') + Math.floor(rand() * 700) * 86_400_000 + Math.floor(rand() * 24) * 3_600_000;
        const to = from + (1 + Math.floor(rand() * 200)) * 3_600_000;
        if (to > (horizon ?? Infinity)) continue;
        expect(spansOverlap(spans, from, to), `${iso(from)}..${iso(to)}`).toBe(instancesOf(root, 'VEVENT', from, to, 10_000).length > 0);
      }
    }
  });

  it('refuses what RFC 4791 §4.1 forbids, with the precondition', () => {
    const bad: Array<[string, string]> = [
      [cal(ev('DTSTART:20260101T100000Z\r\n'), ev('DTSTART:20260101T100000Z\r\n')), 'without RECURRENCE-ID'],
      [cal(ev('DTSTART:20260101T100000Z\r\n'), 'BEGIN:VTODO\r\nUID:u\r\nEND:VTODO\r\n'), 'one type'],
      [cal(ev('DTSTART:20260101T100000Z\r\n').replace('UID:u', 'UID:a'), ev('RECURRENCE-ID:20260101T100000Z\r\n').replace('UID:u', 'UID:b')), 'one UID'],
      [cal(), 'no VEVENT'],
      [cal('BEGIN:VALARM\r\nEND:VALARM\r\n'), 'VALARM'],
      ['BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n', 'not valid iCalendar'],
    ];
    for (const [text, reason] of bad) {
      const v = validateCalendarObject(text);
      expect(v.ok, reason).toBe(false);
      if (!v.ok) expect(v.reason).toContain(reason);
    }
  });

  it('VTIMEZONEs come from Node\'s own zone data; unknown names get none', () => {
    const v = vtimezoneFor('Australia/Lord_Howe')!; // a 30-minute DST shift
    expect(v).toContain('TZOFFSETTO:+1100');
    expect(v).toContain('TZOFFSETTO:+1030');
    expect(vtimezoneFor('Mars/Olympus_Mons')).toBeUndefined();
    expect(vtimezoneFor('../../etc/passwd')).toBeUndefined();
  });
});
