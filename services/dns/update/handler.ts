/**
 * UPDATE request → what to answer and what must happen first: TSIG verification (RFC 8945
 * §5.2, error responses per §5.3.2), parsing and processing (RFC 2136 §3), and the
 * response (RFC 2136 §3.8: header and the zone section exactly as received, or none when it
 * could not be read; signed with the request's key).
 *
 * `handleUpdate` is pure: (state, now, bytes) → { reply, effects }. Its one effect is
 * `{ kind: 'commit' }`: the change to make durable before `reply` may be sent (the response
 * is the acknowledgement); if running it fails, `failed` (SERVFAIL) is sent instead. The
 * service shell runs effects (services/dns/service.ts), as ocaml-dns's handle_buf returns
 * its notifications for the caller to send.
 *
 * `createUpdateHandler` is the small runner around it: updates one at a time (each sees
 * the store the previous one committed), and a request whose MAC was already answered
 * inside the fudge window gets the same answer again without being re-applied (UDP
 * retransmissions and captured-packet replays).
 */
import { WireError } from '../wire/error.ts';
import { appendErrorTsig, signMessage, verifyMessage, DEFAULT_FUDGE, type KeyLookup, type TsigKey } from '../tsig/tsig.ts';
import { OPCODE_UPDATE, parseUpdate, peekHeader, type ParsedUpdate } from './parse.ts';
import { processUpdate, RCODE_NUMBERS, type Authorize, type Change, type UpdateRcode, type UpdateResult, type UpdateStore } from './update.ts';

/** The change an accepted UPDATE makes: write and commit it, then serve it. */
export interface CommitEffect {
  kind: 'commit';
  zone: string;
  changes: Change[];
  keyName: string | undefined;
}

export type UpdateEffect = CommitEffect;

export interface UpdateState {
  store: UpdateStore;
  keys: KeyLookup;
  authorize?: Authorize;
  /** Refuse unsigned updates (default true). */
  requireTsig?: boolean;
  /** Replies already sent, by key name and request MAC (see createUpdateHandler). */
  answered?: ReadonlyMap<string, { bytes: Buffer; expires: number }>;
}

export interface UpdateStep {
  /** Send once every effect has run; undefined: send nothing (a runt or a response). */
  reply: Buffer | undefined;
  effects: UpdateEffect[];
  /** Send instead of `reply` when an effect fails: nothing was applied. */
  failed?: Buffer;
  /** Remember `reply` under this key once the effects ran (a replay gets it again). */
  remember?: string;
  /** What happened, for logs and metrics; undefined for a replay answered from memory. */
  result?: UpdateResult & { keyName?: string };
}

/** Header and the zone section exactly as the request carried it (RFC 2136 §3.8), or none. */
function response(id: number, rcode: UpdateRcode, zone: Buffer | undefined): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x8000 | (OPCODE_UPDATE << 11) | RCODE_NUMBERS[rcode], 2);
  if (!zone) return header;
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, zone]);
}

