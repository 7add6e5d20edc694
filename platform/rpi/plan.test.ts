import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeAction } from '../image/plan.ts';
import { parseBootConfig } from '../boot/boot-config.ts';
import { configTxt, DEBIAN_ARM64_SOURCES, planRpiImage, RPI_DEFAULT_MODULES, rpiBootConfig, type RpiPlanInputs } from './plan.ts';

const GOLDEN = join(import.meta.dirname, 'testdata/rpi-plan.golden.txt');

const inputs: RpiPlanInputs = {
  out: '/repo/build/rpi/image', cache: '/repo/build/cache', aptRoot: '/repo/build/rpi/apt', aptSources: DEBIAN_ARM64_SOURCES,
  kernelPackage: 'linux-image-6.1.0-56-arm64', nodeVersion: '26.10.0', bootEntry: '/repo/platform/boot/init.ts', pkiEntry: '/repo/platform/pki/pki-main.ts',
  services: [
    {
      descriptor: { name: 'storage', description: 'storage', writableConfig: true, listeners: { health: { protocol: 'http', port: 9101, description: 'h' }, http: { protocol: 'http', port: 8080, description: 'git' } } },
      bundle: '/repo/dist/storage.mjs',
    },
    {
      descriptor: { name: 'dns', description: 'dns', needs: { configWrite: ['dns/zones/'] }, listeners: { health: { protocol: 'http', port: 9102, description: 'h' }, dns: { protocol: 'dns', port: 53, description: 'dns' } } },
      bundle: '/repo/dist/dns.mjs',
    },
  ],
  registry: '/repo/dist/config-specs.mjs',
  configFiles: { 'dns/dns.yaml': 'x: 1\n', 'storage/storage.yaml': 'y: 2\n' },
  modules: RPI_DEFAULT_MODULES, network: { mode: 'dhcp' }, bootMiB: 256, rootMiB: 192, dataMiB: 256, compression: 'zstd', languages: ['en'], hostname: 'kith',
};

