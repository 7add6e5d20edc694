/**
 * The WebDAV / CalDAV / CardDAV methods, on an authenticated request whose body was
 * already read within the size limit: RFC 4918 (OPTIONS, PROPFIND, PROPPATCH, MKCOL,
 * GET, HEAD, PUT, DELETE, COPY, MOVE, preconditions and their status codes), RFC 5689
 * (extended MKCOL), RFC 4791 (MKCALENDAR; calendar-query, calendar-multiget,
 * free-busy-query REPORTs; expand and limit-recurrence-set), RFC 6352 (addressbook-query,
 * addressbook-multiget), RFC 6578 (sync-collection). Errors are values: a DavError knows
 * its status and the precondition element (RFC 4918 §16) it answers with.
 */
import type { CalendarConfig } from '../config.ts';
import { COMPONENTS, ICAL, TooManyInstances, expandObject, instancesOf, limitRecurrenceSet, parseComponent, spansOverlap, timeMs, validateCalendarObject, zoneOf } from '../ical/calendar-object.ts';
import { FilterError, calendarFilterMatches, prefilterOf, timeRangeOf } from '../ical/filter.ts';
import { limitFreebusySet, selectParts } from '../ical/partial.ts';
import { cardFilterMatches, parseCard, validateCard } from '../vcard/vcard.ts';
import { StoreClientError, type StoreBatchChange } from '../../../platform/store-client.ts';
import { META_FILE, collectionKey, itemPath, metaPath, type Collection, type CollectionMeta, type ItemMeta, type Mutation, type Repository } from '../store/repository.ts';
import { timeCandidates } from '../store/time-index.ts';
import { PROTECTED, SETTABLE_KNOWN, inAllprop, liveProps, type PropContext, type Resource } from './props.ts';
import { COLLECTION_RE, HrefError, ROOT, collectionHref, homeHref, itemHref, pathOfHref, resolve, type Target } from './resources.ts';
import { APPLE, CALDAV, CARDDAV, CS, DAV, XmlError, child, children, clark, document, el, escapeXml, keyOf, parseXml, serialize, tagOf, unescapeXml, type XmlElement } from './xml.ts';

export interface DavRequest {
  method: string;
  /** Raw path of the request URL (percent-encoded, no query). */
  path: string;
  headers: Record<string, string | undefined>;
  body: string;
  user: string;
}

export interface DavResponse {
  status: number;
  headers: Record<string, string>;
  /** A list is written piece by piece (chunked): a large multistatus is never one string. */
  body?: string | string[];
}

export class DavError extends Error {
  override name = 'DavError';
  readonly status: number;
  /** Precondition element (RFC 4918 §16), e.g. [DAV, 'propfind-finite-depth']. */
  readonly condition?: [string, string];
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, condition?: [string, string], headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.condition = condition;
    this.headers = headers;
  }
}

export const SYNC_PREFIX = 'http://kith.invalid/ns/sync/';
const XML_TYPE = 'application/xml; charset=utf-8';
const ALLOW_COLLECTION = 'OPTIONS, GET, HEAD, DELETE, PROPFIND, PROPPATCH, REPORT, COPY, MOVE';
const ALLOW_ITEM = 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT, COPY, MOVE';
const ALLOW_HOME = 'OPTIONS, PROPFIND, REPORT, MKCOL, MKCALENDAR';

export interface HandlerDeps {
  repo: Repository;
  config: () => CalendarConfig;
}

const isMutation = <R>(x: Mutation<R> | R): x is Mutation<R> => typeof x === 'object' && x !== null && 'changes' in (x as object) && 'message' in (x as object);

function errorBody(e: DavError): string {
  const cond = e.condition ? el(e.condition[0], e.condition[1]) : '';
  return document(DAV, 'error', cond + `<K:reason xmlns:K="http://kith.invalid/ns/">${escapeXml(e.message)}</K:reason>`);
}

export function errorResponse(e: DavError): DavResponse {
  return { status: e.status, headers: { 'content-type': XML_TYPE, ...e.headers }, body: errorBody(e) };
}

const etagOf = (blob: string) => `"${blob}"`;

