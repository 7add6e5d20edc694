/**
 * Properties (RFC 4918 §15 live properties; RFC 3744 §5 principal properties; RFC 5397
 * current-user-principal; RFC 4331 quota; RFC 4791 §5.2, §6.2; RFC 6352 §6.2, §7.1;
 * RFC 6578 sync-token; calendarserver.org getctag): what each resource answers to
 * PROPFIND, and which of them PROPPATCH may change.
 */
import type { CalendarConfig } from '../config.ts';
import type { Collection, ItemMeta } from '../store/repository.ts';
import { APPLE, CALDAV, CARDDAV, CS, DAV, clark, el, escapeXml } from './xml.ts';
import { ROOT, homeHref, type Access } from './resources.ts';

export type Resource =
  | { kind: 'root'; href: string; user: string }
  | { kind: 'home'; href: string; user: string }
  | { kind: 'collection'; href: string; user: string; coll: Collection; access: Access }
  | { kind: 'item'; href: string; user: string; coll: Collection; name: string; item: ItemMeta; access: Access };

export interface PropContext {
  config: CalendarConfig;
  /** Bytes stored by `user` (their own collections). */
  usedBytes(user: string): number;
  syncToken(coll: Collection): string;
}

const K = (ns: string, n: string) => clark(ns, n);
const hrefEl = (h: string) => el(DAV, 'href', escapeXml(h));
const privileges = (names: string[]) => names.map((n) => el(DAV, 'privilege', el(DAV, n))).join('');

/** Properties that `allprop` leaves out (RFC 4918 §9.1: expensive or large ones). */
const NOT_IN_ALLPROP = new Set([K(CALDAV, 'calendar-data'), K(CARDDAV, 'address-data'), K(DAV, 'quota-available-bytes'), K(DAV, 'quota-used-bytes'), K(DAV, 'current-user-privilege-set'), K(DAV, 'supported-report-set')]);
export const inAllprop = (name: string) => !NOT_IN_ALLPROP.has(name);

/** Properties a client may set or remove on a collection (dead properties are always allowed). */
export const PROTECTED = new Set([
  K(DAV, 'resourcetype'), K(DAV, 'getetag'), K(DAV, 'getcontenttype'), K(DAV, 'getcontentlength'), K(DAV, 'sync-token'), K(CS, 'getctag'),
  K(DAV, 'current-user-principal'), K(DAV, 'principal-collection-set'), K(DAV, 'owner'), K(DAV, 'supported-report-set'), K(DAV, 'current-user-privilege-set'),
  K(CALDAV, 'supported-calendar-component-set'), K(CALDAV, 'supported-calendar-data'), K(CARDDAV, 'supported-address-data'), K(CALDAV, 'max-resource-size'),
  K(DAV, 'quota-available-bytes'), K(DAV, 'quota-used-bytes'), K(CALDAV, 'calendar-home-set'), K(CARDDAV, 'addressbook-home-set'),
]);

function reports(kind: 'calendar' | 'addressbook'): string {
  const names: Array<[string, string]> = kind === 'calendar'
    ? [[CALDAV, 'calendar-query'], [CALDAV, 'calendar-multiget'], [CALDAV, 'free-busy-query'], [DAV, 'sync-collection']]
    : [[CARDDAV, 'addressbook-query'], [CARDDAV, 'addressbook-multiget'], [DAV, 'sync-collection']];
  return names.map(([ns, n]) => el(DAV, 'supported-report', el(DAV, 'report', el(ns, n)))).join('');
}

