/**
 * End to end, two images booted under qemu (KVM if it works here, else TCG):
 * - a tiny HTTP service with a data disk: Node is PID 1, the service runs sealed as its
 *   child, its writes reach the ext4 disk;
 * - the DNS service, built by `kith image build --target kvm --service dns --data-disk`
 *   with an extra zone and booted by `kith vm run dns`: dig on the host gets the zone's
 *   answers through the forwarded port, and the service's files land on the data disk.
 * Both initramfs hold no executable but node and its libraries.
 * Needs: qemu-system-x86, binutils (strip), e2fsprogs, xz-utils, apt access to the kernel .deb.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import zlib from 'node:zlib';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKvmImage, loadImage, runVm, type BuiltImage, type RunningVm } from '../../platform/kvm/cli.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles, loadDefinitions } from '../../platform/services.ts';
import { readCpio } from '../../platform/image/cpio.ts';
import { freePortBase, freeTcpPort } from '../support/ports.ts';
import { buildVmImage, startVm, stopVm } from './vm-process.ts';

const REPO = resolve(import.meta.dirname, '../..');
const OUT = join(REPO, 'build/test-images');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['qemu-system-x86_64', 'strip', 'mke2fs', 'e2fsck', 'debugfs', 'xz', 'apt-get', 'dpkg'];
const missing = tools.filter((t) => !have(t));


async function get(port: number): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(2000) });
    return await r.text();
  } catch {
    return undefined;
  }
}

/**
 * The initramfs holds nothing that runs but Node: node and its libraries are the only
 * runnable ELF files, kernel modules the only other ELF, /init the only script (run by
 * node), nothing else executable. Returns a summary line.
 */
function checkOnlyNode(initrd: string): string {
  const members = readCpio(zlib.zstdDecompressSync(readFileSync(initrd)));
  expect(members.ok).toBe(true);
  if (!members.ok) return '';
  const files = members.value;
  expect(files.every((m) => m.uid === 0 && m.gid === 0)).toBe(true);
  const S_IFMT = 0o170000, S_IFREG = 0o100000;
  const regular = files.filter((m) => (m.mode & S_IFMT) === S_IFREG);
  const elf = regular.filter((m) => m.data.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])));
  const runnable = elf.filter((m) => [2, 3].includes(m.data.readUInt16LE(16))); // ET_EXEC, ET_DYN
  const relocatable = elf.filter((m) => m.data.readUInt16LE(16) === 1); // ET_REL: kernel modules
  expect(runnable.map((m) => m.path).filter((p) => !/^(bin\/node|lib\/x86_64-linux-gnu\/[^/]+\.so[.\d]*|lib64\/ld-linux-x86-64\.so\.2)$/.test(p))).toEqual([]);
  expect(runnable.map((m) => m.path)).toContain('bin/node');
  expect(relocatable.every((m) => /^lib\/modules\/[a-z0-9_]+\.ko$/.test(m.path))).toBe(true);
  // Scripts: only /init, and it runs node.
  const scripts = regular.filter((m) => m.data.subarray(0, 2).toString() === '#!');
  expect(scripts.map((m) => m.path)).toEqual(['init']);
  expect(scripts[0]!.data.toString('utf8', 0, 12)).toBe('#!/bin/node ');
  // Nothing else is marked executable.
  const exec = regular.filter((m) => m.mode & 0o111).map((m) => m.path);
  expect(exec.filter((p) => p !== 'init' && !runnable.some((r) => r.path === p))).toEqual([]);
  const console = files.find((m) => m.path === 'dev/console');
  expect(console && (console.mode & S_IFMT)).toBe(0o020000);
  return `initramfs ${initrd}: ${files.length} members, ${elf.length} ELF (${runnable.length} runnable: ${runnable.map((m) => m.path).join(' ')}), ${(readFileSync(initrd).length / 1e6).toFixed(1)} MB zstd`;
}

