/**
 * The rpi image's footprint on 512 MB (issue 16): boots a built rpi test image (one with
 * PID 1's debug port) under `qemu-system-aarch64 -M virt -m 512` with its SD image as the
 * disk, and prints, from qemu start, when storage's health and DNS first answer through the
 * forwarded ports, then — 10 s after every service has logged `ready` — the machine's
 * `MemTotal − MemAvailable` and each process's RssAnon / VmRSS from PID 1's `GET /memory`.
 *
 * `--against DIR` boots another built image (e.g. one from before the read-only root)
 * alternately with the first, so both are measured under the same machine load: under TCG
 * on a shared machine the same image boots in 60 s or 230 s depending on the load, and only
 * a same-run comparison says anything. A benchmark, not a test: exit 0 whatever the
 * figures; non-zero only when something could not run.
 *
 * `--load` then runs the full-size load against each booted image (bench/memory/rpi-load.ts:
 * pairing, a DNS burst, a --push-mb git push and its clone, a mail burst, a CalDAV sync)
 * and prints the peak of MemTotal − MemAvailable and of each process's RssAnon through it,
 * sampled every ~1 s, with PASS/FAIL against the issue's 256 MiB and 64 MiB per service.
 * It serves time to the guest from chronyd on this machine's loopback (the CA waits for a
 * synchronised clock) and gives the card room for the push.
 *
 *   node bench/memory/rpi.ts --image DIR [--against DIR] [--runs N] [--load [--push-mb N]] [--json]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { bootVirt } from '../../platform/rpi/qemu.ts';
import { freeTcpPort } from '../../test/support/ports.ts';
import { writeChronyConf } from '../../test/support/chrony.ts';
import { APPLIANCE_PAIR_PORT } from '../../platform/pki/appliance-launch.ts';
import type { Forward } from '../../platform/kvm/qemu.ts';
import { loadRun, type LoadResult } from './rpi-load.ts';

const HELP = `Usage: node bench/memory/rpi.ts --image DIR [--against DIR] [--runs N] [--load [--push-mb N]] [--json]

DIR is a built rpi image folder (image.json, kith-rpi.img) whose boot.json has a debug
port on 9199, as test/images/rpi-image.test.ts builds into build/rpi/test-image.
Boots each under qemu virt with 512 MB, N times (default 1), alternating, and prints time
to services answering and MemTotal - MemAvailable 10 s after every service is ready.

--load         then, on the same boot, the full load run: pair by the console's code, a
               DNS burst (dnsperf), a git push of N MB of incompressible data and its
               clone, a mail burst over submission relayed to a sink on this machine, a
               CalDAV sync; prints each phase's time and the peaks (PID 1's GET /memory
               every ~1 s) against <= 256 MiB used and <= 64 MiB RssAnon per service.
               Needs dnsperf, git, swaks, chronyd, python3-aiosmtpd.
--push-mb N    incompressible data in the pushed repository, MB (default 32)
--dns-seconds N  the DNS burst's length (default 20)
--mails N      messages in the mail burst (default 40)
--events N     CalDAV events PUT before the REPORTs (default 24)
`;

const { values } = parseArgs({ options: { image: { type: 'string' }, against: { type: 'string' }, runs: { type: 'string', default: '1' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
  load: { type: 'boolean', default: false }, 'push-mb': { type: 'string', default: '32' }, 'dns-seconds': { type: 'string', default: '20' }, mails: { type: 'string', default: '40' }, events: { type: 'string', default: '24' } } });
if (values.help || !values.image) {
  process.stdout.write(HELP);
  process.exit(values.help ? 0 : 64);
}
const run = promisify(execFile);
const DEBUG_PORT = 9199;
const say = (l: string) => process.stderr.write(l + '\n');
/** What a Ctrl-C or SIGTERM must stop first: qemu and chronyd outlive this process otherwise. */
const onInterrupt = new Set<() => Promise<void>>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void Promise.allSettled([...onInterrupt].map((f) => f())).then(() => process.exit(130)); });
}
const mibOf = (k: number) => Math.round((k / 1024) * 10) / 10;

interface Boot {
  image: string;
  /** Guest uptime (s) when the first stage mounted the root, if it has one, and when PID 1 said `boot done`. */
  rootMountedS?: number;
  bootDoneS?: number;
  answeredMs: number;
  readyMs: number;
  usedMiB: number;
  totalMiB: number;
  oomKills: number;
  initAnonMiB: number;
  /** /proc/meminfo fields PID 1 reports (newer images only), MiB. */
  meminfo?: Record<string, number>;
  services: Record<string, { anonMiB: number; rssMiB: number }>;
  load?: LoadResult;
}

async function get(url: string, timeoutMs = 3000): Promise<string | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}

