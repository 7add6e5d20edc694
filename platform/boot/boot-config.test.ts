import { describe, expect, it } from 'vitest';
import { bootServices, ownerCmdlineArg, ownerHashFromCmdline, parseBootConfig, restartDelay } from './boot-config.ts';

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
    const g = parseBootConfig(JSON.stringify({ ...minimal, data: { device: 'LABEL=kith-data', grow: true } }));
    expect(g.ok && g.value.data?.grow).toBe(true);
    for (const data of [{ device: '/dev/vda2', grow: 'yes' }, { device: '/dev/vda2', fstype: 'vfat', grow: true }]) {
      const bad = parseBootConfig(JSON.stringify({ ...minimal, data }));
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect(bad.issues.join('; ')).toMatch(/data\.grow: /);
    }
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
  it('reads the clock block: servers, pool, notBefore; refuses anything else', () => {
    const p = parseBootConfig(JSON.stringify({ ...minimal, clock: { servers: ['192.168.1.1', 'ntp.example.net'], pool: 'pool.ntp.org', notBefore: 1_780_000_000_000 } }));
    expect(p.ok && p.value.clock).toEqual({ servers: ['192.168.1.1', 'ntp.example.net'], pool: 'pool.ntp.org', notBefore: 1_780_000_000_000 });
    expect(parseBootConfig(JSON.stringify({ ...minimal, clock: {} })).ok && true).toBe(true);
    for (const clock of [[], { servers: 'x' }, { servers: ['a b'] }, { pool: 'bad name!' }, { pool: 5 }, { notBefore: -1 }, { notBefore: 1.5 }]) {
      const bad = parseBootConfig(JSON.stringify({ ...minimal, clock }));
      expect(bad.ok, JSON.stringify(clock)).toBe(false);
      if (!bad.ok) expect(bad.issues.join('; ')).toMatch(/^clock/);
    }
  });
  it('reads where the owner seed may be', () => {
    const p = parseBootConfig(JSON.stringify({ ...minimal, ownerSeed: { device: 'LABEL=KITHBOOT' } }));
    expect(p.ok && p.value.ownerSeed).toEqual({ device: 'LABEL=KITHBOOT' });
    for (const ownerSeed of [{}, { device: 'sda1' }, { device: 'LABEL=MUCH-TOO-LONG-LABEL' }, 'x']) expect(parseBootConfig(JSON.stringify({ ...minimal, ownerSeed })).ok).toBe(false);
  });
  it('reads a multi-service appliance config', () => {
    const svc = (name: string, extra = {}) => ({ name, command: '/bin/node', args: [`/kith/${name}.mjs`], dataDir: `/data/${name}`, ...extra });
    const p = parseBootConfig(JSON.stringify({
      services: [svc('storage'), svc('dns', { needs: { configWrite: ['dns/zones/'] } })],
      data: { device: 'LABEL=kith-data' }, seed: { from: '/kith/config', to: '/data/config' },
      links: { storage: 'storage', storageUrl: 'http://127.0.0.1:8080' }, debug: { port: 9199 },
    }));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(bootServices(p.value).map((s) => s.name)).toEqual(['storage', 'dns']);
    expect(p.value.services![1]).toEqual({ name: 'dns', command: '/bin/node', args: ['/kith/dns.mjs'], env: {}, dataDir: '/data/dns', needs: { configWrite: ['dns/zones/'] } });
    expect(p.value.data?.device).toBe('LABEL=kith-data');
    expect(p.value.seed).toEqual({ from: '/kith/config', to: '/data/config' });
    expect(p.value.links).toEqual({ storage: 'storage', storageUrl: 'http://127.0.0.1:8080' });
    expect(p.value.debug).toEqual({ port: 9199 });
    const single = parseBootConfig(JSON.stringify(minimal));
    expect(single.ok && bootServices(single.value).map((s) => s.name)).toEqual(['dns']);
  });
  it('refuses hostile multi-service configs', () => {
    const svc = { name: 'dns', command: '/bin/node' };
    for (const bad of [
      { services: [] }, { services: 'dns' }, { services: [svc, svc] }, { services: [{ ...svc, dataDir: 'rel' }] },
      { services: [{ ...svc, needs: { configWrite: 'x' } }] }, { ...minimal, data: { device: 'LABEL=a b' } },
      { ...minimal, data: { device: 'LABEL=' + 'x'.repeat(17) } }, { ...minimal, seed: { from: 'rel', to: '/data' } },
      { ...minimal, links: { storage: 'storage', storageUrl: 'file:///etc' } }, { ...minimal, debug: { port: 70000 } }, { ...minimal, debug: 1 },
    ]) expect(parseBootConfig(JSON.stringify(bad)).ok, JSON.stringify(bad)).toBe(false);
  });
  it('takes the owner token hash from the kernel command line only when asked, and only a hash', () => {
    const hash = 'ab'.repeat(32);
    expect(parseBootConfig(JSON.stringify({ ...minimal, ownerFromCmdline: true }))).toMatchObject({ ok: true, value: { ownerFromCmdline: true } });
    const plain = parseBootConfig(JSON.stringify(minimal));
    expect(plain.ok && plain.value.ownerFromCmdline).toBeUndefined();
    expect(parseBootConfig(JSON.stringify({ ...minimal, ownerFromCmdline: 'yes' }))).toEqual({ ok: false, issues: ['ownerFromCmdline: true or false'] });
    expect(ownerHashFromCmdline(`console=ttyS0 panic=-1 quiet ${ownerCmdlineArg(hash)}\n`)).toBe(hash);
    expect(ownerHashFromCmdline(`kith.owner=${'0'.repeat(64)} kith.owner=${hash}`)).toBe(hash); // the last one, as the kernel's own parameters
    for (const bad of ['', 'quiet', 'kith.owner=', `kith.owner=${hash.toUpperCase()}`, `kith.owner=${hash}0`, `kith.owner=${hash.slice(1)}`, `xkith.owner=${hash}`, `kith.owner=${'g'.repeat(64)}`]) expect(ownerHashFromCmdline(bad), bad).toBeUndefined();
    expect(() => ownerCmdlineArg('token in clear')).toThrow(/64 lower-case hex/);
  });

  it('backs off exponentially with a cap', () => {
    const r = { initialMs: 500, maxMs: 30000 };
    expect([1, 2, 3, 4, 7, 8, 100].map((a) => restartDelay(a, r))).toEqual([500, 1000, 2000, 4000, 30000, 30000, 30000]);
  });
});
