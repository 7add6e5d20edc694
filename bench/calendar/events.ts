/**
 * Deterministic calendar data for the calendar benchmark: N events over two years
 * (2026–2027), like a busy person's calendar — mostly one-off meetings in UTC or
 * Europe/Berlin, some all-day, 5% weekly recurring (half of them without an end), a few
 * with an exception. The same bytes for every server and every run (test/support/prng.ts).
 */
import { prng } from '../../test/support/prng.ts';

export interface BenchEvent {
  name: string;
  uid: string;
  text: string;
}

const pad = (n: number) => String(n).padStart(2, '0');
const stamp = (d: Date) => `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}00`;
const date = (d: Date) => `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;

export const SPAN_START = Date.UTC(2026, 0, 1);
export const SPAN_DAYS = 730;

export function benchEvents(n: number, seed = 42): BenchEvent[] {
  const rand = prng(seed);
  const out: BenchEvent[] = [];
  for (let i = 0; i < n; i++) {
    const uid = `bench-${i}@kith.test`;
    const day = Math.floor(rand() * SPAN_DAYS);
    const start = new Date(SPAN_START + day * 86_400_000 + (8 + Math.floor(rand() * 10)) * 3_600_000 + (rand() < 0.5 ? 1_800_000 : 0));
    const end = new Date(start.getTime() + (1 + Math.floor(rand() * 4)) * 1_800_000);
    const kind = rand();
    const lines = ['BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20260101T000000Z', `SUMMARY:Meeting ${i} about ${['budget', 'roadmap', 'hiring', 'lunch', 'review'][i % 5]}`, `DESCRIPTION:Generated event ${i} for the benchmark, with a little text like a real invitation has.`, `LOCATION:Room ${i % 40}`];
    if (kind < 0.1) {
      lines.push(`DTSTART;VALUE=DATE:${date(start)}`, `DTEND;VALUE=DATE:${date(new Date(start.getTime() + 86_400_000))}`);
    } else if (kind < 0.55) {
      lines.push(`DTSTART;TZID=Europe/Berlin:${stamp(start)}`, `DTEND;TZID=Europe/Berlin:${stamp(end)}`);
    } else {
      lines.push(`DTSTART:${stamp(start)}Z`, `DTEND:${stamp(end)}Z`);
    }
    const recurring = rand() < 0.05;
    let override = '';
    if (recurring) {
      lines.push(rand() < 0.5 ? 'RRULE:FREQ=WEEKLY' : `RRULE:FREQ=WEEKLY;COUNT=${10 + Math.floor(rand() * 40)}`);
      if (rand() < 0.3 && !lines.some((l) => l.includes('VALUE=DATE'))) {
        const rid = new Date(start.getTime() + 14 * 86_400_000);
        const moved = new Date(rid.getTime() + 86_400_000);
        const tz = lines.some((l) => l.includes('TZID')) ? ';TZID=Europe/Berlin' : '';
        const z = tz ? '' : 'Z';
        override = ['BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20260101T000000Z', `RECURRENCE-ID${tz}:${stamp(rid)}${z}`, `DTSTART${tz}:${stamp(moved)}${z}`, `DTEND${tz}:${stamp(new Date(moved.getTime() + 3_600_000))}${z}`, `SUMMARY:Meeting ${i} (moved)`, 'END:VEVENT', ''].join('\r\n');
      }
    }
    lines.push('END:VEVENT', '');
    const text = `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kith bench//EN\r\n${lines.join('\r\n')}${override}END:VCALENDAR\r\n`;
    out.push({ name: `${uid.replace('@', '-at-')}.ics`, uid, text });
  }
  return out;
}
