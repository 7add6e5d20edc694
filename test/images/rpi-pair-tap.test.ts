/**
 * End to end (issue 14's last item): the rpi image under qemu on a tap device, not qemu's
 * user-mode network (which carries no multicast), in a network namespace of the test's own.
 * The namespace owns the tap device and 10.77.0.1/24 on it, dnsmasq hands the guest an
 * address by DHCP as a home router would, and chronyd on 10.77.0.1 gives it the time the CA
 * waits for. Once the console shows a pairing code, `kith pair` — run in that namespace with
 * no --host — finds the appliance by mDNS (`_kith._tcp`) and pairs with it; what it found
 * (the leased address, the CA's fingerprint in TXT) matches what it was sent.
 * Needs: what rpi-image.test.ts needs, and root (unshare -n), unshare, nsenter, ip, dnsmasq, /dev/net/tun.
 */
import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRpiImage, type BuiltRpiImage } from '../../platform/rpi/cli.ts';
import { virtArgs } from '../../platform/rpi/qemu.ts';
import { startQemuProcess, type QemuProcess } from '../../platform/image/qemu-process.ts';
import { APPLIANCE_PAIR_PORT } from '../../platform/pki/appliance-launch.ts';
import { writeChronyConf } from '../support/chrony.ts';
import { stopByPidFile } from '../support/pid-file.ts';

const REPO = resolve(import.meta.dirname, '../..');
const OUT = join(REPO, 'build/rpi/pair-tap-image');
const run = promisify(execFile);
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['qemu-system-aarch64', 'aarch64-linux-gnu-strip', 'sfdisk', 'mkfs.vfat', 'mcopy', 'mke2fs', 'chronyd', 'dnsmasq', 'unshare', 'nsenter', 'ip', 'apt-get', 'dpkg'];
const missing = tools.filter((t) => !have(t));
const root = process.getuid?.() === 0;
const MTOOLS = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
/** The namespace's own link: nothing here is routed anywhere else. */
const HOST_ADDRESS = '10.77.0.1';
const LEASES = ['10.77.0.50', '10.77.0.99'];
const CODE = /"msg":"pairing code","code":"([A-Z2-9]{4}-[A-Z2-9]{4})"/g;