export function handleUpdate(state: UpdateState, now: number, bytes: Uint8Array): UpdateStep {
  const head = peekHeader(bytes);
  if (!head || head.qr) return { reply: undefined, effects: [] }; // never answer responses (reflection loops)
  let parsed: ParsedUpdate | undefined;
  let parseError: string | undefined;
  try {
    parsed = parseUpdate(bytes);
  } catch (e) {
    parseError = e instanceof WireError ? e.message : String(e);
  }
  const zone = parsed?.zoneBytes;
  const done = (reply: Buffer, result: UpdateStep['result']): UpdateStep => ({ reply, effects: [], result });
  if (head.opcode !== OPCODE_UPDATE) {
    return done(response(head.id, 'NOTIMP', zone), { rcode: 'NOTIMP', changes: [], message: `opcode ${head.opcode}` });
  }

  const v = verifyMessage(bytes, state.keys, { now });
  if (!v.ok && v.error !== 'UNSIGNED') {
    const result = { rcode: (v.error === 'FORMERR' ? 'FORMERR' : 'NOTAUTH') as UpdateRcode, changes: [], message: `TSIG ${v.error}: ${v.message}` };
    if (v.error === 'FORMERR' || !v.tsig) return done(response(head.id, 'FORMERR', zone), result);
    const base = response(head.id, 'NOTAUTH', zone);
    if (v.error === 'BADTIME' && v.key) return done(signMessage(base, v.key, { now, requestMac: v.tsig.mac, error: 'BADTIME' }).bytes, result);
    return done(appendErrorTsig(base, v.tsig, v.error === 'BADKEY' ? 'BADKEY' : 'BADSIG', now), result);
  }
  const key: TsigKey | undefined = v.ok ? v.key : undefined;
  const finish = (rcode: UpdateRcode): Buffer => {
    const base = response(head.id, rcode, zone);
    return key && v.ok ? signMessage(base, key, { now, requestMac: v.mac }).bytes : base;
  };
  if (!v.ok && state.requireTsig !== false) {
    return done(finish('REFUSED'), { rcode: 'REFUSED', zone: parsed?.zone.name, changes: [], message: 'unsigned update refused' });
  }
  if (!parsed) return done(finish('FORMERR'), { rcode: 'FORMERR', changes: [], message: parseError });

  const macKey = v.ok ? `${v.keyName}/${v.mac.toString('hex')}` : undefined;
  const replay = macKey ? state.answered?.get(macKey) : undefined;
  if (replay && replay.expires > now) return { reply: replay.bytes, effects: [] };

  const keyName = v.ok ? v.keyName : undefined;
  const result = processUpdate(parsed, state.store, { keyName, authorize: state.authorize });
  const reply = finish(result.rcode);
  if (result.rcode !== 'NOERROR' || result.changes.length === 0) {
    return { reply, effects: [], remember: macKey, result: { ...result, keyName, changes: [] } };
  }
  return {
    reply,
    effects: [{ kind: 'commit', zone: result.zone!, changes: result.changes, keyName }],
    failed: finish('SERVFAIL'),
    remember: macKey,
    result: { ...result, keyName },
  };
}

export interface UpdateHandlerOptions extends Omit<UpdateState, 'answered'> {
  now: () => number;
  /** Runs one effect; throwing answers SERVFAIL and nothing is acknowledged. */
  run(effect: UpdateEffect): Promise<void>;
  /** Called once per request with what happened (for logs and metrics). */
  onResult?(result: UpdateResult & { keyName?: string }): void;
}

export interface UpdateHandler {
  /** Answers one UPDATE message; undefined when it is too short to answer at all. */
  handle(bytes: Uint8Array): Promise<Buffer | undefined>;
}

export function createUpdateHandler(opts: UpdateHandlerOptions): UpdateHandler {
  let queue: Promise<unknown> = Promise.resolve();
  const answered = new Map<string, { bytes: Buffer; expires: number }>();

  async function handleOne(bytes: Uint8Array): Promise<Buffer | undefined> {
    const now = opts.now();
    for (const [mac, entry] of answered) if (entry.expires <= now) answered.delete(mac);
    const step = handleUpdate({ ...opts, answered }, now, bytes);
    let reply = step.reply;
    let result = step.result;
    try {
      for (const effect of step.effects) await opts.run(effect);
    } catch (e) {
      reply = step.failed;
      if (result) result = { ...result, rcode: 'SERVFAIL', changes: [], message: `commit failed: ${e instanceof Error ? e.message : e}` };
    }
    if (result) opts.onResult?.(result);
    if (step.remember && reply && reply !== step.failed) {
      answered.set(step.remember, { bytes: reply, expires: now + 2 * DEFAULT_FUDGE * 1000 });
      if (answered.size > 10_000) answered.delete(answered.keys().next().value!);
    }
    return reply;
  }

  return {
    handle(bytes) {
      const run = queue.then(() => handleOne(bytes));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
