/**
 * Calendar object resources (RFC 4791 §4.1) through ical.js: validation of what a client
 * PUTs, the small summary the index keeps per object, and the instances of an object
 * within a time range (RFC 5545 §3.8.5 recurrence: RRULE, RDATE, EXDATE, RECURRENCE-ID
 * overrides; §3.3.5 time zones; all-day DATE values), which calendar-query time-range
 * filters, expand, limit-recurrence-set and free-busy use. Floating times and dates are in
 * the zone the caller gives (the calendar's CALDAV:calendar-timezone, RFC 4791 §9.9),
 * UTC without one; the index keeps UTC figures and says which objects float.
 */
import ICAL from 'ical.js';
import { ensureZones } from './zones.ts';

export const COMPONENTS = ['VEVENT', 'VTODO', 'VJOURNAL', 'VFREEBUSY'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export interface CalendarSummary {
  uid: string;
  comp: ComponentName;
  /** Conservative bounds (ms) of every instance; maxEnd Infinity for an unbounded RRULE. */
  minStart: number;
  maxEnd: number;
  /**
   * VEVENTs: every instance as [start, end, start, end, ...] (overrides applied), so a plain
   * time-range query is answered without parsing; complete up to `horizon` (ms; absent:
   * complete), the start of the first instance not listed.
   */
  spans?: number[];
  horizon?: number;
  /** Some start is floating or a date: spans are right only for a calendar in UTC. */
  floating?: boolean;
}

/** Instances kept in the index per event; past them a query parses the object. */
export const INDEX_SPANS = 256;

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string; precondition?: string };

const DAY = 86_400_000;
/** Floating times are read as UTC; any zone is within 14 h of that. */
const SLACK = 14 * 3_600_000;

export function parseComponent(text: string): ICAL.Component {
  ensureZones(text);
  return new ICAL.Component(ICAL.parse(text) as unknown[]);
}

/** A time with no zone of its own: a floating DATE-TIME or a DATE (RFC 5545 §3.3.5, §3.3.4). */
export const isFloating = (t: ICAL.Time) => t.isDate || !t.zone || t.zone.tzid === 'floating';

/** Milliseconds since the epoch; a floating time is read in `zone` (UTC without one). */
export function timeMs(t: ICAL.Time, zone?: ICAL.Timezone): number {
  if (zone && isFloating(t)) {
    const c = t.clone();
    c.zone = zone;
    return c.toUnixTime() * 1000;
  }
  return t.toUnixTime() * 1000;
}

/** A VTIMEZONE (the text of a VCALENDAR holding one, as CALDAV:calendar-timezone is) as a zone. */
export function zoneOf(text: string | undefined): ICAL.Timezone | undefined {
  if (!text) return undefined;
  const hit = zoneCache.get(text);
  if (hit !== undefined) return hit ?? undefined;
  let zone: ICAL.Timezone | null = null;
  try {
    const vtz = new ICAL.Component(ICAL.parse(text) as unknown[]).getFirstSubcomponent('vtimezone');
    if (vtz) zone = new ICAL.Timezone(vtz);
  } catch {
    zone = null;
  }
  if (zoneCache.size > 100) zoneCache.clear();
  zoneCache.set(text, zone);
  return zone ?? undefined;
}
const zoneCache = new Map<string, ICAL.Timezone | null>();