function sh(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

describe.skipIf(missing.length > 0 || !root || !existsSync('/dev/net/tun'))(`rpi image paired over mDNS on a tap link (root; ${tools.join(', ')})`, () => {
  let img: BuiltRpiImage;
  let tmp: string;
  let vm: QemuProcess | undefined;
  const report: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-pair-tap-'));
    if (!existsSync(join(REPO, 'dist/storage.mjs'))) sh(process.execPath, [join(REPO, 'installer/kith.ts'), 'build']);
    const t0 = Date.now();
    // DHCP, as on a home network (dnsmasq below); the clock from chronyd on the namespace's end of the link.
    img = await buildRpiImage({ out: OUT, debugPort: 9197, clock: { servers: [HOST_ADDRESS] }, say: () => {} });
    report.push(`image build ${Date.now() - t0} ms`);
  }, 900_000);

  afterAll(async () => {
    await vm?.stop();
    // chronyd and dnsmasq outlive qemu in the namespace: end them (our own processes, by their pid files).
    // Both write their state as they stop: wait for them before removing the folder.
    if (tmp) for (const f of ['chronyd.pid', 'dnsmasq.pid']) await stopByPidFile(join(tmp, f));
    if (tmp) rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    process.stdout.write(report.join('\n') + '\n');
  });

  it('announces itself over mDNS, and kith pair without --host finds it and pairs', async () => {
    const at = `${img.image}@@${img.partitions[0]!.offsetBytes}`;
    sh('mcopy', ['-i', at, '::/vmlinuz', `::/${img.initrd}`, tmp], MTOOLS);
    const disk = join(tmp, 'sd.img');
    sh('cp', ['--sparse=always', img.image, disk]);
    writeChronyConf(tmp, HOST_ADDRESS, '10.77.0.0/24');
    const qemu = ['qemu-system-aarch64', ...virtArgs({ kernel: join(tmp, 'vmlinuz'), initrd: join(tmp, img.initrd), disk, forwards: [], memoryMiB: 512, tap: 'tap0' })];
    const script = [
      'set -e',
      'ip link set lo up',
      'ip tuntap add tap0 mode tap',
      `ip addr add ${HOST_ADDRESS}/24 dev tap0`,
      'ip link set tap0 up',
      // -x: serve the time, never set a clock.
      `chronyd -x -d -U -u root -L 0 -f ${tmp}/chrony.conf > ${tmp}/chronyd.log 2>&1 &`,
      // DHCP only (port 0: no DNS). It forks into the background once it listens, so a failure stops the script here.
      `dnsmasq --conf-file=/dev/null --port=0 --user=root --group=root --interface=tap0 --bind-interfaces --dhcp-authoritative --dhcp-range=${LEASES[0]},${LEASES[1]},255.255.255.0,1h --dhcp-leasefile=${tmp}/leases --pid-file=${tmp}/dnsmasq.pid --log-dhcp --log-facility=${tmp}/dnsmasq.log`,
      `exec ${qemu.map(quote).join(' ')}`,
    ].join('\n');
    const t0 = Date.now();
    // A network namespace only (-n): the test runs as root already, and dnsmasq cannot drop
    // to root's groups inside a user namespace (-r), where setgroups is denied.
    vm = startQemuProcess('unshare', ['-n', 'sh', '-c', script]);
    const pid = vm.child.pid!;
    const console_ = () => `${vm!.output().slice(-4000)}\n--- dnsmasq:\n${existsSync(join(tmp, 'dnsmasq.log')) ? readFileSync(join(tmp, 'dnsmasq.log'), 'utf8').slice(-2000) : ''}`;

    const log = await vm.waitFor(/"msg":"pairing code","code":"[A-Z2-9]{4}-[A-Z2-9]{4}"[\s\S]*mdns announced|mdns announced[\s\S]*"msg":"pairing code","code":"[A-Z2-9]{4}-[A-Z2-9]{4}"/, 300_000).catch((e: Error) => { throw new Error(`${e.message.split('\n')[0]}\n${console_()}`); });
    report.push(`pairing code and mDNS announcement on the console ${Date.now() - t0} ms into boot`);
    const lease = /kith-init pid=1 .*dhcp lease .*?(10\.77\.0\.\d+)/.exec(log)?.[1];
    expect(lease, console_()).toBeDefined();
    // Stepped when far off, or only marked synchronised when the offset is small (PID 1 set the clock at boot already).
    expect(log).toMatch(new RegExp(`kith-init pid=1 .*clock (stepped|synchronised) server=${HOST_ADDRESS.replace(/\./g, '\\.')} `));
    const code = [...log.matchAll(CODE)].at(-1)![1]!;

    // In the namespace (nsenter into qemu's), by multicast: no --host, no --port.
    const dir = join(tmp, 'paired');
    // Never spawnSync while qemu runs: this process drains its console, and a full pipe stalls the guest.
    const pair = await run('nsenter', ['-t', String(pid), '-n', '--', process.execPath, join(REPO, 'installer/kith.ts'), 'pair', '--json', '--code', code, '--device', 'tester', '--dir', dir, '--wait', '3', '--timeout', '120'], { timeout: 300_000 })
      .then((r) => ({ status: 0, ...r }), (e: { code?: number; stdout?: string; stderr?: string }) => ({ status: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    expect(pair.status, `${pair.stdout}${pair.stderr}\n${vm.output().split('\n').filter((l) => /pki|clock|pair|mdns|dhcp/.test(l)).join('\n')}`).toBe(0);
    const out = JSON.parse(pair.stdout) as { ok: boolean; host: string; port: number; caSha256: string; files: { ca: string }; found: { instance: string; addresses: string[]; port: number; txt: Record<string, string> }[] };
    report.push(`kith pair found ${out.found.map((f) => `${f.instance} ${f.addresses.join(' ')}:${f.port}`).join(', ')} and paired ${Date.now() - t0} ms into boot`);
    expect(out.ok).toBe(true);
    expect(out.found).toHaveLength(1);
    expect(out.found[0]!.port).toBe(APPLIANCE_PAIR_PORT);
    expect(out.found[0]!.addresses).toContain(lease);
    expect(out.host).toBe(lease);
    // The announcement carries the CA's fingerprint (PID 1 adds it once the pki process made
    // the CA), and it is the CA that was sent (kith pair refuses otherwise).
    report.push(`TXT: ${JSON.stringify(out.found[0]!.txt)}`);
    expect(out.found[0]!.txt.ca).toBe(out.caSha256);
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
    expect(ca.ca).toBe(true);
    expect(new X509Certificate(readFileSync(join(dir, 'client.crt'))).checkIssued(ca)).toBe(true);
  }, 600_000);
});
