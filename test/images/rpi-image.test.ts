/**
 * End to end: build the Raspberry Pi SD-card image with every existing service, check its
 * layout from outside with the standard tools (sfdisk, fsck.vfat, e2fsck, mtools), then boot
 * the kernel and initramfs taken from its boot partition under qemu's arm64 virt machine
 * with the image itself as the disk, and show every service answering through forwarded
 * ports — storage's health endpoint over HTTP, DNS with dig over UDP and TCP. Then kill
 * storage through PID 1's debug port (test images only) and show it comes back while DNS
 * never stops answering. Then pair with `kith pair` by the code on the console (the pki
 * process, once chronyd on loopback has set the guest's clock): the device certificate opens
 * storage by mutual TLS, and submission's STARTTLS certificate verifies against the CA.
 * Needs: qemu-system-arm, mtools, dosfstools, e2fsprogs, fdisk, binutils-aarch64-linux-gnu,
 * bind9-dnsutils, chrony, openssl, apt access to Debian arm64 packages.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRpiImage, type BuiltRpiImage } from '../../platform/rpi/cli.ts';
import { bootVirt, type VirtVm } from '../../platform/rpi/qemu.ts';
import type { Forward } from '../../platform/kvm/qemu.ts';
import { freeTcpPort } from '../support/ports.ts';
import { APPLIANCE_PAIR_PORT } from '../../platform/pki/appliance-launch.ts';
import { writeChronyConf } from '../support/chrony.ts';
import { readCpio } from '../../platform/image/cpio.ts';
import { zstdDecompressSync } from 'node:zlib';

const REPO = resolve(import.meta.dirname, '../..');
const OUT = join(REPO, 'build/rpi/test-image');
const run = promisify(execFile);
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['chronyd', 'openssl', 'qemu-system-aarch64', 'aarch64-linux-gnu-strip', 'sfdisk', 'mkfs.vfat', 'fsck.vfat', 'mcopy', 'mtype', 'mke2fs', 'e2fsck', 'debugfs', 'dig', 'apt-get', 'dpkg'];
const missing = tools.filter((t) => !have(t));
const MTOOLS = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
const DEBUG_PORT = 9199;


async function dig(port: number, tcp = false): Promise<string | undefined> {
  try {
    const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), 'kith.home.arpa', 'A', '+short', '+tries=1', '+time=2', ...(tcp ? ['+tcp'] : [])]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function http(url: string, method = 'GET'): Promise<{ status: number; body: string } | undefined> {
  try {
    // 15 s: under TCG on a loaded machine a healthy service can take seconds to answer.
    const r = await fetch(url, { method, signal: AbortSignal.timeout(15_000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return undefined;
  }
}

/** Status of an https GET with the given trust and client certificate; 0 when the TLS handshake or connection fails. */
function httpsStatus(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ...tls, servername: 'localhost', timeout: 10_000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', () => resolve(0));
    req.on('timeout', () => { req.destroy(); resolve(0); });
  });
}

/** openssl with QUIT on its standard input, asynchronously (see the note on spawnSync below); stdout and stderr together. */
function openssl(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d; });
    p.stderr.on('data', (d: Buffer) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', () => { clearTimeout(timer); resolve(out); });
    p.stdin.end('QUIT\r\n');
  });
}