async function dig(port: number): Promise<boolean> {
  try {
    const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), 'kith.home.arpa', 'A', '+short', '+tries=1', '+time=2']);
    return stdout.trim() !== '';
  } catch {
    return false;
  }
}

async function boot(dir: string): Promise<Boot> {
  const meta = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as { image: string; services: string[]; partitions: { offsetBytes: number }[] };
  const tmp = mkdtempSync(join(tmpdir(), 'kith-rpi-mem-'));
  try {
    const at = `${join(dir, meta.image)}@@${meta.partitions[0]!.offsetBytes}`;
    await run('mcopy', ['-i', at, '::/vmlinuz', '::/initrd.cpio.zst', tmp], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    const disk = join(tmp, 'sd.img');
    cpSync(join(dir, meta.image), disk);
    // The load's push lands on the data partition, which PID 1 grows to fill the card: a card
    // with room for the pushed repository (and the git objects storage writes beside it) twice over.
    if (values.load) truncateSync(disk, statSync(disk).size + (2 * Number(values['push-mb']) + 512) * 2 ** 20);
    const [dnsPort, health, debug] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
    const ports = values.load ? { pair: await freeTcpPort(), storageTls: await freeTcpPort(), submission: await freeTcpPort(), caldavTls: await freeTcpPort() } : undefined;
    const forwards: Forward[] = [{ proto: 'udp', hostPort: dnsPort, guestPort: 53 }, { proto: 'tcp', hostPort: health, guestPort: 9101 }, { proto: 'tcp', hostPort: debug, guestPort: DEBUG_PORT }];
    if (ports) forwards.push({ proto: 'tcp', hostPort: ports.pair, guestPort: APPLIANCE_PAIR_PORT }, { proto: 'tcp', hostPort: ports.storageTls, guestPort: 8443 }, { proto: 'tcp', hostPort: ports.submission, guestPort: 587 }, { proto: 'tcp', hostPort: ports.caldavTls, guestPort: 8843 });
    const t0 = Date.now();
    const vm = bootVirt({ kernel: join(tmp, 'vmlinuz'), initrd: join(tmp, 'initrd.cpio.zst'), disk, memoryMiB: 512, forwards });
    const stopVm = async () => { await vm.stop(); rmSync(tmp, { recursive: true, force: true }); };
    onInterrupt.add(stopVm);
    try {
      let healthy = false;
      let answered = false;
      while (!(healthy && answered)) {
        if (Date.now() - t0 > 400_000) throw new Error(`no answer after 400 s:\n${vm.output().slice(-3000)}`);
        if (vm.child.exitCode !== null) throw new Error(`qemu exited:\n${vm.output().slice(-3000)}`);
        healthy ||= (await get(`http://127.0.0.1:${health}/healthz`)) !== undefined;
        answered ||= await dig(dnsPort);
        if (!(healthy && answered)) await new Promise((r) => setTimeout(r, 500));
      }
      const answeredMs = Date.now() - t0;
      const ready = new RegExp(meta.services.map((s) => `(?=[\\s\\S]*memory service=${s} .*when=ready\\+2s)`).join(''));
      await vm.waitFor(ready, 300_000);
      const readyMs = Date.now() - t0;
      await new Promise((r) => setTimeout(r, 10_000));
      // Under TCG on a loaded host the guest can take seconds to answer: a few tries, 15 s each.
      let memText: string | undefined;
      for (let t = 0; t < 4 && memText === undefined; t++) memText = await get(`http://127.0.0.1:${debug}/memory`, 15_000);
      if (memText === undefined) throw new Error(`PID 1's GET /memory did not answer:\n${vm.output().slice(-3000)}`);
      const mem = JSON.parse(memText) as {
        memTotalKiB: number; memAvailableKiB: number; oomKills: number; init: { rssAnonKiB: number }; meminfoKiB?: Record<string, number>;
        services: Record<string, { rssAnonKiB: number; vmRssKiB: number } | null>;
      };
      if (ports) say(`  after boot: used ${mibOf(mem.memTotalKiB - mem.memAvailableKiB)} MiB; the load starts`);
      const load = ports ? await loadRun({
        vm, ports: { dns: dnsPort, debug, ...ports }, work: tmp, pushMB: Number(values['push-mb']), dnsSeconds: Number(values['dns-seconds']),
        mails: Number(values.mails), events: Number(values.events), say,
      }) : undefined;
      const rootMounted = /kith-stage1 t=([\d.]+)s root mounted/.exec(vm.output());
      const bootDone = /kith-init pid=1 .*boot done .*uptimeS=([\d.]+)/.exec(vm.output());
      return {
        image: dir, ...(rootMounted ? { rootMountedS: Number(rootMounted[1]) } : {}), ...(bootDone ? { bootDoneS: Number(bootDone[1]) } : {}), answeredMs, readyMs, usedMiB: mibOf(mem.memTotalKiB - mem.memAvailableKiB), totalMiB: mibOf(mem.memTotalKiB), oomKills: mem.oomKills, initAnonMiB: mibOf(mem.init.rssAnonKiB),
        ...(mem.meminfoKiB ? { meminfo: Object.fromEntries(Object.entries(mem.meminfoKiB).map(([k, v]) => [k, mibOf(v)])) } : {}),
        services: Object.fromEntries(Object.entries(mem.services).map(([n, m]) => [n, { anonMiB: m ? mibOf(m.rssAnonKiB) : NaN, rssMiB: m ? mibOf(m.vmRssKiB) : NaN }])),
        ...(load ? { load } : {}),
      };
    } finally {
      onInterrupt.delete(stopVm);
      await vm.stop();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** chronyd serving this machine's clock on loopback, never setting it (-x): the guest's 10.0.2.2. */
async function startChrony(): Promise<{ stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kith-rpi-chrony-'));
  mkdirSync(dir, { recursive: true });
  writeChronyConf(dir, '127.0.0.1', '127.0.0.1');
  const c: ChildProcess = spawn('chronyd', ['-x', '-d', '-U', '-u', 'root', '-L', '0', '-f', join(dir, 'chrony.conf')], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  if (c.exitCode !== null) throw new Error(`chronyd exited ${c.exitCode}: is another NTP server on 127.0.0.1:123? (the guest needs one there for its clock)`);
  return {
    async stop() {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
function loadReport(l: LoadResult): string {
  const lines = [`  load (${l.samples} samples of GET /memory, ${l.missed} unanswered within 15 s):`];
  for (const p of l.phases) lines.push(`    ${p.name.padEnd(10)} ${(p.ms / 1000).toFixed(1).padStart(6)} s  peak used ${mibOf(p.peakUsedKiB)} MiB, RssAnon ${Object.entries(p.services).map(([n, k]) => `${n} ${mibOf(k)}`).join(' ')}  (${p.detail})`);
  lines.push(`    peak MemTotal - MemAvailable ${mibOf(l.peak.usedKiB)} MiB of ${mibOf(l.totalKiB)} (target <= 256: ${verdict(l.peak.usedKiB <= 256 * 1024)})`);
  lines.push(`    peak RssAnon: PID 1 ${mibOf(l.peak.initAnonKiB)} MiB; ${Object.entries(l.peak.services).map(([n, k]) => `${n} ${mibOf(k)} (${verdict(k <= 64 * 1024)})`).join(', ')} (target <= 64 MiB each)`);
  lines.push(`    OOM kills ${l.oomKills} (${verdict(l.oomKills === 0)}), swap ${mibOf(l.swapTotalKiB)} MiB (${verdict(l.swapTotalKiB === 0)}); clone head ${l.pushed.cloneHead === l.pushed.head ? 'matches the push' : 'DIFFERS'}`);
  return lines.join('\n') + '\n';
}

const chrony = values.load ? await startChrony() : undefined;
if (chrony) onInterrupt.add(() => chrony.stop());
const images = [resolve(values.image), ...(values.against ? [resolve(values.against)] : [])];
const results: Boot[] = [];
try {
  for (let k = 0; k < Number(values.runs); k++) {
    for (const dir of images) {
      say(`boot ${k + 1}: ${dir}`);
      const b = await boot(dir);
      results.push(b);
      say(`  ${b.rootMountedS !== undefined ? `root mounted at ${b.rootMountedS} s uptime, ` : ''}boot done at ${b.bootDoneS ?? '?'} s uptime, answered ${(b.answeredMs / 1000).toFixed(1)} s, all ready ${(b.readyMs / 1000).toFixed(1)} s, used ${b.usedMiB} of ${b.totalMiB} MiB, PID 1 private ${b.initAnonMiB} MiB, ${Object.entries(b.services).map(([n, s]) => `${n} ${s.anonMiB}/${s.rssMiB}`).join(', ')} (RssAnon/VmRSS MiB), OOM kills ${b.oomKills}${b.meminfo ? `; meminfo MiB ${Object.entries(b.meminfo).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`);
      if (b.load) say(loadReport(b.load).trimEnd());
    }
  }
} finally {
  await chrony?.stop();
}
if (values.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
else for (const b of results) {
  process.stdout.write(`${b.image}: used ${b.usedMiB} MiB of ${b.totalMiB} (target <= 200 after boot: ${b.usedMiB <= 200 ? 'PASS' : 'FAIL'}); services answering ${(b.answeredMs / 1000).toFixed(1)} s, all ready ${(b.readyMs / 1000).toFixed(1)} s after qemu start\n`);
  if (b.load) process.stdout.write(loadReport(b.load));
}