// An x86_64 image boots on an x86_64 host; missing tools are a failure, not a skip
// (`kith test` installs them from test/debian-packages.txt).
describe.runIf(process.arch === 'x64')(`kvm image (needs ${tools.join(', ')})`, () => {
  it('has every tool it needs', () => {
    expect(missing, `install: apt-get install -y ${missing.join(' ')}`).toEqual([]);
  });
  let image: BuiltImage;
  let vm: RunningVm | undefined;
  let tmp: string;
  const lines: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-kvm-'));
    await build({ entryPoints: [join(REPO, 'test/images/echo-service.ts')], outfile: join(OUT, 'echo.mjs'), bundle: true, platform: 'node', format: 'esm', logLevel: 'warning' });
    const started = Date.now();
    image = await buildKvmImage({
      service: 'echo', serviceBundle: join(OUT, 'echo.mjs'), out: join(OUT, 'kvm-echo'),
      network: { mode: 'dhcp' }, data: { device: '/dev/vda', fstype: 'ext4', mountpoint: '/data', waitMs: 10_000 },
      onFatal: 'poweroff', compression: 'zstd', say: (l) => lines.push(l),
    });
    lines.push(`build took ${Date.now() - started} ms`);
    const mk = spawnSync('mke2fs', ['-q', '-t', 'ext4', '-F', join(tmp, 'data.img'), '16M']);
    if (mk.status !== 0) throw new Error(`mke2fs: ${mk.stderr}`);
  }, 150_000);

  afterAll(async () => {
    await vm?.stop();
    rmSync(tmp, { recursive: true, force: true });
    process.stdout.write(lines.filter((l) => /MB|took|answer|memory|order|libraries/.test(l)).join('\n') + '\n');
  });

  it('boots Node as PID 1 and serves through a forwarded port', async () => {
    const port = await freeTcpPort();
    const t0 = Date.now();
    vm = await runVm({ image, forwards: [{ proto: 'tcp', hostPort: port, guestPort: 8080 }], dataDisk: join(tmp, 'data.img'), accel: 'auto', memoryMiB: 1024 });
    let body: string | undefined;
    while (!body && Date.now() - t0 < 120_000) {
      if (vm.child.exitCode !== null) throw new Error(`qemu exited:\n${vm.output()}`);
      body = await get(port);
      if (!body) await new Promise((r) => setTimeout(r, 250));
    }
    lines.push(`answer after ${Date.now() - t0} ms under ${vm.accel}`);
    expect(body, vm.output()).toMatch(/^hello from kith echo pid=\d+ ppid=1 permission=sealed hits=\d+ /);
    // Probes that timed out while the guest was booting stay queued in qemu's slirp and
    // are served late: compare counts, not exact values.
    const first = Number(/hits=(\d+)/.exec(body!)![1]);
    const log = await vm.waitFor(/kith-init pid=1 .*memory service=echo/, 120_000);
    expect(log).toMatch(/^kith-init pid=1 t=[\d.]+s booting node=v26/m);
    expect(log).toMatch(/kith-init pid=1 .*modules loaded count=\d+ .*virtio_net/);
    expect(log).toMatch(/kith-init pid=1 .*dhcp lease ifname=eth0 address=10\.0\.2\.15\/24 router=10\.0\.2\.2/);
    expect(log).toMatch(/kith-init pid=1 .*data mounted device=\/dev\/vda/);
    expect(log).toMatch(/kith-init pid=1 .*service started service=echo child=\d+/);
    expect(log).not.toMatch(/FATAL|uncaught|Kernel panic/);
    lines.push(log.match(/kith-init pid=1 .*memory .*/)![0]);
    await new Promise((r) => setTimeout(r, 500));
    const second = await get(port);
    const last = Number(/hits=(\d+)/.exec(second ?? '')?.[1]);
    expect(last).toBeGreaterThan(first);
    await vm.stop();
    // The counter reached the ext4 data disk. The VM was killed, so the last writes may
    // still sit in the journal: replay it (as the next mount would) before reading.
    spawnSync('e2fsck', ['-fy', join(tmp, 'data.img')]);
    const cat = spawnSync('debugfs', ['-R', 'cat /hits', join(tmp, 'data.img')], { encoding: 'utf8' });
    expect(cat.stdout.trim(), cat.stderr + spawnSync('debugfs', ['-R', 'ls -l /', join(tmp, 'data.img')], { encoding: 'utf8' }).stdout).toBe(String(last));
  }, 300_000);

  it('ships no executable but node and its shared libraries', () => {
    lines.push(checkOnlyNode(image.initrd));
  });
});

