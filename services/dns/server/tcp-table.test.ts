import { describe, expect, it } from 'vitest';
import { sourceKey, TcpTable, type TcpLimits } from './tcp-table.ts';

const L: TcpLimits = { maxConnections: 3, maxPerSource: 2, idleMs: 1000, messageMs: 500 };

describe('TcpTable', () => {
  it('admits up to the cap, then evicts the longest idle, skipping busy ones', () => {
    const t = new TcpTable<string>();
    expect(t.admit(0, 'a', '192.0.2.1', L)).toEqual({ ok: true, evict: [] });
    expect(t.admit(1, 'b', '192.0.2.2', L).ok).toBe(true);
    expect(t.admit(2, 'c', '192.0.2.3', L).ok).toBe(true);
    t.inflight(3, 'a', 1); // a is busy
    expect(t.admit(4, 'd', '192.0.2.4', L)).toEqual({ ok: true, evict: [{ handle: 'b', reason: 'evicted' }] });
    // activity moves c behind d: d is now the longest idle
    t.received(5, 'c', 1, false);
    expect(t.admit(6, 'e', '192.0.2.5', L)).toEqual({ ok: true, evict: [{ handle: 'd', reason: 'evicted' }] });
    t.inflight(7, 'c', 1);
    t.inflight(7, 'e', 1);
    expect(t.admit(8, 'f', '192.0.2.6', L)).toEqual({ ok: false, reason: 'full' });
    expect(t.size).toBe(3);
  });

  it('a source at its cap makes room among its own idle connections only', () => {
    const t = new TcpTable<string>();
    t.admit(0, 'x', '192.0.2.9', L);
    t.admit(1, 'a1', '192.0.2.1', L);
    t.admit(2, 'a2', '192.0.2.1', L);
    expect(t.admit(3, 'a3', '192.0.2.1', { ...L, maxConnections: 10 })).toEqual({ ok: true, evict: [{ handle: 'a1', reason: 'source-evicted' }] });
    t.inflight(4, 'a2', 1);
    t.inflight(4, 'a3', 1);
    expect(t.admit(5, 'a4', '192.0.2.1', { ...L, maxConnections: 10 })).toEqual({ ok: false, reason: 'source-full' });
    expect(t.sourceCount('192.0.2.1')).toBe(2);
    expect(t.get('x')).toBeDefined();
  });

  it('sweeps idle connections, slow messages and stalled writers', () => {
    const t = new TcpTable<string>();
    t.admit(0, 'idle', '192.0.2.1', L);
    t.admit(0, 'slow', '192.0.2.2', L);
    t.admit(0, 'stalled', '192.0.2.3', { ...L, maxConnections: 5 });
    t.received(100, 'slow', 0, true); // a first byte
    t.received(400, 'slow', 0, true); // more bytes: the deadline stays from the first
    expect(t.sweep(550, L)).toEqual([]);
    expect(t.sweep(600, L)).toEqual([{ handle: 'slow', reason: 'slow' }]);
    t.inflight(100, 'stalled', 1);
    t.inflight(200, 'stalled', -1);
    t.writeBlocked(200, 'stalled', true);
    expect(t.sweep(1000, L)).toEqual([{ handle: 'idle', reason: 'idle' }]);
    expect(t.sweep(1200, L)).toEqual([{ handle: 'stalled', reason: 'stalled' }]);
    expect(t.size).toBe(0);
  });

  it('a complete message clears the deadline; a held-back whole frame does not start one', () => {
    const t = new TcpTable<string>();
    t.admit(0, 'a', '192.0.2.1', L);
    t.received(0, 'a', 0, true);
    t.received(300, 'a', 1, false);
    t.received(400, 'a', 0, false);
    expect(t.sweep(1000, L)).toEqual([]);
    expect(t.sweep(1300, L)).toEqual([{ handle: 'a', reason: 'idle' }]);
  });

  it('keys sources by IPv4 address and IPv6 /64', () => {
    expect(sourceKey('192.0.2.1')).toBe('192.0.2.1');
    expect(sourceKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(sourceKey('2001:db8:0:1::5')).toBe('2001:db8:0:1::/64');
    expect(sourceKey('2001:DB8:0:1:aaaa::9')).toBe('2001:db8:0:1::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
  });
});
