/**
 * `kith mail`: the mail service's queue (list, retry, delete) through its control API, and
 * password hashes for mail/mail.yaml. Talks to the running service (endpoints from
 * <data>/run.json, the owner's token from <data>/data/storage/access-token, or --url and
 * --token), never to its folder.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { hashPassword } from '../../platform/passwords.ts';
import { readOwnerToken } from '../../platform/owner.ts';
import { pidAlive, readRunFile } from '../run-file.ts';

const HELP = `Usage: kith mail queue [list] [--json]
       kith mail queue retry [ID]          try one message (or every message) now
       kith mail queue delete ID           drop a message: no delivery, no bounce
       kith mail hash-password             read a password on stdin, print its hash for mail/mail.yaml

Options:
  --data DIR    the kith data folder (default: .kith)
  --url URL     the mail service's control endpoint (default: from <data>/run.json)
  --token TOK   the owner's access token (default: the one kith up made)
  --json        machine-readable output
  -h, --help    this help

Exit codes: 0 done, 1 failed (or no such message), 3 mail is not running, 64 usage error.
`;

interface Entry { id: string; from: string; to: string[]; bytes: number; received: string; attempts: number; nextAt: string; lastError?: string; held?: 'clock' }

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { data: { type: 'string' }, url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return values.help ? 0 : 64;
  }
  const [what, action = 'list', id, ...rest] = positionals;
  if (what === 'hash-password') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (!pw) {
      process.stderr.write('kith mail hash-password: give the password on stdin, e.g. printf %s "$PW" | kith mail hash-password\n');
      return 64;
    }
    process.stdout.write(hashPassword(pw) + '\n');
    return 0;
  }
  if (what !== 'queue' || !['list', 'retry', 'delete'].includes(action) || rest.length > 0 || (action === 'delete' && !id) || (action === 'list' && id)) {
    process.stderr.write(`kith mail: expected 'queue [list]', 'queue retry [ID]', 'queue delete ID' or 'hash-password'\n(see kith mail --help)\n`);
    return 64;
  }
  const dataRoot = path.resolve(values.data ?? '.kith');
  let url = values.url;
  if (!url) {
    const info = await readRunFile(dataRoot);
    url = info && pidAlive(info.pid) ? info.services.find((s) => s.service === 'mail')?.endpoints?.control : undefined;
    if (!url) {
      process.stderr.write(`kith mail: the mail service is not running (no kith up with data folder ${dataRoot}); start it with ./kith up, or give --url\n`);
      return 3;
    }
  }
  const token = values.token ?? (await readOwnerToken(dataRoot));
  if (!token) {
    process.stderr.write('kith mail: no access token: give --token (the one kith up prints)\n');
    return 1;
  }
  const target = action === 'list' ? '/queue' : action === 'retry' ? (id ? `/queue/${encodeURIComponent(id)}/retry` : '/queue/retry') : `/queue/${encodeURIComponent(id!)}`;
  const method = action === 'list' ? 'GET' : action === 'retry' ? 'POST' : 'DELETE';
  let res: Response;
  try {
    res = await fetch(url.replace(/\/$/, '') + target, { method, headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    process.stderr.write(`kith mail: cannot reach the mail service at ${url}: ${(err as Error).message}\n`);
    return 3;
  }
  const body = (await res.json().catch(() => ({}))) as { messages?: Entry[]; retried?: string[]; deleted?: string; error?: string };
  if (!res.ok) {
    if (values.json) process.stdout.write(JSON.stringify({ ok: false, status: res.status, ...body }) + '\n');
    else process.stderr.write(`kith mail: ${body.error ?? `the service answered ${res.status}`}\n`);
    return 1;
  }
  if (values.json) {
    if (body.messages) for (const m of body.messages) process.stdout.write(JSON.stringify(m) + '\n');
    else process.stdout.write(JSON.stringify(body) + '\n');
    return 0;
  }
  if (body.messages) {
    if (body.messages.length === 0) process.stdout.write('the queue is empty\n');
    for (const m of body.messages) {
      process.stdout.write(`${m.id}  ${String(m.bytes).padStart(8)} B  ${m.received}  <${m.from}>\n`);
      for (const t of m.to) process.stdout.write(`    -> <${t}>\n`);
      process.stdout.write(`    attempts ${m.attempts}, next ${m.nextAt}${m.held === 'clock' ? '\n    held: DKIM signing waits for a synchronised clock' : ''}${m.lastError ? `\n    last error: ${m.lastError}` : ''}\n`);
    }
  } else if (body.retried) process.stdout.write(`retrying ${body.retried.length} message(s) now${body.retried.length ? `: ${body.retried.join(' ')}` : ''}\n`);
  else if (body.deleted) process.stdout.write(`deleted ${body.deleted}\n`);
  return 0;
}
