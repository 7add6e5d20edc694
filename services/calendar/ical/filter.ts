/**
 * calendar-query filters (RFC 4791 §9.7): comp-filter, prop-filter, param-filter,
 * text-match (i;ascii-casemap and i;octet, RFC 4790) and time-range (§9.9, with
 * recurrences expanded and overrides applied), evaluated on a parsed calendar object.
 * A filter this server cannot evaluate is a FilterError (answered with the
 * CALDAV:supported-filter precondition, §7.7).
 */
import { CALDAV, children, child, type XmlElement } from '../dav/xml.ts';
import { ICAL, instancesOf, overlaps, timeMs } from './calendar-object.ts';

export class FilterError extends Error {
  override name = 'FilterError';
  readonly precondition: string;
  constructor(message: string, precondition = 'supported-filter') {
    super(message);
    this.precondition = precondition;
  }
}

export interface TimeRange {
  from: number;
  to: number;
}

/** iCalendar UTC date-time (RFC 4791 §9.9: start/end are UTC, "Z"). */
export function parseUtc(value: string | undefined, attr: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(value.trim());
  if (!m) throw new FilterError(`time-range ${attr}="${value.slice(0, 40)}" must be a UTC date-time such as 20260101T000000Z`, 'valid-filter');
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

export function timeRangeOf(e: XmlElement): TimeRange {
  const from = parseUtc(e.attrs.start, 'start') ?? -Infinity;
  const to = parseUtc(e.attrs.end, 'end') ?? Infinity;
  if (!(to > from)) throw new FilterError('time-range end must be after start', 'valid-filter');
  return { from, to };
}

export function textMatches(value: string, tm: XmlElement): boolean {
  const collation = tm.attrs.collation ?? 'i;ascii-casemap';
  const needle = tm.text;
  let hit: boolean;
  if (collation === 'i;octet') hit = value.includes(needle);
  else if (collation === 'i;ascii-casemap' || collation === 'i;unicode-casemap') {
    const fold = (s: string) => (collation === 'i;ascii-casemap' ? s.replace(/[A-Z]/g, (c) => c.toLowerCase()) : s.toLowerCase());
    const mt = tm.attrs['match-type'] ?? 'contains';
    const v = fold(value);
    const n = fold(needle);
    hit = mt === 'equals' ? v === n : mt === 'starts-with' ? v.startsWith(n) : mt === 'ends-with' ? v.endsWith(n) : v.includes(n);
  } else throw new FilterError(`collation ${collation} is not supported: use i;ascii-casemap or i;octet`, 'supported-collation');
  return tm.attrs['negate-condition'] === 'yes' ? !hit : hit;
}

const propText = (p: ICAL.Property) => p.getValues().map((v) => String(v)).join(',');

function propFilterMatches(comp: ICAL.Component, pf: XmlElement, zone?: ICAL.Timezone): boolean {
  const name = (pf.attrs.name ?? '').toLowerCase();
  if (!name) throw new FilterError('prop-filter needs a name', 'valid-filter');
  const props = comp.getAllProperties(name);
  if (child(pf, CALDAV, 'is-not-defined')) return props.length === 0;
  if (props.length === 0) return false;
  const tr = child(pf, CALDAV, 'time-range');
  const tm = child(pf, CALDAV, 'text-match');
  const pfs = children(pf, CALDAV, 'param-filter');
  return props.some((p) => {
    if (tr) {
      const r = timeRangeOf(tr);
      const v = p.getFirstValue();
      if (!(v instanceof ICAL.Time)) return false;
      const t = timeMs(v, zone);
      if (!overlaps(t, t, r.from, r.to)) return false;
    }
    if (tm && !textMatches(propText(p), tm)) return false;
    for (const f of pfs) {
      const pname = (f.attrs.name ?? '').toLowerCase();
      const val = p.getParameter(pname);
      if (child(f, CALDAV, 'is-not-defined')) {
        if (val !== undefined && val !== null) return false;
        continue;
      }
      if (val === undefined || val === null) return false;
      const ptm = child(f, CALDAV, 'text-match');
      if (ptm && !textMatches(Array.isArray(val) ? val.join(',') : String(val), ptm)) return false;
    }
    return true;
  });
}

/** Does one component satisfy a comp-filter's nested conditions (not its own time-range)? */
function innerMatches(comp: ICAL.Component, cf: XmlElement, root: ICAL.Component, maxInstances: number, zone?: ICAL.Timezone): boolean {
  for (const pf of children(cf, CALDAV, 'prop-filter')) if (!propFilterMatches(comp, pf, zone)) return false;
  for (const sub of children(cf, CALDAV, 'comp-filter')) if (!compFilterMatches(comp, sub, root, maxInstances, zone)) return false;
  return true;
}

/** comp-filter applied to the children of `parent` (for the top one, parent is the document). */
export function compFilterMatches(parent: ICAL.Component, cf: XmlElement, root: ICAL.Component, maxInstances: number, zone?: ICAL.Timezone): boolean {
  const name = (cf.attrs.name ?? '').toLowerCase();
  if (!name) throw new FilterError('comp-filter needs a name', 'valid-filter');
  const candidates = parent === root && name === 'vcalendar' ? [root] : parent.getAllSubcomponents(name);
  if (child(cf, CALDAV, 'is-not-defined')) return candidates.length === 0;
  if (candidates.length === 0) return false;
  const tr = child(cf, CALDAV, 'time-range');
  if (tr) {
    const r = timeRangeOf(tr);
    if (name === 'valarm') throw new FilterError('time-range on VALARM is not supported');
    if (name === 'vcalendar') throw new FilterError('time-range applies to VEVENT, VTODO, VJOURNAL or VFREEBUSY', 'valid-filter');
    if (name === 'vfreebusy') {
      return candidates.some((c) => {
        const s = c.getFirstPropertyValue('dtstart');
        const e = c.getFirstPropertyValue('dtend');
        const ok = s instanceof ICAL.Time && e instanceof ICAL.Time ? overlaps(timeMs(s, zone), timeMs(e, zone), r.from, r.to) : false;
        return ok && innerMatches(c, cf, root, maxInstances, zone);
      });
    }
    const hits = new Set(instancesOf(parent, name, r.from, r.to, maxInstances, zone).map((i) => i.comp));
    return [...hits].some((c) => innerMatches(c, cf, root, maxInstances, zone));
  }
  return candidates.some((c) => innerMatches(c, cf, root, maxInstances, zone));
}

/** The whole CALDAV:filter element against one object; floating times are in `zone` (UTC without one). */
export function calendarFilterMatches(root: ICAL.Component, filter: XmlElement, maxInstances: number, zone?: ICAL.Timezone): boolean {
  const top = children(filter, CALDAV, 'comp-filter');
  if (top.length !== 1) throw new FilterError('the filter must hold exactly one comp-filter (name="VCALENDAR")', 'valid-filter');
  return compFilterMatches(root, top[0]!, root, maxInstances, zone);
}

/**
 * For the index: the component name and time range a filter asks for at its first level,
 * so only objects whose bounds overlap are parsed.
 */
export function prefilterOf(filter: XmlElement): { comp?: string; range?: TimeRange; simple?: boolean } {
  const cal = child(filter, CALDAV, 'comp-filter');
  if (!cal || (cal.attrs.name ?? '').toUpperCase() !== 'VCALENDAR' || child(cal, CALDAV, 'is-not-defined')) return {};
  const subs = children(cal, CALDAV, 'comp-filter');
  if (subs.length !== 1 || child(subs[0], CALDAV, 'is-not-defined')) return {};
  const comp = (subs[0]!.attrs.name ?? '').toUpperCase();
  const tr = child(subs[0], CALDAV, 'time-range');
  // Nothing but the one time-range (what clients ask nearly always): the index can answer.
  const simple = cal.children.length === 1 && subs[0]!.children.length === (tr ? 1 : 0);
  return { comp, ...(tr ? { range: timeRangeOf(tr) } : {}), simple };
}