/** Every live property of a resource: name → XML value (computed on demand). */
export function liveProps(r: Resource, ctx: PropContext): Map<string, () => string> {
  const m = new Map<string, () => string>();
  const user = r.user;
  m.set(K(DAV, 'current-user-principal'), () => hrefEl(homeHref(user)));
  m.set(K(DAV, 'principal-collection-set'), () => hrefEl(ROOT));
  if (r.kind === 'root') {
    m.set(K(DAV, 'resourcetype'), () => el(DAV, 'collection'));
    m.set(K(DAV, 'displayname'), () => 'kith');
    return m;
  }
  if (r.kind === 'home') {
    const quota = ctx.config.limits.quotaBytes;
    m.set(K(DAV, 'resourcetype'), () => el(DAV, 'collection') + el(DAV, 'principal'));
    m.set(K(DAV, 'displayname'), () => escapeXml(ctx.config.users[user]?.name ?? user));
    m.set(K(DAV, 'principal-URL'), () => hrefEl(r.href));
    m.set(K(DAV, 'owner'), () => hrefEl(r.href));
    m.set(K(CALDAV, 'calendar-home-set'), () => hrefEl(r.href));
    m.set(K(CARDDAV, 'addressbook-home-set'), () => hrefEl(r.href));
    m.set(K(CALDAV, 'calendar-user-address-set'), () => hrefEl(`mailto:${user}@kith.home.arpa`) + hrefEl(r.href));
    m.set(K(DAV, 'quota-used-bytes'), () => String(ctx.usedBytes(user)));
    m.set(K(DAV, 'quota-available-bytes'), () => String(Math.max(0, quota - ctx.usedBytes(user))));
    m.set(K(DAV, 'current-user-privilege-set'), () => privileges(['read', 'write', 'write-properties', 'write-content', 'bind', 'unbind', 'read-current-user-privilege-set']));
    m.set(K(DAV, 'supported-report-set'), () => el(DAV, 'supported-report', el(DAV, 'report', el(DAV, 'sync-collection'))));
    return m;
  }
  const coll = r.coll;
  const rw = r.access !== 'read';
  const owner = homeHref(coll.owner);
  m.set(K(DAV, 'owner'), () => hrefEl(owner));
  m.set(K(DAV, 'current-user-privilege-set'), () => privileges(rw ? ['read', 'write', 'write-properties', 'write-content', 'bind', 'unbind', 'read-current-user-privilege-set'] : ['read', 'read-current-user-privilege-set']));
  if (r.kind === 'collection') {
    const type = coll.meta.type;
    m.set(K(DAV, 'resourcetype'), () => el(DAV, 'collection') + (type === 'calendar' ? el(CALDAV, 'calendar') : el(CARDDAV, 'addressbook')));
    m.set(K(DAV, 'displayname'), () => coll.meta.props[K(DAV, 'displayname')] ?? escapeXml(coll.name));
    m.set(K(DAV, 'sync-token'), () => escapeXml(ctx.syncToken(coll)));
    m.set(K(CS, 'getctag'), () => escapeXml(`"${coll.lastCommit}"`));
    m.set(K(DAV, 'getetag'), () => escapeXml(`"${coll.lastCommit}"`));
    m.set(K(DAV, 'supported-report-set'), () => reports(type));
    const quota = ctx.config.limits.quotaBytes;
    m.set(K(DAV, 'quota-used-bytes'), () => String(ctx.usedBytes(coll.owner)));
    m.set(K(DAV, 'quota-available-bytes'), () => String(Math.max(0, quota - ctx.usedBytes(coll.owner))));
    if (type === 'calendar') {
      m.set(K(CALDAV, 'supported-calendar-component-set'), () => (coll.meta.components ?? ['VEVENT', 'VTODO', 'VJOURNAL']).map((c) => `<C:comp name="${c}"/>`).join(''));
      m.set(K(CALDAV, 'supported-calendar-data'), () => '<C:calendar-data content-type="text/calendar" version="2.0"/>');
      m.set(K(CALDAV, 'max-resource-size'), () => String(ctx.config.limits.maxBodyBytes));
    } else {
      m.set(K(CARDDAV, 'supported-address-data'), () => '<CR:address-data-type content-type="text/vcard" version="3.0"/><CR:address-data-type content-type="text/vcard" version="4.0"/>');
      m.set(K(CARDDAV, 'max-resource-size'), () => String(ctx.config.limits.maxBodyBytes));
    }
    return m;
  }
  const item = r.item;
  m.set(K(DAV, 'resourcetype'), () => '');
  m.set(K(DAV, 'getetag'), () => escapeXml(`"${item.blob}"`));
  m.set(K(DAV, 'getcontentlength'), () => String(item.size));
  m.set(K(DAV, 'getcontenttype'), () => (coll.meta.type === 'calendar' ? `text/calendar; charset=utf-8${item.comp ? `; component=${item.comp.toLowerCase()}` : ''}` : 'text/vcard; charset=utf-8'));
  m.set(K(DAV, 'displayname'), () => escapeXml(r.name));
  return m;
}

/** Collection properties a client may change that are kept as XML in collection.json. */
export const SETTABLE_KNOWN = new Set([K(DAV, 'displayname'), K(CALDAV, 'calendar-description'), K(CARDDAV, 'addressbook-description'), K(CALDAV, 'calendar-timezone'), K(APPLE, 'calendar-color'), K(APPLE, 'calendar-order')]);
