import { describe, expect, it } from 'vitest';
import { parseBootConfig, restartDelay } from './boot-config.ts';

const minimal = { service: { name: 'dns', command: '/bin/node', args: ['/kith/dns.mjs'] } };

describe('boot config', () => {
  it('fills defaults', () => {
    const p = parseBootConfig(JSON.stringify(minimal));
    expect(p).toEqual({
      ok: true,
      value: {
        hostname: 'kith', modules: [], network: { mode: 'none' }, data: undefined,
        service: { name: 'dns', command: '/bin/node', args: ['/kith/dns.mjs'], env: {} },
        restart: { initialMs: 500, maxMs: 30000, fatalAfter: 0 }, onFatal: 'reboot',
      },
    });
  });
  it('reads static network and data disk', () => {
    const p = parseBootConfig(JSON.stringify({ ...minimal, network: { mode: 'static', address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2', dns: ['10.0.2.3'] }, data: { device: '/dev/vda' }, onFatal: 'poweroff' }));
    expect(p.ok && p.value.network).toEqual({ mode: 'static', interface: undefined, address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2', dns: ['10.0.2.3'] });
    expect(p.ok && p.value.data).toEqual({ device: '/dev/vda', fstype: 'ext4', mountpoint: '/data', waitMs: 10000 });
  });
  it('reports every problem in hostile input, never throwing', () => {
    for (const t of ['', 'null', '[]', '"x"', '{', '{"service":1}']) expect(parseBootConfig(t).ok).toBe(false);
    const p = parseBootConfig(JSON.stringify({
      hostname: 'a b', modules: ['rel.ko', 3], network: { mode: 'static', address: '999.1.1.1', prefix: 40, dns: 'x' },
      data: { device: 'sda' }, service: { name: 'X', command: 'node', args: [1], env: { a: 1 } }, restart: { initialMs: -1 }, onFatal: 'halt',
    }));
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.issues.length).toBeGreaterThanOrEqual(10);
    expect(parseBootConfig(JSON.stringify({ ...minimal, network: { mode: 'dhcp', interface: 'eth0; rm' } })).ok).toBe(false);
  });
  it('backs off exponentially with a cap', () => {
    const r = { initialMs: 500, maxMs: 30000 };
    expect([1, 2, 3, 4, 7, 8, 100].map((a) => restartDelay(a, r))).toEqual([500, 1000, 2000, 4000, 30000, 30000, 30000]);
  });
});
