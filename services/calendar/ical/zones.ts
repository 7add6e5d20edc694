/**
 * Time zone definitions for TZIDs that arrive without a VTIMEZONE (RFC 4791 §4.1 lets a
 * client leave them out when the server advertises the zone; many do regardless, and
 * RFC 7809 makes it normal). ical.js resolves such a TZID through its TimezoneService,
 * so each IANA name met is registered once with a VTIMEZONE generated here.
 *
 * The definition comes from Node's own time zone database (ICU, through Intl), so it is
 * as current as the Node release: every offset change from 1970 to 2100 is found by
 * probing Intl's offset at weekly steps and bisecting each change to the minute, then
 * written as one STANDARD/DAYLIGHT observance per change (RFC 5545 §3.6.5). Nothing is
 * downloaded or shipped. A name Intl does not know stays unregistered (floating time).
 */
import ICAL from 'ical.js';

const MINUTE = 60_000;
const WEEK = 7 * 24 * 60 * MINUTE;
const FROM = Date.UTC(1970, 0, 1);
const TO = Date.UTC(2100, 0, 1);

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Offset east of UTC, in minutes, of `zone` at `t`; undefined when Intl does not know the zone. */
export function offsetAt(zone: string, t: number): number | undefined {
  let f = formatters.get(zone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    } catch {
      return undefined;
    }
    formatters.set(zone, f);
  }
  const name = f.formatToParts(t).find((p) => p.type === 'timeZoneName')?.value ?? '';
  if (name === 'GMT') return 0;
  const m = /^GMT([+-])(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(name);
  if (!m) return undefined;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

const fmtOffset = (min: number) => {
  const s = min < 0 ? '-' : '+';
  const a = Math.abs(min);
  return `${s}${String(Math.floor(a / 60)).padStart(2, '0')}${String(a % 60).padStart(2, '0')}`;
};
const localStamp = (t: number, offsetMin: number) => new Date(t + offsetMin * MINUTE).toISOString().replace(/[-:]/g, '').slice(0, 15);

/** The VTIMEZONE text for an IANA zone name, or undefined when it is not one. */
export function vtimezoneFor(zone: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(zone)) return undefined;
  const first = offsetAt(zone, FROM);
  if (first === undefined) return undefined;
  // Every change of offset: weekly probes, each change bisected to the minute.
  const changes: Array<{ at: number; from: number; to: number }> = [];
  let prevT = FROM;
  let prev = first;
  for (let t = FROM + WEEK; t <= TO; t += WEEK) {
    const o = offsetAt(zone, t)!;
    if (o === prev) {
      prevT = t;
      continue;
    }
    let lo = prevT;
    let hi = t;
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / MINUTE / 2) * MINUTE;
      if (offsetAt(zone, mid) === prev) lo = mid;
      else hi = mid;
    }
    changes.push({ at: hi, from: prev, to: o });
    prev = o;
    prevT = t;
  }
  // Which offsets are "standard": the smaller of a pair in use around the change.
  const lines = ['BEGIN:VTIMEZONE', `TZID:${zone}`];
  const observance = (kind: 'STANDARD' | 'DAYLIGHT', start: string, from: number, to: number) =>
    lines.push(`BEGIN:${kind}`, `TZOFFSETFROM:${fmtOffset(from)}`, `TZOFFSETTO:${fmtOffset(to)}`, `DTSTART:${start}`, `END:${kind}`);
  observance('STANDARD', '19700101T000000', first, first);
  for (const c of changes) observance(c.to > c.from ? 'DAYLIGHT' : 'STANDARD', localStamp(c.at, c.from), c.from, c.to);
  lines.push('END:VTIMEZONE');
  return lines.join('\r\n');
}

const registered = new Set<string>();
const unknown = new Set<string>();

/**
 * Make sure ical.js can resolve every TZID in `text` that the text does not define
 * itself. Cheap after the first time per zone (a Set lookup).
 */
export function ensureZones(text: string): void {
  const re = /TZID=("?)([^;:"\r\n]{1,64})\1[;:]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const id = m[2]!;
    if (registered.has(id) || unknown.has(id)) continue;
    if (ICAL.TimezoneService.has(id)) {
      registered.add(id);
      continue;
    }
    const vtz = vtimezoneFor(id);
    if (!vtz) {
      if (unknown.size < 1000) unknown.add(id);
      continue;
    }
    const comp = new ICAL.Component(ICAL.parse(vtz) as unknown[]);
    ICAL.TimezoneService.register(new ICAL.Timezone(comp), id);
    registered.add(id);
  }
}