/** If-Match / If-None-Match against the current ETag (undefined: no resource). RFC 9110 §13.1. */
function checkPreconditions(h: DavRequest['headers'], current: string | undefined): void {
  const im = h['if-match'];
  if (im !== undefined) {
    const tags = im.split(',').map((s) => s.trim().replace(/^W\//, ''));
    const ok = current !== undefined && (tags.includes('*') || tags.includes(current));
    if (!ok) throw new DavError(412, current === undefined ? 'If-Match: the resource does not exist' : `If-Match: the ETag is now ${current}; fetch it again and reapply your change`);
  }
  const inm = h['if-none-match'];
  if (inm !== undefined) {
    const tags = inm.split(',').map((s) => s.trim().replace(/^W\//, ''));
    if (current !== undefined && (tags.includes('*') || tags.includes(current))) throw new DavError(412, tags.includes('*') ? 'If-None-Match: * — the resource already exists' : 'If-None-Match: the ETag matches');
  }
}

function depthOf(h: DavRequest['headers'], dflt: '0' | '1' | 'infinity'): '0' | '1' | 'infinity' {
  const d = (h.depth ?? dflt).trim().toLowerCase();
  if (d !== '0' && d !== '1' && d !== 'infinity') throw new DavError(400, `Depth must be 0, 1 or infinity, not ${JSON.stringify(d.slice(0, 20))}`);
  return d;
}

function mediaType(h: DavRequest['headers']): string {
  return (h['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

interface PropRequest {
  mode: 'allprop' | 'propname' | 'prop';
  props: XmlElement[];
  include: XmlElement[];
}

export function createDavHandler(deps: HandlerDeps) {
  const { repo } = deps;

  const ctx = (): PropContext => ({
    config: deps.config(),
    usedBytes: (user) => {
      let n = 0;
      for (const c of repo.collections.values()) if (c.owner === user) for (const i of c.items.values()) n += i.size;
      return n;
    },
    syncToken: () => SYNC_PREFIX + (repo.head ?? 'empty'),
  });

  function collectionOf(owner: string, coll: string): Collection | undefined {
    return repo.collections.get(collectionKey(owner, coll));
  }

  function resourceOf(t: Target, user: string): Resource | undefined {
    if (t.kind === 'root') return { kind: 'root', href: ROOT, user };
    if (t.kind === 'home') return { kind: 'home', href: homeHref(t.user), user };
    const coll = collectionOf(t.owner, t.coll);
    if (!coll) return undefined;
    if (t.kind === 'collection') return { kind: 'collection', href: t.href, user, coll, access: t.access };
    const item = coll.items.get(t.item);
    if (!item) return undefined;
    return { kind: 'item', href: t.href, user, coll, name: t.item, item, access: t.access };
  }

  function target(req: DavRequest, pathname = req.path): Target | undefined {
    return resolve(deps.config(), req.user, pathname);
  }

  /** Collections visible in a user's home: their own, then those shared with them. */
  function homeMembers(user: string): Resource[] {
    const out: Resource[] = [];
    for (const c of repo.collections.values()) if (c.owner === user) out.push({ kind: 'collection', href: collectionHref(user, c.name), user, coll: c, access: 'owner' });
    for (const s of deps.config().shares) {
      if (s.with !== user) continue;
      const c = collectionOf(s.owner, s.collection);
      if (c) out.push({ kind: 'collection', href: collectionHref(user, `${s.owner}~${s.collection}`), user, coll: c, access: s.access });
    }
    return out;
  }

  function itemResources(r: Extract<Resource, { kind: 'collection' }>): Resource[] {
    return [...r.coll.items].map(([name, item]) => ({ kind: 'item', href: itemHref(r.href, name), user: r.user, coll: r.coll, name, item, access: r.access }));
  }

  // ---- reading item data ----

  async function textOf(coll: Collection, name: string, item: ItemMeta): Promise<string> {
    const t = await repo.textAt(itemPath(coll.owner, coll.name, name), item.blob, repo.head);
    if (t === undefined) throw new DavError(404, `${name} is gone`);
    return t;
  }

  // ---- PROPFIND ----

  function parsePropRequest(body: string): PropRequest {
    if (body.trim() === '') return { mode: 'allprop', props: [], include: [] };
    const root = parseXml(body);
    if (root.ns !== DAV || root.name !== 'propfind') throw new DavError(400, 'the PROPFIND body must be a DAV:propfind element');
    if (child(root, DAV, 'propname')) return { mode: 'propname', props: [], include: [] };
    const prop = child(root, DAV, 'prop');
    if (prop) return { mode: 'prop', props: prop.children, include: [] };
    return { mode: 'allprop', props: [], include: child(root, DAV, 'include')?.children ?? [] };
  }

  /** One DAV:response for a resource. `extra`: computed values (calendar-data) by Clark name. */
  async function responseFor(r: Resource, pr: PropRequest, extra?: (p: XmlElement) => Promise<string | undefined>): Promise<string> {
    // What a client asks of hundreds of items at once (a query or sync for getetag, a
    // multiget for getetag and calendar-data): answered without the live property table.
    if (r.kind === 'item' && pr.mode === 'prop' && pr.props.every((e) => (e.ns === DAV && e.name === 'getetag') || (extra && e.ns === (r.coll.meta.type === 'calendar' ? CALDAV : CARDDAV) && e.name === (r.coll.meta.type === 'calendar' ? 'calendar-data' : 'address-data')))) {
      let found = '';
      for (const e of pr.props) found += e.name === 'getetag' ? `<D:getetag>&quot;${r.item.blob}&quot;</D:getetag>` : el(e.ns, e.name, (await extra!(e))!);
      return `<D:response><D:href>${escapeXml(r.href)}</D:href><D:propstat><D:prop>${found}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`;
    }
    const live = liveProps(r, ctx());
    const dead = r.kind === 'collection' ? r.coll.meta.props : {};
    const found: string[] = [];
    const missing: string[] = [];
    if (pr.mode === 'propname') {
      const names = new Set([...live.keys(), ...Object.keys(dead)]);
      if (r.kind === 'item') names.add(clark(r.coll.meta.type === 'calendar' ? CALDAV : CARDDAV, r.coll.meta.type === 'calendar' ? 'calendar-data' : 'address-data'));
      for (const n of names) {
        const m = /^\{(.*)\}(.*)$/.exec(n)!;
        found.push(el(m[1]!, m[2]!));
      }
    } else {
      const wanted: Array<{ ns: string; name: string; e?: XmlElement }> = pr.mode === 'allprop'
        ? [...new Set([...[...live.keys()].filter(inAllprop), ...Object.keys(dead)])].map((n) => {
          const m = /^\{(.*)\}(.*)$/.exec(n)!;
          return { ns: m[1]!, name: m[2]! };
        }).concat(pr.include.map((e) => ({ ns: e.ns, name: e.name, e })))
        : pr.props.map((e) => ({ ns: e.ns, name: e.name, e }));
      for (const w of wanted) {
        const key = clark(w.ns, w.name);
        let value: string | undefined;
        const fromExtra = w.e && extra ? await extra(w.e) : undefined;
        if (fromExtra !== undefined) value = fromExtra;
        else if (live.has(key)) value = live.get(key)!();
        else if (dead[key] !== undefined && (r.kind === 'collection')) value = dead[key];
        else if (w.e && r.kind === 'item' && ((w.ns === CALDAV && w.name === 'calendar-data') || (w.ns === CARDDAV && w.name === 'address-data'))) value = escapeXml(await textOf(r.coll, r.name, r.item));
        if (value === undefined) missing.push(el(w.ns, w.name));
        else found.push(el(w.ns, w.name, value));
      }
    }
    let out = `<D:response><D:href>${escapeXml(r.href)}</D:href>`;
    if (found.length > 0) out += `<D:propstat><D:prop>${found.join('')}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`;
    if (missing.length > 0) out += `<D:propstat><D:prop>${missing.join('')}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>`;
    if (found.length === 0 && missing.length === 0) out += `<D:propstat><D:prop/><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`;
    return out + '</D:response>';
  }

  const multistatus = (parts: string[], extra = ''): DavResponse => {
    const [head, tail] = document(DAV, 'multistatus', '\u0000').split('\u0000') as [string, string];
    return { status: 207, headers: { 'content-type': XML_TYPE }, body: [head, ...parts, extra + tail] };
  };
  const notFoundResponse = (href: string) => `<D:response><D:href>${escapeXml(href)}</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>`;

  async function propfind(req: DavRequest): Promise<DavResponse> {
    const depth = depthOf(req.headers, 'infinity');
    if (depth === 'infinity') throw new DavError(403, 'Depth: infinity is not served: ask with Depth: 0 or 1', [DAV, 'propfind-finite-depth']);
    const pr = parsePropRequest(req.body);
    const t = target(req);
    const r = t ? resourceOf(t, req.user) : undefined;
    if (!r) throw new DavError(404, 'nothing here');
    const parts = [await responseFor(r, pr)];
    if (depth === '1') {
      const members: Resource[] = r.kind === 'root' ? [{ kind: 'home', href: homeHref(req.user), user: req.user }] : r.kind === 'home' ? homeMembers(req.user) : r.kind === 'collection' ? itemResources(r) : [];
      for (const m of members) parts.push(await responseFor(m, pr));
    }
    return multistatus(parts);
  }

  // ---- PROPPATCH / MKCOL / MKCALENDAR ----

  /** Apply DAV:set / DAV:remove instructions to collection props; statuses per property. */
  function applyPropUpdates(meta: CollectionMeta, instructions: XmlElement[], creating: boolean): { ok: boolean; statuses: Array<[XmlElement, number]> } {
    const statuses: Array<[XmlElement, number]> = [];
    let ok = true;
    for (const ins of instructions) {
      const set = ins.ns === DAV && ins.name === 'set';
      if (!set && !(ins.ns === DAV && ins.name === 'remove')) continue;
      for (const p of child(ins, DAV, 'prop')?.children ?? []) {
        const key = keyOf(p);
        if (key === clark(DAV, 'resourcetype') && creating) {
          statuses.push([p, 200]);
          continue;
        }
        if (key === clark(CALDAV, 'supported-calendar-component-set') && creating && set) {
          const comps = children(p, CALDAV, 'comp').map((c) => (c.attrs.name ?? '').toUpperCase());
          if (comps.length === 0 || comps.some((c) => !(COMPONENTS as readonly string[]).includes(c))) {
            statuses.push([p, 403]);
            ok = false;
          } else {
            meta.components = comps;
            statuses.push([p, 200]);
          }
          continue;
        }
        if (PROTECTED.has(key)) {
          statuses.push([p, 403]);
          ok = false;
          continue;
        }
        const inner = p.children.length > 0 ? p.children.map(serialize).join('') : escapeXml(p.text);
        if (inner.length > 16_384) {
          statuses.push([p, 507]);
          ok = false;
          continue;
        }
        if (set) meta.props[key] = inner;
        else delete meta.props[key];
        statuses.push([p, 200]);
      }
    }
    if (Object.keys(meta.props).length > 100) ok = false;
    return { ok, statuses };
  }

  function propstatResponse(href: string, statuses: Array<[XmlElement, number]>, ok: boolean): string {
    const groups = new Map<number, string[]>();
    for (const [p, s] of statuses) {
      const st = ok ? s : s === 200 ? 424 : s;
      const list = groups.get(st) ?? [];
      list.push(el(p.ns, p.name));
      groups.set(st, list);
    }
    const text: Record<number, string> = { 200: 'OK', 403: 'Forbidden', 424: 'Failed Dependency', 507: 'Insufficient Storage' };
    let out = `<D:response><D:href>${escapeXml(href)}</D:href>`;
    for (const [s, props] of groups) out += `<D:propstat><D:prop>${props.join('')}</D:prop><D:status>HTTP/1.1 ${s} ${text[s] ?? ''}</D:status>${s === 403 ? '<D:error><D:cannot-modify-protected-property/></D:error>' : ''}</D:propstat>`;
    return out + '</D:response>';
  }

  async function proppatch(req: DavRequest): Promise<DavResponse> {
    const root = parseXml(req.body);
    if (root.ns !== DAV || root.name !== 'propertyupdate') throw new DavError(400, 'the PROPPATCH body must be a DAV:propertyupdate element');
    return repo.mutate(() => {
      const t = target(req);
      const r = t ? resourceOf(t, req.user) : undefined;
      if (!r || !t) throw new DavError(404, 'nothing here');
      if (r.kind !== 'collection' || t.kind !== 'collection') {
        // Properties of principals and items are all live here: none can be changed.
        const statuses = root.children.flatMap((ins) => (child(ins, DAV, 'prop')?.children ?? []).map((p) => [p, 403] as [XmlElement, number]));
        return multistatus([propstatResponse(r.href, statuses, false)]);
      }
      if (t.access === 'read') throw new DavError(403, 'this collection is shared with you read-only', [DAV, 'need-privileges']);
      const meta: CollectionMeta = JSON.parse(JSON.stringify(r.coll.meta)) as CollectionMeta;
      const { ok, statuses } = applyPropUpdates(meta, root.children, false);
      const resp = multistatus([propstatResponse(r.href, statuses, ok)]);
      if (!ok) return resp;
      return { changes: [{ path: metaPath(t.owner, t.coll), content: JSON.stringify(meta, null, 1) + '\n' }], message: `PROPPATCH ${t.owner}/${t.coll} by ${req.user}`, result: resp };
    }, isMutation);
  }

  async function mkcol(req: DavRequest, calendar: boolean): Promise<DavResponse> {
    let instructions: XmlElement[] = [];
    let type: 'calendar' | 'addressbook' | undefined = calendar ? 'calendar' : undefined;
    if (req.body.trim() !== '') {
      if (mediaType(req.headers) && !/xml$/.test(mediaType(req.headers))) throw new DavError(415, `a ${req.method} body is XML, not ${mediaType(req.headers)}`);
      const root = parseXml(req.body);
      const want = calendar ? [CALDAV, 'mkcalendar'] : [DAV, 'mkcol'];
      if (root.ns !== want[0] || root.name !== want[1]) throw new DavError(400, `the ${req.method} body must be a ${want[1]} element`);
      instructions = root.children;
      if (!calendar) {
        const rt = instructions.flatMap((i) => child(child(i, DAV, 'prop'), DAV, 'resourcetype')?.children ?? []);
        if (rt.some((e) => e.ns === CALDAV && e.name === 'calendar')) type = 'calendar';
        else if (rt.some((e) => e.ns === CARDDAV && e.name === 'addressbook')) type = 'addressbook';
        const unknown = rt.find((e) => !(e.ns === DAV && e.name === 'collection') && !(e.ns === CALDAV && e.name === 'calendar') && !(e.ns === CARDDAV && e.name === 'addressbook'));
        if (unknown) throw new DavError(403, `cannot make a collection of type {${unknown.ns}}${unknown.name}`, [DAV, 'valid-resourcetype']);
      }
    }
    if (!type) throw new DavError(403, 'only calendars (MKCALENDAR) and address books (extended MKCOL with CARDDAV:addressbook, RFC 5689) can be made here', [DAV, 'valid-resourcetype']);
    return repo.mutate<DavResponse>(() => {
      const t = target(req);
      // Another user's home (or one that does not exist): not yours to add to.
      if (!t) throw new DavError(/^\/dav\/[^/]+\/[^/]+\/?$/.test(req.path) ? 403 : 409, 'collections are made in your home, /dav/<you>/<name>/');
      if (t.kind !== 'collection') throw new DavError(t.kind === 'item' ? 409 : 405, t.kind === 'item' ? 'collections are made in your home, not inside another collection' : 'this resource exists already', undefined, t.kind === 'item' ? {} : { allow: ALLOW_HOME });
      if (t.access !== 'owner' || t.owner !== req.user) throw new DavError(403, 'collections are made in your own home');
      if (collectionOf(t.owner, t.coll)) throw new DavError(405, `${t.coll} exists already`, calendar ? [CALDAV, 'resource-must-be-null'] : undefined, { allow: ALLOW_COLLECTION });
      if (!COLLECTION_RE.test(t.coll)) throw new DavError(403, `a collection name is letters, digits, '.', '_' and '-' (starting with a letter or digit), at most 127: ${JSON.stringify(t.coll.slice(0, 80))} is not`);
      const count = [...repo.collections.values()].filter((c) => c.owner === req.user).length;
      if (count >= deps.config().limits.maxCollections) throw new DavError(507, `you have ${count} collections, the limit (limits.maxCollections); delete one first`, [DAV, 'quota-not-exceeded']);
      const meta: CollectionMeta = { type: type!, props: {}, ...(type === 'calendar' ? { components: ['VEVENT', 'VTODO', 'VJOURNAL'] } : {}) };
      const { ok, statuses } = applyPropUpdates(meta, instructions, true);
      if (!ok) {
        const body = document(calendar ? CALDAV : DAV, calendar ? 'mkcalendar-response' : 'mkcol-response', statuses.map(([p, s]) => `<D:propstat><D:prop>${el(p.ns, p.name)}</D:prop><D:status>HTTP/1.1 ${s === 200 ? '424 Failed Dependency' : s + ' Forbidden'}</D:status></D:propstat>`).join(''));
        return { status: 403, headers: { 'content-type': XML_TYPE }, body };
      }
      return { changes: [{ path: metaPath(t.owner, t.coll), content: JSON.stringify(meta, null, 1) + '\n' }], message: `${req.method} ${t.owner}/${t.coll} (${type}) by ${req.user}`, result: { status: 201, headers: { location: t.href, 'cache-control': 'no-cache' } } as DavResponse };
    }, isMutation);
  }

  // ---- GET / PUT / DELETE ----

  async function get(req: DavRequest): Promise<DavResponse> {
    const t = target(req);
    const r = t ? resourceOf(t, req.user) : undefined;
    if (!r) throw new DavError(404, 'nothing here');
    const head = req.method === 'HEAD';
    if (r.kind === 'item') {
      const etag = etagOf(r.item.blob);
      const inm = req.headers['if-none-match'];
      if (inm && inm.split(',').some((x) => x.trim() === etag || x.trim() === '*')) return { status: 304, headers: { etag } };
      const text = head ? '' : await textOf(r.coll, r.name, r.item);
      const type = r.coll.meta.type === 'calendar' ? 'text/calendar; charset=utf-8' : 'text/vcard; charset=utf-8';
      return { status: 200, headers: { 'content-type': type, etag, 'content-length': String(head ? r.item.size : Buffer.byteLength(text)) }, ...(head ? {} : { body: text }) };
    }
    // Collections and principals: a plain listing for people who open the URL in a browser.
    const members = r.kind === 'home' ? homeMembers(req.user) : r.kind === 'collection' ? itemResources(r) : [{ href: homeHref(req.user) }];
    const body = `kith calendar: ${r.href}\n\n${members.map((m) => m.href).join('\n')}\n`;
    return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8', ...(r.kind === 'collection' ? { etag: `"${r.coll.lastCommit}"` } : {}) }, ...(head ? {} : { body }) };
  }

  function checkItemBody(type: 'calendar' | 'addressbook', req: DavRequest, coll: Collection): { summary: Omit<ItemMeta, 'blob' | 'size'> } {
    const mt = mediaType(req.headers);
    if (type === 'calendar') {
      if (mt && mt !== 'text/calendar') throw new DavError(415, `a calendar stores text/calendar, not ${mt}`, [CALDAV, 'supported-calendar-data']);
      const v = validateCalendarObject(req.body, deps.config().limits.maxInstances);
      if (!v.ok) throw new DavError(v.precondition === 'supported-calendar-component' ? 403 : 400, v.reason, [CALDAV, v.precondition ?? 'valid-calendar-data']);
      const allowed = coll.meta.components ?? ['VEVENT', 'VTODO', 'VJOURNAL'];
      if (!allowed.includes(v.value.comp)) throw new DavError(403, `this calendar holds ${allowed.join(', ')}, not ${v.value.comp}`, [CALDAV, 'supported-calendar-component']);
      return { summary: v.value };
    }
    if (mt && mt !== 'text/vcard' && mt !== 'text/x-vcard') throw new DavError(415, `an address book stores text/vcard, not ${mt}`, [CARDDAV, 'supported-address-data']);
    const v = validateCard(req.body);
    if (!v.ok) throw new DavError(400, v.reason, [CARDDAV, v.precondition ?? 'valid-address-data']);
    return { summary: { uid: v.value.uid } };
  }

  function uidConflict(coll: Collection, uid: string, except: string): string | undefined {
    for (const [name, i] of coll.items) if (i.uid === uid && name !== except) return name;
    return undefined;
  }

  function checkQuota(owner: string, added: number): void {
    const c = ctx();
    const used = c.usedBytes(owner);
    if (used + added > c.config.limits.quotaBytes) throw new DavError(507, `storing this would use ${used + added} bytes, over the quota of ${c.config.limits.quotaBytes} (limits.quotaBytes)`, [DAV, 'quota-not-exceeded']);
  }

  async function put(req: DavRequest): Promise<DavResponse> {
    return repo.mutate(() => {
      const t = target(req);
      if (!t) throw new DavError(404, 'nothing here: items go into /dav/<you>/<collection>/<name>');
      if (t.kind !== 'item') throw new DavError(405, 'PUT makes items inside a calendar or address book; collections are made with MKCALENDAR or MKCOL', undefined, { allow: t.kind === 'collection' ? ALLOW_COLLECTION : ALLOW_HOME });
      const coll = collectionOf(t.owner, t.coll);
      if (!coll) throw new DavError(409, `the collection ${t.coll} does not exist: make it first (MKCALENDAR or MKCOL)`);
      if (t.access === 'read') throw new DavError(403, 'this collection is shared with you read-only', [DAV, 'need-privileges']);
      const existing = coll.items.get(t.item);
      checkPreconditions(req.headers, existing ? etagOf(existing.blob) : undefined);
      const { summary } = checkItemBody(coll.meta.type, req, coll);
      const clash = uidConflict(coll, summary.uid, t.item);
      if (clash) {
        const [ns, name] = coll.meta.type === 'calendar' ? [CALDAV, 'no-uid-conflict'] : [CARDDAV, 'no-uid-conflict'];
        throw new DavError(409, `UID ${summary.uid} is already used by ${itemHref(t.collHref, clash)}`, [ns, name]);
      }
      checkQuota(t.owner, Buffer.byteLength(req.body) - (existing?.size ?? 0));
      const p = itemPath(t.owner, t.coll, t.item);
      return {
        changes: [{ path: p, content: req.body }],
        message: `${existing ? 'Update' : 'Add'} ${t.owner}/${t.coll}/${t.item} (${summary.comp ?? 'vCard'} ${summary.uid}) by ${req.user}`,
        items: { [p]: summary },
        result: { status: existing ? 204 : 201, headers: {}, path: p } as DavResponse & { path: string },
      };
    }, isMutation).then((r) => {
      const res = r as DavResponse & { path?: string };
      const t = target(req) as Extract<Target, { kind: 'item' }>;
      const item = collectionOf(t.owner, t.coll)?.items.get(t.item);
      const headers: Record<string, string> = { ...res.headers };
      if (item) headers.etag = etagOf(item.blob);
      if (res.status === 201) headers.location = t.href;
      return { status: res.status, headers };
    });
  }

  function deleteChanges(coll: Collection): StoreBatchChange[] {
    return [...[...coll.items.keys()].map((i) => ({ path: itemPath(coll.owner, coll.name, i), content: null })), { path: metaPath(coll.owner, coll.name), content: null }];
  }

  async function del(req: DavRequest): Promise<DavResponse> {
    const t0 = target(req);
    if (t0?.kind === 'collection') {
      // Large collections go in several commits (the store takes at most 1000 changes in
      // one); items first, the collection file last, so a crash leaves a usable collection.
      for (let round = 0; round < 1000 && t0.access === 'owner' && (collectionOf(t0.owner, t0.coll)?.items.size ?? 0) > 900; round++) {
        await repo.mutate(() => {
          const c = collectionOf(t0.owner, t0.coll);
          if (!c) return undefined;
          const items = [...c.items.keys()].slice(0, 900).map((i) => ({ path: itemPath(c.owner, c.name, i), content: null }));
          return { changes: items, message: `Delete ${c.owner}/${c.name} (part) by ${req.user}`, result: undefined };
        }, isMutation);
      }
    }
    return repo.mutate(() => {
      const t = target(req);
      const r = t ? resourceOf(t, req.user) : undefined;
      if (!r || !t) throw new DavError(404, 'nothing here');
      if (r.kind === 'root' || r.kind === 'home' || t.kind === 'root' || t.kind === 'home') throw new DavError(403, 'principals and homes cannot be deleted');
      if (t.access === 'read') throw new DavError(403, 'this collection is shared with you read-only', [DAV, 'need-privileges']);
      if (r.kind === 'collection') {
        if (t.access !== 'owner') throw new DavError(403, 'only the owner deletes a collection');
        checkPreconditions(req.headers, `"${r.coll.lastCommit}"`);
        return { changes: deleteChanges(r.coll), message: `Delete ${r.coll.owner}/${r.coll.name} by ${req.user}`, result: { status: 204, headers: {} } as DavResponse };
      }
      checkPreconditions(req.headers, etagOf(r.item.blob));
      return { changes: [{ path: itemPath(r.coll.owner, r.coll.name, r.name), content: null }], message: `Delete ${r.coll.owner}/${r.coll.name}/${r.name} (${r.item.comp ?? 'vCard'} ${r.item.uid}) by ${req.user}`, result: { status: 204, headers: {} } as DavResponse };
    }, isMutation);
  }

  // ---- COPY / MOVE (RFC 4918 §9.8, §9.9) ----

  async function copyMove(req: DavRequest, move: boolean): Promise<DavResponse> {
    const destHeader = req.headers.destination;
    if (!destHeader) throw new DavError(400, `${req.method} needs a Destination header`);
    const destPath = pathOfHref(destHeader);
    const overwrite = (req.headers.overwrite ?? 'T').trim().toUpperCase() !== 'F';
    return repo.mutate(() => {
      const t = target(req);
      const r = t ? resourceOf(t, req.user) : undefined;
      if (!r || !t) throw new DavError(404, 'nothing here');
      const d = target(req, destPath);
      if (!d) throw new DavError(409, 'the destination is not in one of your collections');
      if (d.kind === 'root' || d.kind === 'home') throw new DavError(403, 'cannot copy or move onto a home');
      if (r.kind === 'item' && t.kind === 'item') {
        if (d.kind !== 'item') throw new DavError(409, 'an item goes into a collection: Destination /dav/<you>/<collection>/<name>');
        if (move && t.access === 'read') throw new DavError(403, 'the source is shared with you read-only');
        if (d.access === 'read') throw new DavError(403, 'the destination is shared with you read-only');
        const dc = collectionOf(d.owner, d.coll);
        if (!dc) throw new DavError(409, `the collection ${d.coll} does not exist`);
        if (dc.meta.type !== r.coll.meta.type) throw new DavError(403, `a ${r.coll.meta.type} item cannot go into a ${dc.meta.type}`, dc.meta.type === 'calendar' ? [CALDAV, 'supported-calendar-data'] : [CARDDAV, 'supported-address-data']);
        if (dc === r.coll && d.item === r.name) throw new DavError(403, 'source and destination are the same');
        const existing = dc.items.get(d.item);
        if (existing && !overwrite) throw new DavError(412, 'the destination exists and Overwrite is F');
        if (dc.meta.type === 'calendar' && r.item.comp && !(dc.meta.components ?? ['VEVENT', 'VTODO', 'VJOURNAL']).includes(r.item.comp)) throw new DavError(403, `that calendar does not hold ${r.item.comp}`, [CALDAV, 'supported-calendar-component']);
        const clash = [...dc.items].find(([n, i]) => i.uid === r.item.uid && n !== d.item && !(move && dc === r.coll && n === r.name));
        if (clash) throw new DavError(409, `UID ${r.item.uid} is already in the destination collection`, dc.meta.type === 'calendar' ? [CALDAV, 'no-uid-conflict'] : [CARDDAV, 'no-uid-conflict']);
        return (async () => {
          const text = await textOf(r.coll, r.name, r.item);
          const dp = itemPath(d.owner, d.coll, d.item);
          const changes: StoreBatchChange[] = [{ path: dp, content: text }];
          if (move) changes.push({ path: itemPath(r.coll.owner, r.coll.name, r.name), content: null });
          return { changes, message: `${move ? 'Move' : 'Copy'} ${r.coll.owner}/${r.coll.name}/${r.name} to ${d.owner}/${d.coll}/${d.item} by ${req.user}`, items: { [dp]: { uid: r.item.uid, comp: r.item.comp, minStart: r.item.minStart, maxEnd: r.item.maxEnd, spans: r.item.spans, horizon: r.item.horizon, floating: r.item.floating } }, result: { status: existing ? 204 : 201, headers: existing ? {} : { location: d.href } } as DavResponse };
        })();
      }
      if (r.kind === 'collection' && t.kind === 'collection') {
        if (d.kind !== 'collection' || d.owner !== req.user || t.owner !== req.user) throw new DavError(403, 'collections are copied or moved within your own home');
        if (!COLLECTION_RE.test(d.coll)) throw new DavError(403, 'not a usable collection name');
        if (collectionOf(d.owner, d.coll)) {
          if (!overwrite) throw new DavError(412, 'the destination exists and Overwrite is F');
          throw new DavError(403, 'the destination collection exists: delete it first');
        }
        if (r.coll.items.size > 450) throw new DavError(507, 'collections of more than 450 items are copied with a client (the store takes 1000 changes per commit)');
        return (async () => {
          const changes: StoreBatchChange[] = [{ path: metaPath(d.owner, d.coll), content: JSON.stringify(r.coll.meta, null, 1) + '\n' }];
          const items: Record<string, Omit<ItemMeta, 'blob' | 'size'>> = {};
          for (const [name, item] of r.coll.items) {
            const p = itemPath(d.owner, d.coll, name);
            changes.push({ path: p, content: await textOf(r.coll, name, item) });
            items[p] = { uid: item.uid, comp: item.comp, minStart: item.minStart, maxEnd: item.maxEnd, spans: item.spans, horizon: item.horizon, floating: item.floating };
          }
          if (move) changes.push(...deleteChanges(r.coll));
          return { changes, items, message: `${move ? 'Move' : 'Copy'} ${t.owner}/${t.coll} to ${d.coll} by ${req.user}`, result: { status: 201, headers: { location: d.href } } as DavResponse };
        })();
      }
      throw new DavError(403, 'only items and collections can be copied or moved');
    }, isMutation);
  }

  // ---- REPORT ----

  /** Floating times in a collection are in its CALDAV:calendar-timezone (RFC 4791 §5.2.2); UTC without one. */
  function zoneOfCollection(coll: Collection): ICAL.Timezone | undefined {
    const tz = coll.meta.props[clark(CALDAV, 'calendar-timezone')];
    return tz ? zoneOf(unescapeXml(tz)) : undefined;
  }

  /**
   * calendar-data / address-data as asked for (RFC 4791 §9.6): expand, limit-recurrence-set
   * and limit-freebusy-set first, then the comp/prop selection. Plain requests (the common
   * case) send the stored text as it is, unparsed.
   */
  function dataProp(coll: Collection, name: string, item: ItemMeta, zone?: ICAL.Timezone) {
    return async (p: XmlElement): Promise<string | undefined> => {
      if (p.ns === CARDDAV && p.name === 'address-data' && coll.meta.type === 'addressbook') return escapeXml(await textOf(coll, name, item));
      if (!(p.ns === CALDAV && p.name === 'calendar-data') || coll.meta.type !== 'calendar') return undefined;
      const text = await textOf(coll, name, item);
      if (p.children.length === 0) return escapeXml(text);
      const expand = child(p, CALDAV, 'expand');
      const limit = child(p, CALDAV, 'limit-recurrence-set');
      const fbLimit = child(p, CALDAV, 'limit-freebusy-set');
      const sel = child(p, CALDAV, 'comp');
      if (!expand && !limit && !fbLimit && !sel) return escapeXml(text);
      const z = zone ?? zoneOfCollection(coll);
      let root = parseComponent(text);
      if (expand || limit) {
        const range = timeRangeOf(expand ?? limit!);
        root = parseComponent(expand ? expandObject(root, range.from, range.to, deps.config().limits.maxInstances, z) : limitRecurrenceSet(root, range.from, range.to, z));
      }
      if (fbLimit) {
        const range = timeRangeOf(fbLimit);
        root = limitFreebusySet(root, range.from, range.to, z);
      }
      if (sel) root = selectParts(root, sel);
      return escapeXml(root.toString() + '\r\n');
    };
  }

  async function report(req: DavRequest): Promise<DavResponse> {
    const root = parseXml(req.body);
    const t = target(req);
    const r = t ? resourceOf(t, req.user) : undefined;
    if (!r) throw new DavError(404, 'nothing here');
    const propReq = (): PropRequest => {
      const prop = child(root, DAV, 'prop');
      if (child(root, DAV, 'allprop')) return { mode: 'allprop', props: [], include: [] };
      if (child(root, DAV, 'propname')) return { mode: 'propname', props: [], include: [] };
      return { mode: 'prop', props: prop?.children ?? [], include: [] };
    };
    const key = `${root.ns} ${root.name}`;
    switch (key) {
      case `${CALDAV} calendar-multiget`:
      case `${CARDDAV} addressbook-multiget`: {
        const pr = propReq();
        const parts: string[] = [];
        for (const h of children(root, DAV, 'href')) {
          let href = h.text.trim();
          try {
            const ht = target(req, pathOfHref(href));
            const hr = ht ? resourceOf(ht, req.user) : undefined;
            if (!hr || hr.kind !== 'item') {
              parts.push(notFoundResponse(href));
              continue;
            }
            href = hr.href;
            parts.push(await responseFor(hr, pr, dataProp(hr.coll, hr.name, hr.item)));
          } catch (err) {
            if (err instanceof HrefError) parts.push(notFoundResponse(href));
            else throw err;
          }
        }
        return multistatus(parts);
      }
      case `${CALDAV} calendar-query`:
        return calendarQuery(req, root, r, propReq());
      case `${CARDDAV} addressbook-query`:
        return addressbookQuery(req, root, r, propReq());
      case `${CALDAV} free-busy-query`:
        return freeBusy(root, r);
      case `${DAV} sync-collection`:
        return syncCollection(req, root, r, propReq());
      default:
        throw new DavError(403, `the ${root.name} report is not supported here`, [DAV, 'supported-report']);
    }
  }

  type ItemResource = Extract<Resource, { kind: 'item' }>;
  /** The items a query looks at; each Resource (and its href) is made only when asked for. */
  function* itemsIn(r: Resource, depth: '0' | '1' | 'infinity'): Generator<{ name: string; item: ItemMeta; coll: Collection; resource: () => ItemResource }> {
    if (r.kind === 'item') yield { name: r.name, item: r.item, coll: r.coll, resource: () => r };
    else if (r.kind === 'collection' && depth !== '0') {
      for (const [name, item] of r.coll.items) yield { name, item, coll: r.coll, resource: () => ({ kind: 'item', href: itemHref(r.href, name), user: r.user, coll: r.coll, name, item, access: r.access }) };
    }
  }

  function* candidatesIn(r: Extract<Resource, { kind: 'collection' }>, from: number, to: number): Generator<{ name: string; item: ItemMeta; coll: Collection; resource: () => ItemResource }> {
    for (const name of timeCandidates(r.coll, from, to)) {
      const item = r.coll.items.get(name);
      if (item) yield { name, item, coll: r.coll, resource: () => ({ kind: 'item', href: itemHref(r.href, name), user: r.user, coll: r.coll, name, item, access: r.access }) };
    }
  }

  async function calendarQuery(req: DavRequest, root: XmlElement, r: Resource, pr: PropRequest): Promise<DavResponse> {
    const filter = child(root, CALDAV, 'filter');
    if (!filter) throw new DavError(400, 'calendar-query needs a CALDAV:filter', [CALDAV, 'valid-filter']);
    if (r.kind === 'collection' && r.coll.meta.type !== 'calendar') throw new DavError(403, 'calendar-query is for calendars', [DAV, 'supported-report']);
    const max = deps.config().limits.maxInstances;
    const parts: string[] = [];
    // Floating times: in the query's CALDAV:timezone (§9.8), else the calendar's (§7.3).
    const tzEl = child(root, CALDAV, 'timezone');
    const zone = tzEl ? zoneOf(tzEl.text) : r.kind === 'collection' || r.kind === 'item' ? zoneOfCollection(r.coll) : undefined;
    if (tzEl && !zone) throw new DavError(400, 'CALDAV:timezone must hold a VCALENDAR with one VTIMEZONE', [CALDAV, 'valid-calendar-data']);
    try {
      const pre = prefilterOf(filter);
      const depth = depthOf(req.headers, '0');
      // With a time range, only the items the time index names are looked at.
      const source = pre.range && r.kind === 'collection' && depth !== '0' ? candidatesIn(r, pre.range.from, pre.range.to) : itemsIn(r, depth);
      for (const it of source) {
        const i = it.item;
        if (pre.comp && i.comp && pre.comp !== i.comp) continue;
        if (pre.range && ((i.maxEnd ?? Infinity) < pre.range.from || (i.minStart ?? -Infinity) >= pre.range.to)) continue;
        if (pre.simple && pre.comp === 'VEVENT' && i.comp === 'VEVENT' && i.spans && !(i.floating && zone) && (!pre.range || pre.range.to <= (i.horizon ?? Infinity))) {
          // A plain time-range on events: the instances in the index decide, no parsing.
          if (pre.range && !spansOverlap(i.spans, pre.range.from, pre.range.to)) continue;
        } else {
          const text = await textOf(it.coll, it.name, i);
          if (!calendarFilterMatches(parseComponent(text), filter, max, zone)) continue;
        }
        parts.push(await responseFor(it.resource(), pr, dataProp(it.coll, it.name, i, zone)));
      }
    } catch (err) {
      if (err instanceof FilterError) throw new DavError(err.precondition === 'supported-collation' ? 403 : 400, err.message, [CALDAV, err.precondition]);
      if (err instanceof TooManyInstances) throw new DavError(403, err.message, [DAV, 'number-of-matches-within-limits']);
      throw err;
    }
    return multistatus(parts);
  }

  async function addressbookQuery(req: DavRequest, root: XmlElement, r: Resource, pr: PropRequest): Promise<DavResponse> {
    const filter = child(root, CARDDAV, 'filter') ?? { ns: CARDDAV, name: 'filter', attrs: {}, children: [], text: '' };
    if (r.kind === 'collection' && r.coll.meta.type !== 'addressbook') throw new DavError(403, 'addressbook-query is for address books', [DAV, 'supported-report']);
    const limitEl = child(child(root, CARDDAV, 'limit'), CARDDAV, 'nresults');
    const limit = limitEl ? Number(limitEl.text.trim()) : Infinity;
    const parts: string[] = [];
    let truncated = false;
    try {
      for (const it of itemsIn(r, depthOf(req.headers, '0'))) {
        const card = parseCard(await textOf(it.coll, it.name, it.item));
        if (!cardFilterMatches(card, filter)) continue;
        if (parts.length >= limit) {
          truncated = true;
          break;
        }
        parts.push(await responseFor(it.resource(), pr, dataProp(it.coll, it.name, it.item)));
      }
    } catch (err) {
      if (err instanceof FilterError) throw new DavError(err.precondition === 'supported-collation' ? 403 : 400, err.message, [CARDDAV, err.precondition]);
      throw err;
    }
    if (truncated) parts.push(`<D:response><D:href>${escapeXml(r.href)}</D:href><D:status>HTTP/1.1 507 Insufficient Storage</D:status><D:error><D:number-of-matches-within-limits/></D:error></D:response>`);
    return multistatus(parts);
  }

  /** RFC 4791 §7.10: busy time of the calendar's events in the range, as one VFREEBUSY. */
  async function freeBusy(root: XmlElement, r: Resource): Promise<DavResponse> {
    if (r.kind !== 'collection' || r.coll.meta.type !== 'calendar') throw new DavError(403, 'free-busy-query is made on a calendar', [DAV, 'supported-report']);
    const tr = child(root, CALDAV, 'time-range');
    if (!tr) throw new DavError(400, 'free-busy-query needs a CALDAV:time-range');
    let range;
    try {
      range = timeRangeOf(tr);
    } catch (err) {
      throw new DavError(400, (err as Error).message, [CALDAV, 'valid-filter']);
    }
    if (!Number.isFinite(range.from) || !Number.isFinite(range.to)) throw new DavError(400, 'free-busy-query needs both start and end');
    const periods: Array<{ s: number; e: number; type: string }> = [];
    const max = deps.config().limits.maxInstances;
    const zone = zoneOfCollection(r.coll);
    try {
      for (const [name, i] of r.coll.items) {
        if (i.comp !== 'VEVENT' && i.comp !== 'VFREEBUSY') continue;
        if ((i.maxEnd ?? Infinity) < range.from || (i.minStart ?? -Infinity) >= range.to) continue;
        const cal = parseComponent(await textOf(r.coll, name, i));
        if (i.comp === 'VFREEBUSY') {
          for (const fb of cal.getAllSubcomponents('vfreebusy')) {
            for (const p of fb.getAllProperties('freebusy')) {
              const type = String(p.getParameter('fbtype') ?? 'BUSY').toUpperCase();
              if (type === 'FREE') continue;
              for (const v of p.getValues()) {
                if (!(v instanceof ICAL.Period)) continue;
                const s = timeMs(v.start, zone);
                const e = timeMs(v.end ?? v.getEnd(), zone);
                if (s < range.to && e > range.from) periods.push({ s: Math.max(s, range.from), e: Math.min(e, range.to), type });
              }
            }
          }
          continue;
        }
        for (const inst of instancesOf(cal, 'VEVENT', range.from, range.to, max, zone)) {
          if (String(inst.comp.getFirstPropertyValue('transp') ?? '').toUpperCase() === 'TRANSPARENT') continue;
          const status = String(inst.comp.getFirstPropertyValue('status') ?? '').toUpperCase();
          if (status === 'CANCELLED') continue;
          if (inst.end <= inst.start) continue;
          periods.push({ s: Math.max(inst.start, range.from), e: Math.min(inst.end, range.to), type: status === 'TENTATIVE' ? 'BUSY-TENTATIVE' : 'BUSY' });
        }
      }
    } catch (err) {
      if (err instanceof TooManyInstances) throw new DavError(403, err.message, [DAV, 'number-of-matches-within-limits']);
      throw err;
    }
    const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    periods.sort((a, b) => a.s - b.s);
    const lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//kith//calendar//EN', 'BEGIN:VFREEBUSY', `DTSTAMP:${stamp(Date.now())}`, `DTSTART:${stamp(range.from)}`, `DTEND:${stamp(range.to)}`];
    // Merge overlapping periods of one type.
    const merged: typeof periods = [];
    for (const p of periods) {
      const last = merged.findLast((m) => m.type === p.type);
      if (last && p.s <= last.e) last.e = Math.max(last.e, p.e);
      else merged.push({ ...p });
    }
    for (const p of merged) lines.push(`FREEBUSY;FBTYPE=${p.type}:${stamp(p.s)}/${stamp(p.e)}`);
    lines.push('END:VFREEBUSY', 'END:VCALENDAR', '');
    return { status: 200, headers: { 'content-type': 'text/calendar; charset=utf-8' }, body: lines.join('\r\n') };
  }

  /** RFC 6578 §3.2: what changed in a collection since a token (the store commit it names). */
  async function syncCollection(req: DavRequest, root: XmlElement, r: Resource, pr: PropRequest): Promise<DavResponse> {
    if (r.kind !== 'collection') throw new DavError(403, 'sync-collection is made on a calendar or address book', [DAV, 'supported-report']);
    const level = child(root, DAV, 'sync-level')?.text.trim() ?? '1';
    if (level !== '1') throw new DavError(403, 'only sync-level 1 (members of the collection) is supported', [DAV, 'supported-report']);
    const tokenText = child(root, DAV, 'sync-token')?.text.trim() ?? '';
    const head = repo.head ?? 'empty';
    const newToken = SYNC_PREFIX + head;
    const parts: string[] = [];
    const coll = r.coll;
    if (tokenText === '') {
      for (const it of itemResources(r)) {
        if (it.kind !== 'item') continue;
        parts.push(await responseFor(it, pr, dataProp(coll, it.name, it.item)));
      }
    } else {
      const commit = tokenText.startsWith(SYNC_PREFIX) ? tokenText.slice(SYNC_PREFIX.length) : '';
      if (!/^[0-9a-f]{40}$/.test(commit) && commit !== 'empty') throw new DavError(403, 'this sync-token was not made by this server: sync again from scratch (an empty sync-token)', [DAV, 'valid-sync-token']);
      const prefix = `${coll.owner}/${coll.name}/`;
      const changed = commit === 'empty' ? new Set([...coll.items.keys()].map((i) => itemPath(coll.owner, coll.name, i))) : await repo.changedSince(commit, prefix);
      if (!changed) throw new DavError(403, 'this sync-token is unknown or expired: sync again from scratch (an empty sync-token)', [DAV, 'valid-sync-token']);
      for (const p of [...changed].sort()) {
        if (p.endsWith('/' + META_FILE)) continue;
        const name = p.slice(prefix.length + 'items/'.length);
        if (!name || name.includes('/')) continue;
        const item = coll.items.get(name);
        const href = itemHref(r.href, name);
        if (!item) parts.push(notFoundResponse(href));
        else parts.push(await responseFor({ kind: 'item', href, user: r.user, coll, name, item, access: r.access }, pr, dataProp(coll, name, item)));
      }
    }
    return multistatus(parts, `<D:sync-token>${escapeXml(newToken)}</D:sync-token>`);
  }

  // ---- dispatch ----

  async function options(req: DavRequest): Promise<DavResponse> {
    const t = target(req);
    const allow = t?.kind === 'item' ? ALLOW_ITEM : t?.kind === 'collection' ? (collectionOf(t.owner, t.coll) ? ALLOW_COLLECTION : 'OPTIONS, MKCOL, MKCALENDAR, PUT') : ALLOW_HOME;
    return { status: 200, headers: { dav: '1, 3, extended-mkcol, calendar-access, addressbook', allow, 'content-length': '0' } };
  }

  async function handle(req: DavRequest): Promise<DavResponse> {
    try {
      switch (req.method) {
        case 'OPTIONS': return await options(req);
        case 'PROPFIND': return await propfind(req);
        case 'PROPPATCH': return await proppatch(req);
        case 'MKCOL': return await mkcol(req, false);
        case 'MKCALENDAR': return await mkcol(req, true);
        case 'GET': case 'HEAD': return await get(req);
        case 'PUT': return await put(req);
        case 'DELETE': return await del(req);
        case 'COPY': return await copyMove(req, false);
        case 'MOVE': return await copyMove(req, true);
        case 'REPORT': return await report(req);
        default:
          throw new DavError(405, `${req.method} is not a method this server knows`, undefined, { allow: ALLOW_ITEM });
      }
    } catch (err) {
      if (err instanceof DavError) return errorResponse(err);
      if (err instanceof XmlError) return errorResponse(new DavError(400, err.message));
      if (err instanceof FilterError) return errorResponse(new DavError(400, err.message, [CALDAV, err.precondition]));
      if (err instanceof HrefError) return errorResponse(new DavError(err.status, err.message));
      if (err instanceof StoreClientError) {
        if (err.status === 412) return errorResponse(new DavError(503, 'the calendar is busy with other changes: retry', undefined, { 'retry-after': '1' }));
        if (err.status === 413) return errorResponse(new DavError(507, err.message, [DAV, 'quota-not-exceeded']));
        if (err.status === 400 && err.code === 'bad-path') return errorResponse(new DavError(400, `the store refuses this name: ${err.message}`));
        if (err.status === 503) return errorResponse(new DavError(503, err.message, undefined, { 'retry-after': '1' }));
      }
      throw err;
    }
  }

  return { handle };
}

export { tagOf, APPLE, CS };
