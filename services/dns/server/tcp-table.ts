/**
 * The TCP connection table: who may hold a connection, for how long, and who goes when
 * the table is full (RFC 7766 §6.2: servers manage their connections so that idle and
 * slow clients cannot starve the rest; §6.2.3 idle timeouts, shortened under pressure).
 *
 * Pure: the clock is an argument, nothing here touches a socket. The shell (server.ts)
 * asks `admit` for each new connection and closes what it says to evict, reports
 * activity, and every few hundred milliseconds closes what `sweep` returns.
 *
 * - A complete message must arrive within `messageMs` of its first byte (a client
 *   trickling one byte every few seconds is closed however active it looks).
 * - A connection with nothing in flight and no message started is closed after `idleMs`.
 * - A connection whose replies the client does not read is closed after `idleMs` too.
 * - When the table is full, a new connection evicts the connection that has been idle
 *   the longest (no query in flight, no reply waiting); only when every connection is
 *   busy is the new one refused.
 * - One source (an IPv4 address, an IPv6 /64) holds at most `maxPerSource`; past that
 *   its own oldest idle connection makes room, so a source can only crowd itself out.
 */

export interface TcpLimits {
  /** Connections held at once. */
  maxConnections: number;
  /** Connections one source (IPv4 address, IPv6 /64) holds at once. */
  maxPerSource: number;
  /** Close a connection idle this long (ms). */
  idleMs: number;
  /** A message must be complete this long after its first byte (ms). */
  messageMs: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = { maxConnections: 512, maxPerSource: 32, idleMs: 10_000, messageMs: 5_000 };

export type CloseReason = 'idle' | 'slow' | 'evicted' | 'source-evicted' | 'full' | 'source-full' | 'stalled';

export interface TcpEntry<H> {
  readonly handle: H;
  readonly source: string;
  readonly openedAt: number;
  /** Open, or the last complete message or finished reply: what idleness is measured from. */
  lastActive: number;
  /** When the first byte of a message not yet complete arrived. */
  messageStart: number | undefined;
  /** Queries being answered. */
  inflight: number;
  /** Since when replies have been waiting for the client to read them. */
  writeBlockedSince: number | undefined;
}

/** The key a connection counts against: the IPv4 address, or the IPv6 /64. */
export function sourceKey(address: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  if (!address.includes(':')) return address;
  // First four groups of the expanded address.
  const [head, tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':') + '::/64';
}

export class TcpTable<H> {
  /** In order of lastActive, oldest first: touch() moves an entry to the end. */
  private readonly entries = new Map<H, TcpEntry<H>>();
  private readonly perSource = new Map<string, number>();

  get size(): number {
    return this.entries.size;
  }

  sourceCount(source: string): number {
    return this.perSource.get(source) ?? 0;
  }

  get(handle: H): TcpEntry<H> | undefined {
    return this.entries.get(handle);
  }

  /**
   * A new connection from `address`: admitted (after the listed connections are closed to
   * make room), or refused with the reason.
   */
  admit(now: number, handle: H, address: string, limits: TcpLimits): { ok: true; evict: { handle: H; reason: CloseReason }[] } | { ok: false; reason: CloseReason } {
    const source = sourceKey(address);
    const evict: { handle: H; reason: CloseReason }[] = [];
    if (this.sourceCount(source) >= limits.maxPerSource) {
      // Make room among this source's own connections, oldest idle first.
      let need = this.sourceCount(source) - limits.maxPerSource + 1;
      for (const e of this.entries.values()) {
        if (need === 0) break;
        if (e.source === source && idle(e)) {
          evict.push({ handle: e.handle, reason: 'source-evicted' });
          need--;
        }
      }
      if (need > 0) return { ok: false, reason: 'source-full' };
    }
    let need = this.entries.size - evict.length - limits.maxConnections + 1;
    if (need > 0) {
      const chosen = new Set(evict.map((x) => x.handle));
      for (const e of this.entries.values()) {
        if (need === 0) break;
        if (!chosen.has(e.handle) && idle(e)) {
          evict.push({ handle: e.handle, reason: 'evicted' });
          need--;
        }
      }
      if (need > 0) return { ok: false, reason: 'full' };
    }
    for (const x of evict) this.remove(x.handle);
    this.entries.set(handle, { handle, source, openedAt: now, lastActive: now, messageStart: undefined, inflight: 0, writeBlockedSince: undefined });
    this.perSource.set(source, this.sourceCount(source) + 1);
    return { ok: true, evict };
  }

  remove(handle: H): void {
    const e = this.entries.get(handle);
    if (!e) return;
    this.entries.delete(handle);
    const n = this.sourceCount(e.source) - 1;
    if (n > 0) this.perSource.set(e.source, n);
    else this.perSource.delete(e.source);
  }

  /** Bytes of a message arrived; `complete` when no partial message is left over. */
  received(now: number, handle: H, messagesCompleted: number, partialLeft: boolean): void {
    const e = this.entries.get(handle);
    if (!e) return;
    if (messagesCompleted > 0) {
      e.messageStart = partialLeft ? now : undefined;
      this.touch(e, now);
    } else if (!partialLeft) e.messageStart = undefined;
    else e.messageStart ??= now;
  }

  /** A query began (`+1`) or finished (`-1`) being answered. */
  inflight(now: number, handle: H, delta: 1 | -1): void {
    const e = this.entries.get(handle);
    if (!e) return;
    e.inflight += delta;
    this.touch(e, now);
  }

  /** Replies are (true) or are no longer (false) waiting for the client to read them. */
  writeBlocked(now: number, handle: H, blocked: boolean): void {
    const e = this.entries.get(handle);
    if (!e) return;
    if (blocked) e.writeBlockedSince ??= now;
    else if (e.writeBlockedSince !== undefined) {
      e.writeBlockedSince = undefined;
      this.touch(e, now);
    }
  }

  /** Connections to close now, each with its reason; they are removed from the table. */
  sweep(now: number, limits: TcpLimits): { handle: H; reason: CloseReason }[] {
    const out: { handle: H; reason: CloseReason }[] = [];
    for (const e of this.entries.values()) {
      if (e.messageStart !== undefined && now - e.messageStart >= limits.messageMs) out.push({ handle: e.handle, reason: 'slow' });
      else if (e.writeBlockedSince !== undefined && now - e.writeBlockedSince >= limits.idleMs) out.push({ handle: e.handle, reason: 'stalled' });
      else if (idle(e) && e.messageStart === undefined && now - e.lastActive >= limits.idleMs) out.push({ handle: e.handle, reason: 'idle' });
    }
    for (const x of out) this.remove(x.handle);
    return out;
  }

  private touch(e: TcpEntry<H>, now: number): void {
    e.lastActive = now;
    this.entries.delete(e.handle);
    this.entries.set(e.handle, e);
  }
}

/** Nothing being answered and no reply waiting: the connection may be closed for room. */
function idle(e: TcpEntry<unknown>): boolean {
  return e.inflight === 0 && e.writeBlockedSince === undefined;
}
