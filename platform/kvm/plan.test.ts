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
    expect(boot?.kind === 'write-boot-config' && boot.config.service).toEqual({ name: 'dns', command: '/bin/node', args: defaultServiceArgs(), env: {} });
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
