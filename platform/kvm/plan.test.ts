import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeAction } from '../image/plan.ts';
import { planAppliance, type ServiceDescriptor } from '../appliance.ts';
import { planKvmImage } from './plan.ts';

const DNS: ServiceDescriptor = {
  name: 'dns', description: 'DNS',
  listeners: { health: { protocol: 'http', port: 9102, description: 'health' }, dns: { protocol: 'dns', port: 53, description: 'DNS' } },
};
const defaultServiceArgs = (snapshot = false) => planAppliance([DNS], { target: 'kvm', service: 'dns', snapshot }).services[0]!.args;

const GOLDEN = join(import.meta.dirname, 'testdata/kvm-plan.golden.txt');
const CALENDAR_GOLDEN = join(import.meta.dirname, 'testdata/kvm-plan-calendar.golden.txt');

const STORAGE: ServiceDescriptor = {
  name: 'storage', description: 'storage', writableConfig: true,
  listeners: { health: { protocol: 'http', port: 9101, description: 'health' }, http: { protocol: 'http', port: 8080, description: 'git' }, https: { protocol: 'https', port: 8443, description: 'git over TLS' } },
};
const CALENDAR: ServiceDescriptor = {
  name: 'calendar', description: 'CalDAV', needs: { store: ['calendar'], configWrite: ['dns/zones/'] },
  listeners: { health: { protocol: 'http', port: 9104, description: 'health' }, http: { protocol: 'http', port: 5232, description: 'dav' }, https: { protocol: 'https', port: 8843, description: 'dav over TLS' } },
};