function sh(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe.skipIf(missing.length > 0)(`rpi SD-card image (needs ${tools.join(', ')})`, () => {
  let img: BuiltRpiImage;
  let tmp: string;
  let vm: VirtVm | undefined;
  let chronyd: ChildProcess | undefined;
  const lines: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-rpi-'));
    if (!existsSync(join(REPO, 'dist/storage.mjs')) || !existsSync(join(REPO, 'dist/dns.mjs'))) sh(process.execPath, [join(REPO, 'installer/kith.ts'), 'build']);
    const t0 = Date.now();
    // No NTP pool: qemu's user network would take its lookups and queries outside the machine.
    // Time comes from chronyd on this machine's loopback, which the guest reaches as 10.0.2.2:
    // the CA and the certificates wait for a synchronised clock.
    img = await buildRpiImage({ out: OUT, debugPort: DEBUG_PORT, clock: { servers: ['10.0.2.2'] }, say: (l) => lines.push(l) });
    const dir = join(tmp, 'chrony');
    sh('mkdir', ['-p', dir]);
    writeChronyConf(dir, '127.0.0.1', '127.0.0.1');
    // -x: serve the time, never set this machine's clock.
    chronyd = spawn('chronyd', ['-x', '-d', '-U', '-u', 'root', '-L', '0', '-f', join(dir, 'chrony.conf')], { stdio: 'ignore' });
    lines.push(`build took ${Date.now() - t0} ms`);
  }, 180_000);

  afterAll(async () => {
    await vm?.stop();
    // chronyd writes its drift file as it stops: wait for it before removing the folder.
    if (chronyd && chronyd.exitCode === null && chronyd.signalCode === null) {
      const gone = new Promise((r) => chronyd!.once('exit', r));
      chronyd.kill('SIGTERM');
      await gone;
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    process.stdout.write(lines.filter((l) => /MB|took|answer|memory|restart/.test(l)).join('\n') + '\n');
  });

  /** Copy partition n out of the image (sparse), as fsck tools want a file. */
  const extract = (n: number): string => {
    const p = img.partitions[n - 1]!;
    const out = join(tmp, `p${n}.img`);
    sh('dd', [`if=${img.image}`, `of=${out}`, 'bs=4M', `skip=${p.offsetBytes}`, `count=${p.sectors * 512}`, 'iflag=skip_bytes,count_bytes', 'conv=sparse', 'status=none']);
    return out;
  };

  it('carries arm64 Node with its ICU data trimmed and the zeroed tail cut out of the file', () => {
    expect(lines.join('\n')).toMatch(/icudt\d+_dat: 33\.1 MB -> [\d.]+ MB/);
    expect(lines.join('\n')).toMatch(/2\d\.\d MB of zeros cut from the file \(program now \d+\.\d MB\)/);
  });

  it('has an MBR with a FAT32 boot, a read-only ext4 root and an ext4 data partition, all clean', () => {
    const table = JSON.parse(sh('sfdisk', ['--json', img.image])) as { partitiontable: { label: string; partitions: { start: number; size: number; type: string; bootable?: boolean }[] } };
    expect(table.partitiontable.label).toBe('dos');
    expect(table.partitiontable.partitions.map((p) => [p.start, p.size, p.type])).toEqual(img.partitions.map((p) => [p.startSector, p.sectors, p.type]));
    expect(table.partitiontable.partitions.map((p) => p.type)).toEqual(['c', '83', '83']);
    expect(sh('sfdisk', ['-l', img.image])).toMatch(/W95 FAT32 \(LBA\)[\s\S]*Linux[\s\S]*Linux/);
    expect(sh('fsck.vfat', ['-n', extract(1)])).toMatch(/files/);
    for (const n of [2, 3]) {
      const e2 = spawnSync('e2fsck', ['-fn', extract(n)], { encoding: 'utf8' });
      expect(e2.status, e2.stdout + e2.stderr).toBe(0);
    }
    // The root: Node, the bundles and PID 1's /init, read-only (no journal), all root's.
    const root = sh('dumpe2fs', ['-h', join(tmp, 'p2.img')]);
    expect(root).toMatch(/Filesystem volume name:\s+kith-root/);
    expect(root).not.toMatch(/has_journal/);
    expect(sh('debugfs', ['-R', 'ls -p /kith', join(tmp, 'p2.img')])).toMatch(/\/storage\.mjs\//);
    expect(sh('debugfs', ['-R', 'stat /bin/node', join(tmp, 'p2.img')])).toMatch(/User:\s+0\s+Group:\s+0/);
    expect(sh('dumpe2fs', ['-h', join(tmp, 'p3.img')])).toMatch(/Filesystem volume name:\s+kith-data/);
  });

  it('holds firmware, kernel, DTBs, initramfs, config.txt and cmdline.txt on the boot partition; the initramfs holds only the first stage', () => {
    const at = `${img.image}@@${img.partitions[0]!.offsetBytes}`;
    const config = sh('mtype', ['-i', at, '::/config.txt'], MTOOLS);
    for (const l of ['arm_64bit=1', 'upstream_kernel=1', 'kernel=vmlinuz', 'initramfs initrd.cpio.zst followkernel', 'enable_uart=1']) expect(config).toContain(l);
    expect(sh('mtype', ['-i', at, '::/cmdline.txt'], MTOOLS)).toMatch(/console=ttyS1,115200/);
    const dir = sh('mdir', ['-i', at, '-b', '::/'], MTOOLS);
    for (const f of ['bootcode.bin', 'start.elf', 'start4.elf', 'fixup4.dat', 'vmlinuz', 'initrd.cpio.zst', 'bcm2837-rpi-3-b.dtb', 'bcm2837-rpi-zero-2-w.dtb', 'bcm2711-rpi-4-b.dtb', 'bcm2711-rpi-400.dtb']) expect(dir).toContain(`::/${f}`);
    // Busybox, its /init script and the modules that mount the root; no Node (issue 16).
    sh('mcopy', ['-i', at, '::/initrd.cpio.zst', join(tmp, 'initrd-check.zst')], MTOOLS);
    const cpio = readCpio(zstdDecompressSync(readFileSync(join(tmp, 'initrd-check.zst'))));
    expect(cpio.ok).toBe(true);
    const paths = cpio.ok ? cpio.value.map((m) => m.path) : [];
    expect(paths).toEqual(expect.arrayContaining(['init', 'bin/busybox', 'lib/modules/order', 'lib/modules/ext4.ko', 'lib/modules/virtio_blk.ko']));
    for (const big of ['bin/node', 'kith/boot.json', 'kith/storage.mjs']) expect(paths).not.toContain(big);
  });

  it('kith flash writes it to a card (here a file), reads it back and verifies it', () => {
    const card = join(tmp, 'card.img');
    const r = spawnSync(process.execPath, [join(REPO, 'installer/kith.ts'), 'flash', '--image', img.image, card, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { bytes: number; verified: boolean; sha256: string };
    expect(out.verified).toBe(true);
    expect(out.bytes).toBe(statSync(img.image).size);
    expect(sh('sha256sum', [card]).split(' ')[0]).toBe(out.sha256);
    expect(sh('sha256sum', [img.image]).split(' ')[0]).toBe(out.sha256);
    // Not an image of ours: refused before anything is written.
    const bad = spawnSync(process.execPath, [join(REPO, 'installer/kith.ts'), 'flash', '--image', extract(1), join(tmp, 'never.img')], { encoding: 'utf8' });
    expect(bad.status).toBe(65);
    expect(bad.stderr).toMatch(/not a kith SD-card image/);
    expect(existsSync(join(tmp, 'never.img'))).toBe(false);
    rmSync(card);
  });

  it('boots under qemu: every service answers, and a killed one restarts while the others keep answering', async () => {
    const at = `${img.image}@@${img.partitions[0]!.offsetBytes}`;
    sh('mcopy', ['-i', at, '::/vmlinuz', '::/initrd.cpio.zst', tmp], MTOOLS);
    const disk = join(tmp, 'sd.img');
    sh('cp', ['--sparse=always', img.image, disk]);
    // A card bigger than the image, as every real one is: the data partition grows to fill it.
    const GROW = 512 * 2 ** 20;
    truncateSync(disk, statSync(img.image).size + GROW);
    const [dnsPort, storageHealth, dnsHealth, debug, pairPort, storageTls, submission] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort(), await freeTcpPort(), await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
    const forwards: Forward[] = [
      { proto: 'udp', hostPort: dnsPort, guestPort: 53 }, { proto: 'tcp', hostPort: dnsPort, guestPort: 53 },
      { proto: 'tcp', hostPort: storageHealth, guestPort: 9101 }, { proto: 'tcp', hostPort: dnsHealth, guestPort: 9102 },
      { proto: 'tcp', hostPort: debug, guestPort: DEBUG_PORT },
      { proto: 'tcp', hostPort: pairPort, guestPort: APPLIANCE_PAIR_PORT }, { proto: 'tcp', hostPort: storageTls, guestPort: 8443 }, { proto: 'tcp', hostPort: submission, guestPort: 587 },
    ];
    const t0 = Date.now();
    // 512 MB: a Raspberry Pi Zero 2 W, the smallest board the image names (issue 16).
    vm = bootVirt({ kernel: join(tmp, 'vmlinuz'), initrd: join(tmp, 'initrd.cpio.zst'), disk, forwards, memoryMiB: 512 });
    let healthy = false;
    let answer: string | undefined;
    while (!(healthy && answer) && Date.now() - t0 < 480_000) {
      if (vm.child.exitCode !== null) throw new Error(`qemu exited:\n${vm.output()}`);
      healthy ||= (await http(`http://127.0.0.1:${storageHealth}/healthz`))?.status === 200;
      answer ??= await dig(dnsPort);
      if (!(healthy && answer)) await new Promise((r) => setTimeout(r, 500));
    }
    lines.push(`both services answer after ${Date.now() - t0} ms under TCG`);
    // The zone's A record for the appliance (its default config decides which address).
    expect(answer, vm.output()).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(healthy, vm.output()).toBe(true);
    expect(await dig(dnsPort, true)).toBe(answer);
    expect((await http(`http://127.0.0.1:${dnsHealth}/healthz`))?.status).toBe(200);

    const log = await vm.waitFor(/memory service=dns[\s\S]*memory service=storage|memory service=storage[\s\S]*memory service=dns/, 120_000);
    // The first stage mounted the root partition read-only and handed over /dev /proc /sys.
    expect(log).toMatch(/kith-stage1 t=[\d.]+s root mounted device=\/dev\/vda2 fstype=ext4 flags=ro,noatime/);
    expect(log).toMatch(/kith-init pid=1 .*mounted paths=\/tmp,\/run already=\/proc,\/sys,\/dev/);
    expect(log).toMatch(/kith-init pid=1 .*data partition grown device=\/dev\/vda3 fromMiB=256 toMiB=768/);
    expect(log).toMatch(/kith-init pid=1 .*data mounted device=\/dev\/vda3 mountpoint=\/data fstype=ext4 flags=dirsync/);
    expect(log).toMatch(/kith-init pid=1 .*data file system grown device=\/dev\/vda3 fromMiB=256 toMiB=768/);
    expect(log).toMatch(/kith-init pid=1 .*config seeded from=\/kith\/config to=\/data\/config files=\d+/);
    expect(log).toMatch(/kith-init pid=1 .*link provisioned service=dns to=storage/);
    expect(log).toMatch(/kith-init pid=1 .*boot done .*services=storage,dns/);
    expect(log).not.toMatch(/FATAL|uncaught|Kernel panic|module failed/);
    for (const m of log.matchAll(/kith-init pid=1 .*memory .*/g)) lines.push(m[0]);

    // Footprint on 512 MB (issue 16), after a DNS burst sized to the test's time (bench/memory
    // has the full load): no OOM kill, no swap, each service's private memory within its
    // peak budget, PID 1 within its own, and the whole appliance's use (MemTotal -
    // MemAvailable) within the issue's peak budget of 256 MiB. With Node on the read-only
    // root partition and the memory governor it is ~160–170 MiB 10 s after every service is
    // ready; from the initramfs it was ~290–300, ~100 MB of it RAM the kernel could never
    // drop (platform/rpi/README.md, footprint). The after-boot target, 200, is measured by
    // bench/memory/rpi.ts: here the services may still be starting when the burst ends.
    for (let k = 0; k < 20; k++) await Promise.all(Array.from({ length: 10 }, (_, j) => dig(dnsPort, j % 2 === 1)));
    const mem = JSON.parse((await http(`http://127.0.0.1:${debug}/memory`))!.body) as {
      memTotalKiB: number; memAvailableKiB: number; swapTotalKiB: number; oomKills: number;
      init: { rssAnonKiB: number; vmRssKiB: number }; services: Record<string, { pid: number; rssAnonKiB: number; vmRssKiB: number } | null>;
      meminfoKiB: Record<string, number>;
    };
    const mb = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
    lines.push(`memory on ${mb(mem.memTotalKiB)}: used (MemTotal - MemAvailable) ${mb(mem.memTotalKiB - mem.memAvailableKiB)}; PID 1 private ${mb(mem.init.rssAnonKiB)} (VmRSS ${mb(mem.init.vmRssKiB)}); ${Object.entries(mem.services).map(([n, m]) => `${n} private ${m ? mb(m.rssAnonKiB) : '-'} (VmRSS ${m ? mb(m.vmRssKiB) : '-'})`).join('; ')}; meminfo ${Object.entries(mem.meminfoKiB).map(([k, v]) => `${k} ${mb(v)}`).join(', ')}`);
    expect(mem.oomKills, vm.output().slice(-3000)).toBe(0);
    expect(mem.swapTotalKiB).toBe(0);
    expect(mem.memTotalKiB - mem.memAvailableKiB, 'MemTotal - MemAvailable').toBeLessThanOrEqual(256 * 1024);
    expect(mem.init.rssAnonKiB, 'PID 1 private memory').toBeLessThanOrEqual(24 * 1024);
    for (const [name, m] of Object.entries(mem.services)) {
      expect(m, `${name} is running`).not.toBeNull();
      expect(m!.rssAnonKiB, `${name} private memory`).toBeLessThanOrEqual(64 * 1024);
    }

    // Kill storage; query DNS all along, over UDP, until storage is healthy again.
    const before = JSON.parse((await http(`http://127.0.0.1:${debug}/services`))!.body) as Record<string, { pid: number }>;
    let querying = true;
    const answers: (string | undefined)[] = [];
    const loop = (async () => {
      while (querying) {
        answers.push(await dig(dnsPort));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const killed = await http(`http://127.0.0.1:${debug}/kill/storage`, 'POST');
    expect(killed?.status).toBe(202);
    const tk = Date.now();
    await vm.waitFor(/service exited service=storage code=- signal=SIGKILL/, 120_000);
    await vm.waitFor(/service started service=storage child=\d+ attempt=2/, 120_000);
    let back = false;
    while (!back && Date.now() - tk < 90_000) {
      back = (await http(`http://127.0.0.1:${storageHealth}/healthz`))?.status === 200 && /"service":"storage"/.test(vm.output().split(/attempt=2/)[1] ?? '');
      if (!back) await new Promise((r) => setTimeout(r, 300));
    }
    querying = false;
    await loop;
    lines.push(`storage restarted and healthy ${Date.now() - tk} ms after the kill; ${answers.length} DNS queries meanwhile, ${answers.filter((a) => a !== answer).length} unanswered`);
    expect(back, vm.output().slice(-4000)).toBe(true);
    expect(answers.length).toBeGreaterThan(3);
    expect(answers.every((a) => a === answer), JSON.stringify(answers)).toBe(true);
    const after = JSON.parse((await http(`http://127.0.0.1:${debug}/services`))!.body) as Record<string, { pid: number }>;
    expect(after.dns!.pid).toBe(before.dns!.pid);
    expect(after.storage!.pid).not.toBe(before.storage!.pid);
    expect(vm.output()).not.toMatch(/service exited service=dns/);

    // Pairing with PID 1's pki process by the code on the console: the device certificate
    // then opens storage's https listener by mutual TLS, and mail's submission port offers
    // STARTTLS with a certificate from the same appliance CA.
    const pairingLog = await vm.waitFor(/"msg":"pairing code","code":"[A-Z2-9]{4}-[A-Z2-9]{4}"/, 60_000);
    const code = [...pairingLog.matchAll(/"msg":"pairing code","code":"([A-Z2-9]{4}-[A-Z2-9]{4})"/g)].at(-1)![1]!;
    expect(pairingLog).toMatch(/kith-init pid=1 .*pki provisioned ms=\d+/);
    const paired = join(tmp, 'paired');
    // Never spawnSync while qemu runs: this process drains its console, and a full pipe stalls the guest.
    const pair = await run(process.execPath, [join(REPO, 'installer/kith.ts'), 'pair', '--json', '--host', '127.0.0.1', '--port', String(pairPort), '--code', code, '--device', 'tester', '--dir', paired, '--timeout', '120'], { timeout: 300_000 })
      .then((r) => ({ status: 0, ...r }), (e: { code?: number; stdout?: string; stderr?: string }) => ({ status: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    expect(pair.status, pair.stdout + pair.stderr + '\n' + vm.output().split('\n').filter((l) => /pki|clock|pair/.test(l)).join('\n')).toBe(0);
    const tls = { ca: readFileSync(join(paired, 'ca.crt'), 'utf8'), cert: readFileSync(join(paired, 'client.crt'), 'utf8'), key: readFileSync(join(paired, 'client.key'), 'utf8') };
    const refs = `https://127.0.0.1:${storageTls}/config.git/info/refs?service=git-upload-pack`;
    expect(await httpsStatus(refs, tls)).toBe(200);
    // Without a certificate the handshake is refused (the guest sees qemu's 10.0.2.2, a network peer: platform/peer-gate.ts).
    expect(await httpsStatus(refs, { ca: tls.ca })).toBe(0);
    const starttls = await openssl(['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${submission}`, '-CAfile', join(paired, 'ca.crt'), '-verify_return_error', '-brief']);
    expect(starttls).toMatch(/Verification: OK/);
    lines.push(`paired through the forwarded port; storage opened by mutual TLS; submission STARTTLS verified against the appliance CA`);

    // Each service has its own folder on the data partition.
    await vm.stop();
    vm = undefined;
    const p2 = join(tmp, 'p3-after.img');
    const p = img.partitions[2]!;
    // Partition 3, the data, now ends where the card does (1 MiB aligned), and its ext4 fills it.
    const grown = (JSON.parse(sh('sfdisk', ['--json', disk])) as { partitiontable: { partitions: { start: number; size: number }[] } }).partitiontable.partitions[2]!;
    expect(grown.start).toBe(p.startSector);
    expect(grown.size).toBe(p.sectors + GROW / 512);
    sh('dd', [`if=${disk}`, `of=${p2}`, 'bs=4M', `skip=${p.offsetBytes}`, `count=${grown.size * 512}`, 'iflag=skip_bytes,count_bytes', 'conv=sparse', 'status=none']);
    spawnSync('e2fsck', ['-fy', p2]); // replay the journal of a VM that was killed
    const fsck = spawnSync('e2fsck', ['-fn', p2], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
    const sb = sh('dumpe2fs', ['-h', p2]);
    expect(Number(/^Block count:\s+(\d+)/m.exec(sb)![1]) * Number(/^Block size:\s+(\d+)/m.exec(sb)![1])).toBe(grown.size * 512);
    const ls = sh('debugfs', ['-R', 'ls -p /', p2]);
    for (const d of ['config', 'storage', 'dns', 'pki']) expect(ls).toContain(`/${d}/`);
    expect(sh('debugfs', ['-R', 'ls -p /dns/links', p2])).toContain('/storage.json/');
  }, 900_000);
});
