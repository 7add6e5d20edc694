/**
 * Where a recipient goes (pure): mail for the owner's domains is expanded through the
 * aliases (recursively, a loop or a chain deeper than 10 stops) or the catch-all; mail for
 * any other domain is relayed only for an authenticated user (submission). Anyone else
 * asking to relay gets 554 5.7.1 (RFC 5321 §3.6.2, RFC 3463): never an open relay.
 */
import type { MailSettings } from './config.ts';

export type RcptDecision =
  | { ok: true; targets: string[] }
  | { ok: false; code: number; message: string };

const MAX_DEPTH = 10;

export function splitAddress(addr: string): { local: string; domain: string } {
  const at = addr.lastIndexOf('@');
  return at === -1 ? { local: addr, domain: '' } : { local: addr.slice(0, at), domain: addr.slice(at + 1).toLowerCase() };
}

/** Alias local parts are matched without case, and without a +detail (RFC 5233 style). */
function lookupAlias(settings: MailSettings, addr: string): string[] | undefined {
  const { local, domain } = splitAddress(addr);
  const d = settings.domains[domain];
  if (!d) return undefined;
  const l = local.toLowerCase();
  const base = l.includes('+') ? l.slice(0, l.indexOf('+')) : l;
  for (const [k, v] of Object.entries(d.aliases)) if (k.toLowerCase() === l || k.toLowerCase() === base) return v;
  return d.catchAll;
}

export function isOurDomain(settings: MailSettings, domain: string): boolean {
  return settings.domains[domain.toLowerCase()] !== undefined;
}

/** Expand an address of our domains to external mailboxes; undefined when nothing takes it. */
export function expand(settings: MailSettings, addr: string): string[] | undefined {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (a: string, depth: number): boolean => {
    const key = a.toLowerCase();
    if (seen.has(key)) return true;
    seen.add(key);
    if (!isOurDomain(settings, splitAddress(a).domain)) {
      out.push(a);
      return true;
    }
    if (depth >= MAX_DEPTH) return false;
    const next = lookupAlias(settings, a);
    if (!next) return false;
    let any = false;
    for (const n of next) any = walk(n, depth + 1) || any;
    return any;
  };
  return walk(addr, 0) && out.length > 0 ? out : undefined;
}

export function decideRcpt(settings: MailSettings, addr: string, authenticated: boolean): RcptDecision {
  const { domain } = splitAddress(addr);
  if (!domain) return { ok: false, code: 501, message: '5.1.3 Bad recipient address syntax: expected local@domain' };
  if (isOurDomain(settings, domain)) {
    const targets = expand(settings, addr);
    return targets ? { ok: true, targets } : { ok: false, code: 550, message: `5.1.1 <${addr}>: Recipient address rejected: no such address here` };
  }
  if (authenticated) return { ok: true, targets: [addr] };
  return { ok: false, code: 554, message: `5.7.1 <${addr}>: Relay access denied` };
}

/** May this authenticated user send with this envelope sender? */
export function senderAllowed(settings: MailSettings, user: string, from: string): boolean {
  const u = settings.users[user];
  if (!u) return false;
  const f = from.toLowerCase();
  return u.addresses.some((a) => a.toLowerCase() === f);
}

/**
 * The user a client certificate from the appliance CA logs in as (pure). A paired device's
 * certificate names the principal `owner` (CN) and the device (OU, platform/pki/devices.ts):
 * the user that lists the device under `devices`, else the owner's user (`ownerToken: true`,
 * without a `devices` list). Any other subject is no user.
 */
export function certificateUser(settings: MailSettings, subject: { CN?: string; OU?: string }): string | undefined {
  if (subject.CN !== 'owner' || !subject.OU) return undefined;
  const users = Object.entries(settings.users).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const named = users.find(([, u]) => u.devices?.includes(subject.OU!));
  if (named) return named[0];
  return users.find(([, u]) => u.ownerToken && u.devices === undefined)?.[0];
}