describe('kvm image plan', () => {
  const plan = planKvmImage({
    service: DNS, serviceBundle: '/repo/dist/dns.mjs', bootEntry: '/repo/platform/boot/init.ts',
    out: '/repo/build/kvm/dns', cache: '/repo/build/cache', kernelPackage: 'linux-image-6.1.0-56-amd64', nodeVersion: '26.10.0',
    modules: ['virtio_pci', 'virtio_net', 'virtio_blk', 'ext4'], network: { mode: 'dhcp' },
    data: { device: '/dev/vda', fstype: 'ext4', mountpoint: '/data', waitMs: 10000 }, onFatal: 'reboot', compression: 'zstd', languages: ['en'],
  });

  it('matches the golden plan (UPDATE_GOLDEN=1 to rewrite)', () => {
    const text = plan.map(describeAction).join('\n') + '\n';
    if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('boots the service sealed, with /init as node', () => {
    const boot = plan.find((a) => a.kind === 'write-boot-config');
    expect(boot?.kind === 'write-boot-config' && boot.config.service).toEqual({ name: 'dns', command: '/bin/node', args: defaultServiceArgs(), env: {}, dataDir: '/data' });
    // Alone in its image: no other process, no links.
    expect(boot?.kind === 'write-boot-config' && [boot.config.services, boot.config.links, boot.config.resolver, boot.config.seed]).toEqual([undefined, undefined, undefined, undefined]);
    expect(boot?.kind === 'write-boot-config' && boot.config.ownerFromCmdline).toBe(true);
    expect(defaultServiceArgs()).toContain('--permission');
    const init = plan.find((a) => a.kind === 'bundle');
    expect(init?.kind === 'bundle' && init.banner?.startsWith('#!/bin/node')).toBe(true);
    // the staging root is cleaned before anything is written into it
    expect(plan[0]).toEqual({ kind: 'clean', path: '/repo/build/kvm/dns/root' });
  });
});

describe('kvm image plan with a startup snapshot', () => {
  const plan = planKvmImage({
    service: DNS, serviceBundle: '/repo/dist/dns.mjs', bootEntry: '/repo/platform/boot/init.ts',
    out: '/repo/build/kvm/dns', cache: '/repo/build/cache', kernelPackage: 'linux-image-6.1.0-56-amd64', nodeVersion: '26.10.0',
    modules: ['virtio_pci', 'virtio_net'], network: { mode: 'dhcp' }, onFatal: 'reboot', compression: 'zstd', languages: ['en'],
    snapshot: { entry: '/repo/services/dns/main.ts', listeners: ['health', 'dns'] },
  });
  it('builds the snapshot once Node, bundle and config are in place, and starts the sealed service from it', () => {
    const kinds = plan.map((a) => a.kind);
    const at = kinds.indexOf('service-snapshot');
    expect(at).toBeGreaterThan(kinds.lastIndexOf('copy'));
    expect(at).toBeGreaterThan(kinds.indexOf('collect-libs'));
    expect(at).toBeLessThan(kinds.indexOf('write-boot-config'));
    expect(plan[at]).toEqual({ kind: 'service-snapshot', root: '/repo/build/kvm/dns/root', entry: '/repo/services/dns/main.ts', blob: '/kith/dns.blob', bundle: '/kith/dns.mjs', configDir: '/kith/config', listeners: ['health', 'dns'] });
    const boot = plan.find((a) => a.kind === 'write-boot-config');
    if (boot?.kind !== 'write-boot-config') throw new Error('no boot config');
    expect(boot.config.service.env).toEqual({});
    const args = boot.config.service.args;
    expect(args.slice(args.indexOf('--snapshot-blob'), args.indexOf('--snapshot-blob') + 3)).toEqual(['--snapshot-blob', '/kith/dns.blob', '/kith/dns.mjs']);
    expect(args).toContain('--permission');
    expect(args).toContain('--frozen-intrinsics');
  });
});

describe('kvm image plan for a service with links (calendar, which keeps its data through storage)', () => {
  const plan = planKvmImage({
    service: CALENDAR, serviceBundle: '/repo/dist/calendar.mjs', registry: '/repo/dist/config-specs.mjs', bootEntry: '/repo/platform/boot/init.ts',
    companions: [{ descriptor: STORAGE, bundle: '/repo/dist/storage.mjs', entry: '/repo/services/storage/main.ts' }],
    out: '/repo/build/kvm/calendar', cache: '/repo/build/cache', kernelPackage: 'linux-image-6.1.0-56-amd64', nodeVersion: '26.10.0',
    modules: ['virtio_pci', 'virtio_net', 'virtio_blk', 'ext4'], network: { mode: 'dhcp' },
    data: { device: '/dev/vda', fstype: 'ext4', mountpoint: '/data', waitMs: 10000 }, onFatal: 'reboot', compression: 'zstd', languages: ['en'],
    snapshot: { entry: '/repo/services/calendar/main.ts', listeners: ['health', 'http', 'https'] },
  });

  it('matches the golden plan (UPDATE_GOLDEN=1 to rewrite)', () => {
    const text = plan.map(describeAction).join('\n') + '\n';
    if (process.env.UPDATE_GOLDEN) writeFileSync(CALENDAR_GOLDEN, text);
    expect(text).toBe(readFileSync(CALENDAR_GOLDEN, 'utf8'));
  });

  it('ships storage beside it, both sealed from snapshots, linked by PID 1 on loopback', () => {
    const boot = plan.find((a) => a.kind === 'write-boot-config');
    if (boot?.kind !== 'write-boot-config') throw new Error('no boot config');
    const c = boot.config;
    expect(c.services?.map((s) => [s.name, s.dataDir, s.needs])).toEqual([
      ['calendar', '/data/calendar', { configWrite: ['dns/zones/'], store: ['calendar'] }],
      ['storage', '/data/storage', undefined],
    ]);
    expect(c.service.name).toBe('calendar');
    expect(c.links).toEqual({ storage: 'storage', storageUrl: 'http://127.0.0.1:8080' });
    expect(c.resolver).toBeUndefined();
    expect(c.ownerFromCmdline).toBe(true);
    // The config working tree on the data disk, seeded from the image's; storage publishes into it.
    expect(c.seed).toEqual({ from: '/kith/config', to: '/data/config' });
    for (const s of c.services!) expect(s.args).toEqual(expect.arrayContaining(['--permission', '--snapshot-blob', `/kith/${s.name}.blob`, `--allow-fs-write=/data/${s.name}`]));
    expect(plan.filter((a) => a.kind === 'service-snapshot').map((a) => a.kind === 'service-snapshot' && [a.entry, a.blob])).toEqual([
      ['/repo/services/calendar/main.ts', '/kith/calendar.blob'], ['/repo/services/storage/main.ts', '/kith/storage.blob'],
    ]);
    // Storage validates config pushes: the registry comes along.
    expect(plan.some((a) => a.kind === 'copy' && a.to.endsWith('/kith/config-specs.mjs'))).toBe(true);
    const meta = plan.find((a) => a.kind === 'write-json' && a.to.endsWith('image.json'));
    expect(meta?.kind === 'write-json' && meta.value).toMatchObject({ service: 'calendar', services: ['calendar', 'storage'], dataDisk: true });
  });
});
