/**
 * The URL space and who may do what in it:
 *
 *   /dav/                         the root: current-user-principal, principal-collection-set
 *   /dav/<user>/                  the user's principal, and their calendar and address book
 *                                 home (RFC 4791 §6.2.1, RFC 6352 §7.1.1), like Radicale
 *   /dav/<user>/<collection>/     a calendar or address book
 *   /dav/<user>/<owner>~<coll>/   a collection another user shared with <user>
 *   /dav/<user>/<collection>/<item>
 *
 * Hrefs are decoded once and checked segment by segment (no '.', '..', '/', '\', control
 * characters or leading dots), so no href can reach outside the user's folder in the store.
 * Another user's resources that are not shared are 404 (nothing about them is revealed).
 */
import type { CalendarConfig } from '../config.ts';

export const ROOT = '/dav/';

export type Access = 'owner' | 'read' | 'read-write';

export type Target =
  | { kind: 'root' }
  | { kind: 'home'; user: string }
  | { kind: 'collection'; user: string; owner: string; coll: string; access: Access; href: string }
  | { kind: 'item'; user: string; owner: string; coll: string; item: string; access: Access; href: string; collHref: string };

export class HrefError extends Error {
  override name = 'HrefError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const SEGMENT_OK = /^[^/\\\u0000-\u001f\u007f]{1,200}$/;
export const COLLECTION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$/;

function decodeSegment(s: string): string {
  let d: string;
  try {
    d = decodeURIComponent(s);
  } catch {
    throw new HrefError(400, `bad percent-encoding in ${JSON.stringify(s.slice(0, 80))}`);
  }
  if (!SEGMENT_OK.test(d) || d === '.' || d === '..' || d.startsWith('.')) throw new HrefError(400, `not a usable name: ${JSON.stringify(d.slice(0, 80))} (no '/', '\\', control characters or leading '.')`);
  return d;
}

export const encodeSegment = (s: string) => encodeURIComponent(s).replace(/%40/g, '@').replace(/%7E/g, '~');
export const homeHref = (user: string) => `${ROOT}${encodeSegment(user)}/`;
export const collectionHref = (user: string, name: string) => `${homeHref(user)}${encodeSegment(name)}/`;
export const itemHref = (collHref: string, item: string) => `${collHref}${encodeSegment(item)}`;

/** The path part of an href or URL (a Destination header is a full URL). */
export function pathOfHref(href: string): string {
  const h = href.trim();
  if (/^https?:\/\//i.test(h)) {
    try {
      return new URL(h).pathname;
    } catch {
      throw new HrefError(400, `not a URL: ${JSON.stringify(h.slice(0, 80))}`);
    }
  }
  if (!h.startsWith('/')) throw new HrefError(400, `an href must be an absolute path: ${JSON.stringify(h.slice(0, 80))}`);
  return h.split('?')[0]!.split('#')[0]!;
}

export function accessTo(cfg: CalendarConfig, user: string, owner: string, coll: string): Access | undefined {
  if (user === owner) return 'owner';
  const s = cfg.shares.find((x) => x.owner === owner && x.collection === coll && x.with === user);
  return s ? s.access : undefined;
}

/** Resolve a request path for `user`; undefined: nothing there for this user (404). */
export function resolve(cfg: CalendarConfig, user: string, pathname: string): Target | undefined {
  if (pathname === '/' || pathname === '/dav' || pathname === ROOT) return { kind: 'root' };
  if (!pathname.startsWith(ROOT)) return undefined;
  const raw = pathname.slice(ROOT.length).split('/');
  const trailing = raw[raw.length - 1] === '';
  if (trailing) raw.pop();
  if (raw.some((s) => s === '')) throw new HrefError(400, 'empty path segment (//) in the href');
  const segs = raw.map(decodeSegment);
  const home = segs[0]!;
  if (!cfg.users[home]) return undefined;
  if (segs.length === 1) return home === user ? { kind: 'home', user } : undefined;
  let owner = home;
  let coll = segs[1]!;
  const tilde = coll.indexOf('~');
  if (tilde !== -1) {
    // A shared collection seen from the sharee's home.
    if (home !== user) return undefined;
    owner = coll.slice(0, tilde);
    coll = coll.slice(tilde + 1);
    if (!cfg.users[owner] || owner === user) return undefined;
  }
  if (!COLLECTION_RE.test(coll)) {
    // Only its owner learns that a name is not allowed (MKCALENDAR says why); others get 404.
    if (segs.length === 2 && home === user && tilde === -1) return { kind: 'collection', user, owner, coll, access: 'owner', href: collectionHref(home, segs[1]!) };
    return undefined;
  }
  const access = accessTo(cfg, user, owner, coll);
  if (!access) return undefined;
  const href = collectionHref(home, segs[1]!);
  if (segs.length === 2) return { kind: 'collection', user, owner, coll, access, href };
  if (segs.length === 3) return { kind: 'item', user, owner, coll, item: segs[2]!, access, href: itemHref(href, segs[2]!), collHref: href };
  return undefined;
}