/** Parse and check a calendar object resource; the summary for the index. */
export function validateCalendarObject(text: string, maxInstances = 10_000): Parsed<CalendarSummary> {
  if (!/^\s*BEGIN:VCALENDAR/i.test(text)) return { ok: false, reason: 'the body is not iCalendar: it must start with BEGIN:VCALENDAR', precondition: 'valid-calendar-data' };
  let root: ICAL.Component;
  try {
    const parsed = ICAL.parse(text) as unknown;
    if (Array.isArray(parsed) && typeof parsed[0] !== 'string') return { ok: false, reason: 'one VCALENDAR per resource (RFC 4791 §4.1)', precondition: 'valid-calendar-object-resource' };
    ensureZones(text);
    root = new ICAL.Component(parsed as unknown[]);
  } catch (err) {
    return { ok: false, reason: `not valid iCalendar: ${(err as Error).message}`, precondition: 'valid-calendar-data' };
  }
  if (root.name !== 'vcalendar') return { ok: false, reason: 'the top component must be VCALENDAR', precondition: 'valid-calendar-data' };
  if (root.getFirstProperty('method')) return { ok: false, reason: 'a stored calendar object may not have a METHOD property (RFC 4791 §4.1)', precondition: 'valid-calendar-object-resource' };
  const comps = root.getAllSubcomponents().filter((c) => c.name !== 'vtimezone');
  if (comps.length === 0) return { ok: false, reason: 'the VCALENDAR has no VEVENT, VTODO, VJOURNAL or VFREEBUSY', precondition: 'valid-calendar-object-resource' };
  const kind = comps[0]!.name.toUpperCase();
  if (!(COMPONENTS as readonly string[]).includes(kind)) return { ok: false, reason: `${kind} is not a calendar component this server stores (VEVENT, VTODO, VJOURNAL, VFREEBUSY)`, precondition: 'supported-calendar-component' };
  if (comps.some((c) => c.name !== comps[0]!.name)) return { ok: false, reason: 'all components of one resource must be of one type (RFC 4791 §4.1)', precondition: 'valid-calendar-object-resource' };
  const uids = new Set(comps.map((c) => String(c.getFirstPropertyValue('uid') ?? '')));
  if (uids.has('') ) return { ok: false, reason: `every ${kind} needs a UID`, precondition: 'valid-calendar-object-resource' };
  if (uids.size > 1) return { ok: false, reason: 'all components of one resource must share one UID (RFC 4791 §4.1)', precondition: 'valid-calendar-object-resource' };
  const masters = comps.filter((c) => !c.getFirstProperty('recurrence-id'));
  if (masters.length > 1) return { ok: false, reason: `more than one ${kind} without RECURRENCE-ID for one UID`, precondition: 'valid-calendar-object-resource' };
  let minStart = Infinity;
  let maxEnd = -Infinity;
  try {
    for (const c of comps) {
      const b = componentBounds(c, maxInstances);
      minStart = Math.min(minStart, b.minStart);
      maxEnd = Math.max(maxEnd, b.maxEnd);
    }
  } catch (err) {
    return { ok: false, reason: `bad date or recurrence: ${(err as Error).message}`, precondition: 'valid-calendar-data' };
  }
  if (!Number.isFinite(minStart)) minStart = -Infinity;
  if (maxEnd === -Infinity) maxEnd = Infinity;
  const summary: CalendarSummary = { uid: [...uids][0]!, comp: kind as ComponentName, minStart: minStart - SLACK, maxEnd: maxEnd + SLACK };
  try {
    if (comps.some((c) => ['dtstart', 'dtend', 'due', 'recurrence-id'].some((n) => { const v = c.getFirstPropertyValue(n); return v instanceof ICAL.Time && isFloating(v); }))) summary.floating = true;
  } catch (err) {
    return { ok: false, reason: `bad date: ${(err as Error).message}`, precondition: 'valid-calendar-data' };
  }
  if (kind === 'VEVENT') {
    try {
      Object.assign(summary, eventSpans(root, INDEX_SPANS));
    } catch (err) {
      return { ok: false, reason: `bad date or recurrence: ${(err as Error).message}`, precondition: 'valid-calendar-data' };
    }
  }
  return { ok: true, value: summary };
}

function startOf(c: ICAL.Component): ICAL.Time | undefined {
  const v = c.getFirstPropertyValue('dtstart');
  return v instanceof ICAL.Time ? v : undefined;
}

/** The span of one instance starting at `start` (RFC 4791 §9.9 rules for the end). */
function instanceEnd(c: ICAL.Component, start: ICAL.Time, dtstart: ICAL.Time | undefined, zone?: ICAL.Timezone): number {
  const s = timeMs(start, zone);
  const dtend = c.getFirstPropertyValue(c.name === 'vtodo' ? 'due' : 'dtend');
  if (dtend instanceof ICAL.Time && dtstart) return s + (timeMs(dtend, zone) - timeMs(dtstart, zone));
  const dur = c.getFirstPropertyValue('duration');
  if (dur instanceof ICAL.Duration) return s + dur.toSeconds() * 1000;
  return start.isDate ? s + DAY : s;
}

function componentBounds(c: ICAL.Component, maxInstances: number): { minStart: number; maxEnd: number } {
  const dtstart = startOf(c);
  if (!dtstart) {
    if (c.name === 'vtodo') {
      const due = c.getFirstPropertyValue('due');
      if (due instanceof ICAL.Time) return { minStart: timeMs(due) - DAY, maxEnd: timeMs(due) + DAY };
    }
    // No start: matches any range (VTODO without dates, VFREEBUSY periods); keep it unbounded.
    return { minStart: -Infinity, maxEnd: Infinity };
  }
  const s = timeMs(dtstart);
  let minStart = s;
  let maxEnd = instanceEnd(c, dtstart, dtstart);
  const span = maxEnd - s;
  const rrule = c.getFirstPropertyValue('rrule');
  if (rrule instanceof ICAL.Recur) {
    if (rrule.until) maxEnd = Math.max(maxEnd, timeMs(rrule.until) + span + DAY);
    else if (rrule.count) {
      const ev = new ICAL.Event(c);
      const it = ev.iterator();
      let n: ICAL.Time | null;
      let k = 0;
      while ((n = it.next()) && k++ < Math.min(rrule.count, maxInstances)) maxEnd = Math.max(maxEnd, timeMs(n) + span);
      if (k >= maxInstances) maxEnd = Infinity;
    } else maxEnd = Infinity;
  }
  for (const p of c.getAllProperties('rdate')) {
    for (const v of p.getValues()) {
      const t = v instanceof ICAL.Time ? v : v instanceof ICAL.Period ? v.start : undefined;
      if (t) {
        minStart = Math.min(minStart, timeMs(t));
        maxEnd = Math.max(maxEnd, timeMs(t) + span);
      }
    }
  }
  return { minStart, maxEnd };
}

