/**
 * `kith calendar`: the calendar's history and undo, through the storage service's store
 * API (every calendar change is a commit in the store's `calendar` repository).
 *
 *   kith calendar history [--path P] [-n N]   who changed what, newest first
 *   kith calendar restore HREF|PATH [--at C]  put back an event or contact as it was
 *                                             before it was deleted (or at commit C)
 *   kith calendar hash-password               a scrypt hash for calendar/calendar.yaml
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { hashPassword } from '../../platform/passwords.ts';
import { readOwnerToken } from '../../platform/owner.ts';
import { readRunFile } from '../run-file.ts';

const HELP = `Usage: kith calendar <history|restore|hash-password> [options]

  history [--path P] [-n N] [--json]
      The calendar's changes, newest first: commit, time, who, what. P narrows to a
      user, a collection or one item (kith/work or /dav/kith/work/).
  restore HREF|PATH [--at COMMIT]
      Put an item back as it was just before it was deleted (or as it was at COMMIT),
      as a new commit; clients see it again at their next sync.
      HREF is what a client shows (/dav/kith/work/meeting.ics), PATH the store's
      (kith/work/items/meeting.ics).
  hash-password
      Reads a password on standard input and prints the passwordHash for a user in
      calendar/calendar.yaml.

Options:
  --data DIR      the kith data folder of a running \`kith up\` (default: .kith)
  --store URL     the storage service instead (e.g. http://127.0.0.1:7301), with
  --token T       its access token
  -h, --help      this help
`;

interface Target {
  base: string;
  token: string;
}

async function storeTarget(values: { data?: string; store?: string; token?: string }): Promise<Target> {
  if (values.store && values.token) return { base: values.store.replace(/\/(store\/?)?$/, ''), token: values.token };
  const data = path.resolve(values.data ?? '.kith');
  const run = await readRunFile(data);
  const storage = run?.services.find((s) => s.service === 'storage');
  const url = storage?.endpoints?.store;
  if (!url) throw new Error(`kith is not up with ${data} (no storage in run.json): start \`kith up\`, or give --store URL --token T`);
  const token = await readOwnerToken(data);
  if (!token) throw new Error(`no owner token in ${data}: was this data folder made by kith up? (or give --token T)`);
  return { base: url.replace(/\/store\/?$/, ''), token };
}

/** /dav/<user>/<coll>/<item> → <user>/<coll>/items/<item>; store paths pass through. */
export function storePathOf(arg: string): string {
  const clean = arg.replace(/^https?:\/\/[^/]+/, '');
  const m = /^\/dav\/([^/]+)\/([^/]+)(?:\/([^/]*))?\/?$/.exec(clean);
  if (m) {
    const [user, coll, item] = [m[1]!, m[2]!, m[3]].map((s) => (s === undefined ? s : decodeURIComponent(s)));
    return item ? `${user}/${coll}/items/${item}` : `${user}/${coll}`;
  }
  const parts = clean.replace(/^\/+|\/+$/g, '').split('/');
  if (parts.length === 3) return `${parts[0]}/${parts[1]}/items/${parts[2]}`;
  return parts.join('/');
}

interface HistoryEntry {
  commit: string;
  parents: string[];
  message: string;
  author: { name: string };
  time: string;
  changes?: { path: string; type: string; blob?: string }[];
}

async function api(t: Target, url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${t.base}${url}`, { ...init, headers: { authorization: `Bearer ${t.token}`, ...(init.headers as Record<string, string> | undefined) }, signal: AbortSignal.timeout(30_000) });
}

async function history(t: Target, p: string | undefined, n: number): Promise<HistoryEntry[]> {
  const enc = p ? '/' + p.split('/').map(encodeURIComponent).join('/') : '';
  const res = await api(t, `/store/calendar${enc}?history&limit=${n}`);
  if (!res.ok) throw new Error(`storage answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return ((await res.json()) as { entries: HistoryEntry[] }).entries;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub ? 0 : 64;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { data: { type: 'string' }, store: { type: 'string' }, token: { type: 'string' }, path: { type: 'string' }, n: { type: 'string', short: 'n' }, at: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (sub === 'hash-password') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (pw.length < 8) {
      process.stderr.write('kith calendar hash-password: give a password of at least 8 characters on standard input\n');
      return 64;
    }
    process.stdout.write(`${hashPassword(pw)}\n`);
    return 0;
  }
  const t = await storeTarget(values);
  if (sub === 'history') {
    const n = Number(values.n ?? 20);
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      process.stderr.write('kith calendar history: -n is a whole number from 1 to 1000\n');
      return 64;
    }
    const entries = await history(t, values.path ? storePathOf(values.path) : undefined, n);
    for (const e of entries) {
      if (values.json) process.stdout.write(JSON.stringify(e) + '\n');
      else {
        process.stdout.write(`${e.commit.slice(0, 12)}  ${e.time}  ${e.author.name}\n    ${e.message.split('\n')[0]}\n`);
        for (const c of e.changes ?? []) process.stdout.write(`    ${c.type.padEnd(6)} ${c.path}\n`);
      }
    }
    return 0;
  }
  if (sub === 'restore') {
    const arg = positionals[0];
    if (!arg) {
      process.stderr.write('kith calendar restore: name the item, e.g. /dav/kith/work/meeting.ics\n');
      return 64;
    }
    const p = storePathOf(arg);
    if (!/^[^/]+\/[^/]+\/items\/[^/]+$/.test(p)) {
      process.stderr.write(`kith calendar restore: ${arg} is not an item (expected /dav/<user>/<collection>/<item>)\n`);
      return 64;
    }
    let at = values.at;
    if (!at) {
      const del = (await history(t, p, 50)).find((e) => e.changes?.some((c) => c.path === p && c.type === 'delete'));
      if (!del) {
        process.stderr.write(`kith calendar restore: no deletion of ${p} in its last 50 changes: give --at COMMIT (see kith calendar history --path ${arg})\n`);
        return 1;
      }
      at = del.parents[0]!;
    }
    const enc = p.split('/').map(encodeURIComponent).join('/');
    const old = await api(t, `/store/calendar/${enc}?at=${at}`);
    if (!old.ok) {
      process.stderr.write(`kith calendar restore: ${p} is not in commit ${at} (${old.status})\n`);
      return 1;
    }
    const body = Buffer.from(await old.arrayBuffer());
    const res = await api(t, `/store/calendar/${enc}`, { method: 'PUT', body, headers: { 'x-kith-message': encodeURIComponent(`Restore ${p} as of ${at.slice(0, 12)}`) } });
    if (!res.ok) {
      process.stderr.write(`kith calendar restore: storage refused (${res.status}): ${(await res.text()).slice(0, 300)}\n`);
      return 1;
    }
    const r = (await res.json()) as { commit: string };
    process.stdout.write(`restored ${p} as of ${at.slice(0, 12)} (commit ${r.commit.slice(0, 12)})\n`);
    return 0;
  }
  process.stderr.write(`kith calendar: unknown subcommand '${sub}'\n\n${HELP}`);
  return 64;
}
