/**
 * Partial retrieval of calendar data (RFC 4791 §9.6): which components and properties of
 * an object a client asked for (CALDAV:comp / CALDAV:prop / allcomp / allprop, with
 * novalue), and limit-freebusy-set (§9.6.7: only the FREEBUSY periods that overlap a
 * range). Both work on the parsed object and return a new one; the stored text is never
 * changed.
 */
import { CALDAV, child, children, type XmlElement } from '../dav/xml.ts';
import { FilterError } from './filter.ts';
import { ICAL, overlaps, timeMs } from './calendar-object.ts';

type JCal = [string, unknown[][], JCal[]];

function select(comp: JCal, sel: XmlElement): JCal {
  const [name, props, comps] = comp;
  const keepProps = child(sel, CALDAV, 'allprop')
    ? props
    : children(sel, CALDAV, 'prop').flatMap((p) => {
      const want = (p.attrs.name ?? '').toLowerCase();
      if (!want) throw new FilterError('CALDAV:prop needs a name', 'valid-filter');
      const novalue = (p.attrs.novalue ?? 'no').toLowerCase() === 'yes';
      // novalue: the property with an empty value (§9.6.4).
      return props.filter((x) => x[0] === want).map((x) => (novalue ? [x[0], x[1], 'unknown', ''] : x));
    });
  const keepComps = child(sel, CALDAV, 'allcomp')
    ? comps
    : children(sel, CALDAV, 'comp').flatMap((c) => {
      const want = (c.attrs.name ?? '').toLowerCase();
      if (!want) throw new FilterError('CALDAV:comp needs a name', 'valid-filter');
      return comps.filter((x) => x[0] === want).map((x) => select(x, c));
    });
  return [name, keepProps, keepComps];
}

/** The object with only what a CALDAV:comp selection names (its name must be VCALENDAR). */
export function selectParts(root: ICAL.Component, sel: XmlElement): ICAL.Component {
  if ((sel.attrs.name ?? '').toUpperCase() !== 'VCALENDAR') throw new FilterError('the top CALDAV:comp of calendar-data must be name="VCALENDAR"', 'valid-filter');
  return new ICAL.Component(select(root.toJSON() as JCal, sel) as unknown[]);
}

/** §9.6.7: FREEBUSY properties of VFREEBUSY components keep only periods overlapping [from, to). */
export function limitFreebusySet(root: ICAL.Component, from: number, to: number, zone?: ICAL.Timezone): ICAL.Component {
  const out = new ICAL.Component(JSON.parse(JSON.stringify(root.toJSON())) as unknown[]);
  for (const fb of out.getAllSubcomponents('vfreebusy')) {
    for (const p of fb.getAllProperties('freebusy')) {
      const kept = p.getValues().filter((v) => {
        if (!(v instanceof ICAL.Period)) return true;
        const s = timeMs(v.start, zone);
        const e = timeMs(v.end ?? v.getEnd(), zone);
        return overlaps(s, e, from, to);
      });
      if (kept.length === 0) fb.removeProperty(p);
      else p.setValues(kept);
    }
  }
  return out;
}