/** dig against the forwarded port; stdout, or '' while the guest is not answering yet. */
function dig(port: number, ...args: string[]): string {
  const r = spawnSync('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=2', ...args], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

/**
 * dig once the service answers: asked again (3 times at most) when no answer came in
 * dig's 2 s. Through QEMU's user-mode network on a loaded CI machine a first TCP
 * connection once took longer than that (an empty answer, where the next ask is answered).
 */
function digAnswered(port: number, ...args: string[]): string {
  let out = '';
  let tries = 0;
  while (!out && tries < 3) {
    out = dig(port, ...args);
    tries++;
  }
  if (tries > 1) console.log(`dig ${args.join(' ')}: ${out ? `answered at try ${tries}` : 'no answer in 3 tries'}`);
  return out;
}

// The DNS image the README's commands build and boot (with storage beside it, which keeps
// config.git and takes dns's zone changes), with a zone of the owner's own baked in and a data disk: `kith image build --target kvm --service dns --data-disk`, then
// `kith vm run dns`, which makes the disk, forwards the ports and prints where they are.
describe.runIf(process.arch === 'x64')('kvm DNS image (kith image build --target kvm --service dns, kith vm run dns)', () => {
  let dir: string;
  let tmp: string;
  let vm: ChildProcess | undefined;
  let buildOut = '';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-kvm-dns-'));
    const config = join(tmp, 'config');
    seedMissingFiles(config, defaultConfigFiles(await loadDefinitions(REPO)));
    mkdirSync(join(config, 'dns/zones'), { recursive: true });
    writeFileSync(join(config, 'dns/zones/example.test.zone'), [
      '$ORIGIN example.test.', '$TTL 3600',
      '@ IN SOA ns1 hostmaster 2026112301 7200 3600 1209600 300',
      '@ IN NS ns1', 'ns1 IN A 192.0.2.53', 'www IN A 192.0.2.80', '@ IN MX 10 mail', 'mail IN A 192.0.2.25', '',
    ].join('\n'));
    dir = join(OUT, 'kvm-dns');
    buildOut = buildVmImage(REPO, 'dns', config, dir, ['--data-disk']);
  }, 150_000);

  afterAll(async () => {
    await stopVm(vm);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('prints each part\'s size', () => {
    expect(buildOut).toMatch(/icudt\d+_dat: 33\.1 MB -> [\d.]+ MB/);
    expect(buildOut).toMatch(/2\d\.\d MB of zeros cut from the file \(program now \d+\.\d MB\)/);
    for (const part of ['kernel (vmlinux)', 'node (stripped)', 'service (dns.mjs)', 'initramfs (zstd)']) expect(buildOut).toContain(part);
    expect(buildOut).toMatch(/boot it: kith vm run dns/);
    // The service's V8 startup snapshot, built by the image's Node and started from, sealed.
    expect(buildOut).toMatch(/snapshot [\d.]+ MB; the sealed service starts from it \(startupMs \{"node":\d+,"modules":\d+,"ready":\d+\}/);
    expect(buildOut).toContain('service snapshot (dns.blob)');
  });

  it('answers dig through the forwarded port, from its zones, over UDP and TCP, and keeps its data on the disk', async () => {
    const base = await freePortBase(2); // dns is service slot 1: base + 10, base + 11

    const disk = join(tmp, 'dns-data.img');
    const running = startVm(REPO, ['dns', '--image', dir, '--port-base', String(base), '--data-disk', disk, '--data-size', '64']);
    vm = running.child;
    const t0 = Date.now();
    // Where to reach it, as kith vm run prints it.
    const port = await running.port(/^ +dns +udp:\/\/127\.0\.0\.1:(\d+) /m);
    expect(port, running.output()).toBeGreaterThan(base);
    let www = '';
    while (!/192\.0\.2\.80/.test(www) && Date.now() - t0 < 120_000) {
      if (vm.exitCode !== null) throw new Error(`kith vm run exited:\n${running.output()}`);
      www = dig(port, 'www.example.test', 'A', '+short');
      if (!www) await new Promise((r) => setTimeout(r, 250));
    }
    expect(www.trim(), running.output().slice(-3000)).toBe('192.0.2.80');
    expect(running.output()).toMatch(/made a 64 MiB data disk: /);
    expect(digAnswered(port, 'example.test', 'MX', '+short', '+tcp').trim()).toBe('10 mail.example.test.');
    // Local names: the appliance's own address, as DHCP gave it.
    expect(digAnswered(port, 'kith.home.arpa', 'A', '+short').trim()).toBe('10.0.2.15');
    const nx = digAnswered(port, 'nope.example.test', 'A', '+norecurse');
    expect(nx).toMatch(/status: NXDOMAIN/);
    expect(nx).toMatch(/AUTHORITY SECTION:\nexample\.test\.\s+\d+\s+IN\s+SOA\s+ns1\.example\.test\./);
    expect(running.output()).toMatch(/^kith-init pid=1 t=[\d.]+s booting node=v26/m);
    expect(running.output()).toMatch(/kith-init pid=1 .*data mounted device=\/dev\/vda mountpoint=\/data fstype=ext4/);
    expect(running.output()).toMatch(/kith-init pid=1 .*service started service=dns child=\d+ .*command="\/bin\/node --permission.* --snapshot-blob \/kith\/dns\.blob \/kith\/dns\.mjs /);
    // The first answers can come a moment before the runner logs 'ready' (after /healthz is up).
    for (const end = Date.now() + 30_000; !/"service":"dns","msg":"ready"/.test(running.output()) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 250));
    expect(running.output()).toMatch(/"service":"dns","msg":"ready"/);
    expect(running.output()).not.toMatch(/FATAL|uncaught|Kernel panic/);
    // Ctrl-C (here SIGTERM) stops the VM; what the service wrote is on the disk.
    expect(await stopVm(vm)).toBe(0);
    spawnSync('e2fsck', ['-fy', disk]); // replay the journal of a VM that was stopped hard
    // dns writes its zones through storage, which comes along in the image: a folder each, as on the Pi.
    const ls = spawnSync('debugfs', ['-R', 'ls -p /dns', disk], { encoding: 'utf8' }).stdout;
    expect(ls).toMatch(/\/zone-serials\.json\//);
    expect(spawnSync('debugfs', ['-R', 'ls -p /storage/repos', disk], { encoding: 'utf8' }).stdout).toMatch(/\/config\.git\//);
  }, 150_000);

  it('ships no executable but node and its shared libraries', () => {
    checkOnlyNode(loadImage(dir).initrd);
  });
});