export interface Instance {
  start: number;
  end: number;
  /** The component this instance comes from (the master, or an override). */
  comp: ICAL.Component;
  /** RECURRENCE-ID of a recurring instance (undefined for a non-recurring component). */
  recurrenceId?: ICAL.Time;
  startTime: ICAL.Time;
}

/** Does [s, e) (e == s: a point) overlap the range [from, to) (RFC 4791 §9.9)? */
export function overlaps(s: number, e: number, from: number, to: number): boolean {
  if (e > s) return from < e && to > s;
  return from <= s && to > s;
}

/**
 * Instances of the components of kind `kind` that overlap [from, to), overrides applied.
 * Without a range, every instance up to `max` (unbounded rules stop there).
 */
export function instancesOf(root: ICAL.Component, kind: string, from: number, to: number, max: number, zone?: ICAL.Timezone): Instance[] {
  const comps = root.getAllSubcomponents(kind.toLowerCase());
  const out: Instance[] = [];
  const overrides = new Map<string, ICAL.Component>();
  for (const c of comps) {
    const rid = c.getFirstPropertyValue('recurrence-id');
    if (rid instanceof ICAL.Time) overrides.set(String(timeMs(rid, zone)), c);
  }
  for (const c of comps) {
    const rid = c.getFirstPropertyValue('recurrence-id');
    const dtstart = startOf(c);
    if (rid instanceof ICAL.Time) {
      // An override stands for its instance wherever it moved to.
      if (!dtstart) continue;
      const s = timeMs(dtstart, zone);
      const e = instanceEnd(c, dtstart, dtstart, zone);
      if (overlaps(s, e, from, to)) out.push({ start: s, end: e, comp: c, recurrenceId: rid, startTime: dtstart });
      continue;
    }
    if (!dtstart) {
      out.push({ start: -Infinity, end: Infinity, comp: c, startTime: ICAL.Time.epochTime });
      continue;
    }
    const recurring = c.getFirstProperty('rrule') || c.getFirstProperty('rdate');
    if (!recurring) {
      const s = timeMs(dtstart, zone);
      const e = instanceEnd(c, dtstart, dtstart, zone);
      if (overlaps(s, e, from, to) || !Number.isFinite(from)) out.push({ start: s, end: e, comp: c, startTime: dtstart });
      continue;
    }
    const span = instanceEnd(c, dtstart, dtstart, zone) - timeMs(dtstart, zone);
    const ev = new ICAL.Event(c);
    const it = ev.iterator();
    let n: ICAL.Time | null;
    let k = 0;
    while ((n = it.next())) {
      if (++k > max) throw new TooManyInstances(max);
      const s = timeMs(n, zone);
      if (s >= to) break;
      if (overrides.has(String(s))) continue;
      if (overlaps(s, s + span, from, to)) out.push({ start: s, end: s + span, comp: c, recurrenceId: n, startTime: n });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/**
 * The first `cap` instances of the VEVENTs of an object, as flat [start, end, ...] in
 * start order, and the horizon past which the list is not complete. Undefined when an
 * event has no DTSTART (such objects are always parsed).
 */
export function eventSpans(root: ICAL.Component, cap: number): { spans: number[]; horizon?: number } | Record<string, never> {
  const comps = root.getAllSubcomponents('vevent');
  if (comps.some((c) => !startOf(c))) return {};
  const list: Array<[number, number]> = [];
  let horizon = Infinity;
  const overrides = new Set<string>();
  for (const c of comps) {
    const rid = c.getFirstPropertyValue('recurrence-id');
    if (rid instanceof ICAL.Time) overrides.add(String(timeMs(rid)));
  }
  for (const c of comps) {
    const dtstart = startOf(c)!;
    const s0 = timeMs(dtstart);
    const span = instanceEnd(c, dtstart, dtstart) - s0;
    const rid = c.getFirstPropertyValue('recurrence-id');
    if (rid instanceof ICAL.Time || !(c.getFirstProperty('rrule') || c.getFirstProperty('rdate'))) {
      list.push([s0, s0 + span]);
      continue;
    }
    const it = new ICAL.Event(c).iterator();
    let n: ICAL.Time | null;
    let k = 0;
    while ((n = it.next())) {
      const s = timeMs(n);
      if (k++ >= cap) {
        horizon = Math.min(horizon, s);
        break;
      }
      if (!overrides.has(String(s))) list.push([s, s + span]);
    }
  }
  list.sort((a, b) => a[0] - b[0]);
  const kept = list.filter(([s]) => s < horizon);
  return { spans: kept.flat(), ...(horizon !== Infinity ? { horizon } : {}) };
}

/** Does any [start, end) of `spans` overlap [from, to)? (RFC 4791 §9.9, as instancesOf). */
export function spansOverlap(spans: readonly number[], from: number, to: number): boolean {
  // Binary search for the first instance starting at or after `to`; only instances
  // before it that end after `from` overlap: walk back while one could (longest span).
  let longest = longestSpan.get(spans);
  if (longest === undefined) {
    longest = 0;
    for (let i = 0; i < spans.length; i += 2) longest = Math.max(longest, spans[i + 1]! - spans[i]!);
    longestSpan.set(spans, longest);
  }
  let a = 0;
  let b = spans.length >> 1;
  while (a < b) {
    const m = (a + b) >> 1;
    if (spans[2 * m]! < to) a = m + 1;
    else b = m;
  }
  for (let k = a - 1; k >= 0; k--) {
    const s = spans[2 * k]!;
    if (s + longest < from) break;
    if (overlaps(s, spans[2 * k + 1]!, from, to)) return true;
  }
  return false;
}

const longestSpan = new WeakMap<readonly number[], number>();

export class TooManyInstances extends Error {
  override name = 'TooManyInstances';
  constructor(max: number) {
    super(`the query expands to more than ${max} instances (limits.maxInstances): narrow the time range`);
  }
}

/**
 * RFC 4791 §9.6.5 expand: every instance in [from, to) as its own component, in UTC, with
 * a RECURRENCE-ID for recurring ones and no RRULE, RDATE, EXDATE or VTIMEZONE.
 */
export function expandObject(root: ICAL.Component, from: number, to: number, max: number, zone?: ICAL.Timezone): string {
  const out = new ICAL.Component('vcalendar');
  for (const p of root.getAllProperties()) out.addProperty(ICAL.Property.fromString(p.toICALString()));
  for (const kind of COMPONENTS) {
    for (const inst of instancesOf(root, kind, from, to, max, zone)) {
      const c = new ICAL.Component(JSON.parse(JSON.stringify(inst.comp.toJSON())) as unknown[]);
      for (const name of ['rrule', 'rdate', 'exdate', 'exrule', 'dtstart', 'dtend', 'due', 'duration', 'recurrence-id']) c.removeAllProperties(name);
      const allDay = inst.startTime.isDate;
      const put = (name: string, ms: number) => {
        const prop = new ICAL.Property(name);
        const d = new Date(ms);
        if (allDay) prop.setValue(ICAL.Time.fromData({ year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), isDate: true }));
        else prop.setValue(ICAL.Time.fromJSDate(d, true));
        c.addProperty(prop);
      };
      put('dtstart', inst.start);
      if (inst.end !== inst.start && Number.isFinite(inst.end)) put(kind === 'VTODO' ? 'due' : 'dtend', inst.end);
      if (inst.recurrenceId) {
        const rid = timeMs(inst.recurrenceId, zone);
        put('recurrence-id', rid);
      }
      out.addSubcomponent(c);
    }
  }
  return out.toString() + '\r\n';
}

/** RFC 4791 §9.6.6 limit-recurrence-set: the master, and the overrides that overlap [from, to). */
export function limitRecurrenceSet(root: ICAL.Component, from: number, to: number, zone?: ICAL.Timezone): string {
  const out = new ICAL.Component(JSON.parse(JSON.stringify(root.toJSON())) as unknown[]);
  for (const c of out.getAllSubcomponents()) {
    const rid = c.getFirstPropertyValue('recurrence-id');
    if (!(rid instanceof ICAL.Time)) continue;
    const s = startOf(c);
    const keep = s ? overlaps(timeMs(s, zone), instanceEnd(c, s, s, zone), from, to) || overlaps(timeMs(rid, zone), timeMs(rid, zone), from, to) : true;
    if (!keep) out.removeSubcomponent(c);
  }
  return out.toString() + '\r\n';
}

export { ICAL };
