/**
 * UPDATE request → response bytes: TSIG verification (RFC 8945 §5.2, error responses per
 * §5.3.2), parsing and processing (RFC 2136 §3), commit through the caller, and the
 * response (RFC 2136 §3.8: header and zone section only, signed with the request's key).
 *
 * Updates run one at a time (each sees the store the previous one committed). A request
 * whose MAC was already answered inside the fudge window gets the same answer again
 * without being re-applied: that covers UDP retransmissions and captured-packet replays.
 * The only side effect is the injected `commit`, which must make the change durable
 * before it resolves (the response is the acknowledgement).
 */
import { canonicalName, encodeName, WireError } from '../tsig/raw.ts';
import { appendErrorTsig, signMessage, verifyMessage, DEFAULT_FUDGE, type KeyLookup, type TsigKey } from '../tsig/tsig.ts';
import { OPCODE_UPDATE, parseUpdate, peekHeader, type ParsedUpdate } from './parse.ts';
import { processUpdate, RCODE_NUMBERS, type Authorize, type Change, type UpdateRcode, type UpdateResult, type UpdateStore } from './update.ts';

export interface UpdateHandlerOptions {
  store: UpdateStore;
  keys: KeyLookup;
  now: () => number;
  authorize?: Authorize;
  /** Write and commit the changes; throwing answers SERVFAIL and nothing is acknowledged. */
  commit(zone: string, changes: Change[], keyName: string | undefined): Promise<void>;
  /** Refuse unsigned updates (default true). */
  requireTsig?: boolean;
  /** Called once per request with what happened (for logs and metrics). */
  onResult?(result: UpdateResult & { keyName?: string }): void;
}

export interface UpdateHandler {
  /** Answers one UPDATE message; undefined when it is too short to answer at all. */
  handle(bytes: Uint8Array): Promise<Buffer | undefined>;
}

function response(id: number, rcode: UpdateRcode, zone: ParsedUpdate['zone'] | undefined): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x8000 | (OPCODE_UPDATE << 11) | RCODE_NUMBERS[rcode], 2);
  if (!zone) return header;
  let zname: Buffer;
  try {
    zname = encodeName(zone.name);
  } catch {
    return header;
  }
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(6, 0); // SOA
  tail.writeUInt16BE(zone.class, 2);
  return Buffer.concat([header, zname, tail]);
}

export function createUpdateHandler(opts: UpdateHandlerOptions): UpdateHandler {
  let queue: Promise<unknown> = Promise.resolve();
  const answered = new Map<string, { bytes: Buffer; expires: number }>();

  const report = (r: UpdateResult & { keyName?: string }) => opts.onResult?.(r);

  async function handleOne(bytes: Uint8Array): Promise<Buffer | undefined> {
    const head = peekHeader(bytes);
    if (!head || head.qr) return undefined; // never answer responses (reflection loops)
    const now = opts.now();
    let parsed: ParsedUpdate | undefined;
    let parseError: string | undefined;
    try {
      parsed = parseUpdate(bytes);
    } catch (e) {
      parseError = e instanceof WireError ? e.message : String(e);
    }
    const zone = parsed?.zone;
    if (head.opcode !== OPCODE_UPDATE) {
      report({ rcode: 'NOTIMP', changes: [], message: `opcode ${head.opcode}` });
      return response(head.id, 'NOTIMP', zone);
    }

    const v = verifyMessage(bytes, opts.keys, { now });
    if (!v.ok && v.error !== 'UNSIGNED') {
      report({ rcode: v.error === 'FORMERR' ? 'FORMERR' : 'NOTAUTH', changes: [], message: `TSIG ${v.error}: ${v.message}` });
      if (v.error === 'FORMERR' || !v.tsig) return response(head.id, 'FORMERR', zone);
      const base = response(head.id, 'NOTAUTH', zone);
      if (v.error === 'BADTIME' && v.key) {
        return signMessage(base, v.key, { now, requestMac: v.tsig.mac, error: 'BADTIME' }).bytes;
      }
      return appendErrorTsig(base, v.tsig, v.error === 'BADKEY' ? 'BADKEY' : 'BADSIG', now);
    }
    const key: TsigKey | undefined = v.ok ? resolveKey(opts.keys, v.keyName) : undefined;
    const finish = (rcode: UpdateRcode): Buffer => {
      const base = response(head.id, rcode, zone);
      return key && v.ok ? signMessage(base, key, { now, requestMac: v.mac }).bytes : base;
    };
    if (!v.ok && opts.requireTsig !== false) {
      report({ rcode: 'REFUSED', zone: zone?.name, changes: [], message: 'unsigned update refused' });
      return finish('REFUSED');
    }
    if (!parsed) {
      report({ rcode: 'FORMERR', changes: [], message: parseError });
      return finish('FORMERR');
    }

    for (const [mac, entry] of answered) if (entry.expires <= now) answered.delete(mac);
    const macKey = v.ok ? `${v.keyName}/${v.mac.toString('hex')}` : undefined;
    const replay = macKey ? answered.get(macKey) : undefined;
    if (replay) return replay.bytes;

    const keyName = v.ok ? v.keyName : undefined;
    const result = processUpdate(parsed, opts.store, { keyName, authorize: opts.authorize });
    let rcode = result.rcode;
    if (rcode === 'NOERROR' && result.changes.length > 0) {
      try {
        await opts.commit(result.zone!, result.changes, keyName);
      } catch (e) {
        rcode = 'SERVFAIL';
        result.message = `commit failed: ${e instanceof Error ? e.message : e}`;
      }
    }
    report({ ...result, rcode, keyName, changes: rcode === 'NOERROR' ? result.changes : [] });
    const out = finish(rcode);
    if (macKey && rcode !== 'SERVFAIL') {
      answered.set(macKey, { bytes: out, expires: now + 2 * DEFAULT_FUDGE * 1000 });
      if (answered.size > 10_000) answered.delete(answered.keys().next().value!);
    }
    return out;
  }

  return {
    handle(bytes) {
      const run = queue.then(() => handleOne(bytes));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

function resolveKey(keys: KeyLookup, name: string): TsigKey | undefined {
  const n = canonicalName(name);
  if (typeof keys === 'function') return keys(n);
  if (Array.isArray(keys)) return keys.find((k) => canonicalName(k.name) === n);
  return (keys as ReadonlyMap<string, TsigKey>).get(n);
}