describe('rpi image plan', () => {
  const plan = planRpiImage(inputs);

  it('matches the golden plan (UPDATE_GOLDEN=1 to rewrite)', () => {
    const text = plan.map(describeAction).join('\n') + '\n';
    if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('writes a boot.json PID 1 accepts, with every service sealed on its own data folder', () => {
    const cfg = rpiBootConfig(inputs);
    const parsed = parseBootConfig(JSON.stringify({ ...cfg, modules: ['/lib/modules/ext4.ko'] }));
    expect(parsed.ok, JSON.stringify(parsed)).toBe(true);
    if (!parsed.ok) return;
    const [storage, dns] = parsed.value.services!;
    expect(storage!.args).toContain('--allow-fs-write=/data/config'); // storage publishes the config tree
    expect(dns!.args).not.toContain('--allow-fs-write=/data/config');
    // DNS faces the LAN; health and metrics stay on loopback (issue 11, item 15).
    expect(dns!.args).toEqual(expect.arrayContaining(['--permission', '--allow-fs-write=/data/dns', '--listen', 'dns=0.0.0.0:53', 'health=127.0.0.1:9102']));
    expect(storage!.args).toEqual(expect.arrayContaining(['http=0.0.0.0:8080', 'health=127.0.0.1:9101']));
    expect(dns!.needs).toEqual({ configWrite: ['dns/zones/'] });
    expect(parsed.value.links).toEqual({ storage: 'storage', storageUrl: 'http://127.0.0.1:8080' });
    expect(parsed.value.data?.device).toBe('LABEL=kith-data');
    // The CA, the certificates of the services that serve TLS (none here) and pairing.
    expect(parsed.value.pki).toEqual({ name: 'pki', command: '/bin/node', dataDir: '/data/pki', env: {},
      args: ['--expose-gc', '/kith/pki.cjs', '--pki', '/data/pki', '--services', '/data', '--port', '7299', '--seed-secret', '/data/kith/pairing-secret', '--status-file', '/run/kith-status.json'] });
    const withTls = rpiBootConfig({ ...inputs, services: [...inputs.services, { descriptor: { name: 'mail', description: 'm', listeners: { smtp: { protocol: 'tcp', port: 25, tls: true, description: 's' } } }, bundle: '/repo/dist/mail.mjs' }] });
    expect(withTls.pki!.args.slice(-2)).toEqual(['--tls', 'mail']);
    // Storage with an https listener: the pki process also gives each linked service a client certificate for it.
    const https = { ...inputs.services[0]!, descriptor: { ...inputs.services[0]!.descriptor, listeners: { ...inputs.services[0]!.descriptor.listeners, https: { protocol: 'https' as const, port: 8443, description: 't' } } } };
    const linked = rpiBootConfig({ ...inputs, services: [https, inputs.services[1]!] });
    expect(linked.pki!.args.slice(-8)).toEqual(['--tls', 'storage', '--storage', 'storage', '--storage-tls-url', 'https://127.0.0.1:8443', '--link', 'dns']);
    expect(parsed.value.debug).toBeUndefined(); // only test images get the debug port
    expect(rpiBootConfig({ ...inputs, debugPort: 9199 }).debug).toEqual({ port: 9199 });
    // A test image's health is reached through qemu's forwarding: on every address there.
    expect(rpiBootConfig({ ...inputs, debugPort: 9199 }).services![1]!.args).toContain('health=0.0.0.0:9102');
  });

  it('says what the Pi firmware needs in config.txt', () => {
    expect(configTxt('zstd').split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'arm_64bit=1', 'upstream_kernel=1', 'kernel=vmlinuz', 'initramfs initrd.cpio.zst followkernel', 'enable_uart=1',
    ]);
  });

  it('builds each partition apart and places it after partitioning', () => {
    const kinds = plan.map((a) => a.kind);
    expect(kinds.indexOf('partition')).toBeLessThan(kinds.indexOf('place'));
    expect(kinds.indexOf('pack-initramfs')).toBeLessThan(kinds.indexOf('make-vfat'));
    const places = plan.filter((a) => a.kind === 'place');
    expect(places.map((a) => a.kind === 'place' && a.offsetBytes)).toEqual([4 * 1024 * 1024, (4 + 256) * 1024 * 1024, (4 + 256 + 192) * 1024 * 1024]);
  });

  it('keeps Node and the bundles on a read-only root partition; the initramfs only mounts it (issue 16)', () => {
    const ext4 = plan.filter((a) => a.kind === 'make-ext4');
    expect(ext4.map((a) => a.kind === 'make-ext4' && [a.label, a.from, a.readOnly ?? false])).toEqual([
      ['kith-root', '/repo/build/rpi/image/root', true], ['kith-data', '/repo/build/rpi/image/data', false],
    ]);
    const packed = plan.filter((a) => a.kind === 'pack-initramfs');
    expect(packed.map((a) => a.kind === 'pack-initramfs' && a.root)).toEqual(['/repo/build/rpi/image/initramfs']);
    // The first stage loads what mounts the root; PID 1 is told only the rest.
    const mods = plan.filter((a) => a.kind === 'resolve-modules');
    expect(mods.map((a) => a.kind === 'resolve-modules' && [a.destDir, a.omitFrom])).toEqual([
      ['/repo/build/rpi/image/initramfs/lib/modules', undefined],
      ['/repo/build/rpi/image/root/lib/modules', '/repo/build/rpi/image/first-stage-modules.json'],
    ]);
    // What PID 1 writes outside /data and the tmpfs folders has a place on the read-only root.
    expect(plan).toContainEqual({ kind: 'mkdir', path: '/repo/build/rpi/image/root/boot' });
    expect(plan).toContainEqual({ kind: 'symlink', path: '/repo/build/rpi/image/root/etc/resolv.conf', target: '../run/resolv.conf' });
  });
});
