/**
 * Boot benchmark (issue 5): the kvm DNS image — Debian's kernel, Node 26 as PID 1, the
 * sealed DNS service with its default config — booted under qemu, measured from outside:
 *
 * - compressed image size: the zstd initramfs plus the compressed kernel (Debian's
 *   bzImage, which the image ships decompressed as vmlinux so qemu can boot it PVH);
 * - boot to first answer: from runVm until `dig` through
 *   the forwarded port gets the zone's answer (dig +tries=1 +time=1, a new probe every 250 ms, up to 4 in flight);
 *   runVm boots the kernel as vmlinux and the initramfs expanded on the host, made once per
 *   image (as kith vm run does on its first boot) before the first run is timed;
 * - RSS of the DNS service: PID 1 logs each child's VmRSS from /proc/<pid>/status two
 *   seconds after the service says it is ready; read from the console.
 *
 * Targets: ≤ 40 MB compressed, ≤ 10 s boot-to-answer under TCG, ≤ 96 MB RSS. A benchmark,
 * not a test: exit 0 whatever the figures; non-zero only when something could not run.
 *
 *   node bench/boot/run.ts [--runs N] [--accel tcg|kvm|auto] [--json] [--help]
 */
import { execFile, spawnSync } from 'node:child_process';
import { promises as fsp, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { bundleService } from '../../platform/build/bundle.ts';
import { bootInitrd, buildKvmImage, runVm } from '../../platform/kvm/cli.ts';
import { DEFAULT_LANGUAGES, parseLanguages } from '../../platform/image/plan.ts';
import type { ServiceDefinition } from '../../platform/service.ts';
import { freeTcpPort } from '../../test/support/ports.ts';
import { median } from '../stats.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WORK = path.join(REPO, 'build/bench/boot');
const run = promisify(execFile);

const HELP = `Usage: node bench/boot/run.ts [options]

Builds the kvm DNS image (default DNS config), boots it under qemu and prints the
compressed image size, qemu-start-to-first-DNS-answer time and the DNS service's RSS,
each against its target (<= 40 MB, <= 10 s under TCG, <= 96 MB), PASS or FAIL.

Options:
  --runs N          boots to measure; times and RSS are medians (default 3)
  --accel A         tcg, kvm or auto (default tcg)
  --cpus N          virtual CPUs (default 1, as runVm)
  --languages LIST  ICU locale data kept in Node, as for kith image build (default en; all)
  --against DIR     also boot the kvm image in DIR (e.g. built by this bench in an older
                    checkout: build/bench/boot/kvm-dns), alternating with this one, and
                    print the same-run ratio: load on the machine moves TCG boots by 2-5x
  --json            print the results as one JSON object
  -h, --help        this help

Needs qemu-system-x86, bind9-dnsutils (dig), binutils (strip), xz-utils, and apt access to
Debian's kernel package. Progress goes to stderr, results to stdout.
`;

const TARGETS = { compressedMB: 40, bootToAnswerS: 10, dnsRssMB: 96 };


async function digOnce(port: number, name: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), name, 'A', '+short', '+tries=1', '+time=1']);
    const a = stdout.trim();
    return /^\d+\.\d+\.\d+\.\d+$/m.test(a) ? a : undefined;
  } catch {
    return undefined;
  }
}

interface Boot { bootToAnswerMs: number; answer: string; dnsRssKiB: number; initRssKiB: number; dnsAnonKiB?: number; initAnonKiB?: number; phases: Record<string, number> }

/** Console milestones, timed on the host as their lines arrive: where the boot time goes. */
const MILESTONES: [string, RegExp][] = [
  ['init', /kith-init pid=1 t=[\d.]+s booting/],
  ['service started', /kith-init pid=1 .*service started service=dns/],
  ['service ready', /"service":"dns","msg":"ready"/],
];

async function bootOnce(dir: string, accel: 'tcg' | 'kvm' | 'auto', cpus: number, log: (s: string) => void): Promise<Boot> {
  const port = await freeTcpPort();
  const t0 = performance.now();
  const vm = await runVm({ image: dir, accel, cpus, memoryMiB: 1024, forwards: [{ proto: 'udp', hostPort: port, guestPort: 53 }, { proto: 'tcp', hostPort: port, guestPort: 53 }] });
  const phases: Record<string, number> = {};
  for (const [name, re] of MILESTONES) vm.waitFor(re, 120_000).then(() => { phases[name] = performance.now() - t0; }, () => {});
  try {
    let answer: string | undefined;
    let at = 0;
    const inflight = new Set<Promise<void>>();
    while (!answer && performance.now() - t0 < 120_000) {
      if (vm.child.exitCode !== null) throw new Error(`qemu exited:\n${vm.output().slice(-3000)}`);
      if (inflight.size < 4) {
        const p: Promise<void> = digOnce(port, 'kith.home.arpa').then((a) => {
          if (a && !answer) { answer = a; at = performance.now(); }
          inflight.delete(p);
        });
        inflight.add(p);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await Promise.all(inflight);
    if (!answer) throw new Error(`no DNS answer within 120 s:\n${vm.output().slice(-3000)}`);
    const out = await vm.waitFor(/memory service=dns .*when=ready\+2s childRssKiB=\S+ initRssKiB=\S+.*\r?\n/, 30_000);
    // Images before issue 16 log VmRSS only; later ones RssAnon (private) too.
    const m = /memory service=dns .*when=ready\+2s childRssKiB=(\d+) initRssKiB=(\d+)(?: childAnonKiB=(\d+) initAnonKiB=(\d+))?/.exec(out);
    if (!m) throw new Error(`no memory line for dns:\n${out.slice(-2000)}`);
    const r = { bootToAnswerMs: at - t0, answer, dnsRssKiB: Number(m[1]), initRssKiB: Number(m[2]), ...(m[3] ? { dnsAnonKiB: Number(m[3]), initAnonKiB: Number(m[4]) } : {}), phases };
    log(`  boot under ${vm.accel}: ${Object.entries(phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(', ')}; answer ${answer} after ${(r.bootToAnswerMs / 1000).toFixed(2)} s; dns RSS ${(r.dnsRssKiB * 1.024 / 1000).toFixed(1)} MB, init RSS ${(r.initRssKiB * 1.024 / 1000).toFixed(1)} MB${r.initAnonKiB !== undefined ? ` (private: dns ${(r.dnsAnonKiB! * 1.024 / 1000).toFixed(1)} MB, init ${(r.initAnonKiB * 1.024 / 1000).toFixed(1)} MB)` : ''}`);
    return r;
  } finally {
    await vm.stop();
  }
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { runs: { type: 'string' }, against: { type: 'string' }, cpus: { type: 'string' }, accel: { type: 'string' }, languages: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`bench/boot: ${(err as Error).message}\n${HELP}`);
    return 64;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const runs = Number(values.runs ?? 3);
  const accel = (values.accel ?? 'tcg') as 'tcg' | 'kvm' | 'auto';
  const cpus = Number(values.cpus ?? 1);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(cpus) || cpus < 1 || cpus > 8 || !['tcg', 'kvm', 'auto'].includes(accel)) {
    process.stderr.write(`bench/boot: --runs takes a whole number ≥ 1, --cpus 1..8, --accel tcg, kvm or auto\n`);
    return 64;
  }
  const missing = ['qemu-system-x86_64', 'dig', 'strip', 'xz'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) {
    process.stderr.write(`bench/boot: missing ${missing.join(', ')}\n`);
    return 1;
  }
  const log = (s: string) => process.stderr.write(s + '\n');
  const languages = parseLanguages(values.languages ?? DEFAULT_LANGUAGES.join(','));
  if ('error' in languages) {
    process.stderr.write(`bench/boot: --languages: ${languages.error}\n`);
    return 64;
  }

  // The DNS bundle, fresh, and its default config tree.
  const bundle = await bundleService('dns', path.join(REPO, 'services/dns/main.ts'), path.join(WORK, 'dist'));
  const def = ((await import(path.join(REPO, 'services/dns/main.ts'))) as { default: ServiceDefinition<unknown> }).default;
  const configDir = path.join(WORK, 'config');
  await fsp.rm(configDir, { recursive: true, force: true });
  for (const [rel, text] of Object.entries(def.config.defaults)) {
    await fsp.mkdir(path.dirname(path.join(configDir, rel)), { recursive: true });
    await fsp.writeFile(path.join(configDir, rel), text);
  }
  log(`dns bundle ${(bundle.bytes / 1024).toFixed(0)} KiB; default config: ${Object.keys(def.config.defaults).join(', ')}`);

  const t = Date.now();
  // DNS alone, as these figures have always measured it (a `kith image build` of dns brings storage too).
  const img = await buildKvmImage({ service: 'dns', serviceBundle: bundle.outfile, configDir, out: path.join(WORK, 'kvm-dns'), languages, snapshot: true, alone: true, say: (l) => { if (/MB|\(\d/.test(l)) log(l); } });
  log(`image built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const kernelPackage = (JSON.parse(await fsp.readFile(path.join(img.dir, 'image.json'), 'utf8')) as { kernelPackage: string }).kernelPackage;
  const bzImage = path.join(REPO, 'build/cache', kernelPackage, 'tree/boot', `vmlinuz-${kernelPackage.replace(/^linux-image-/, '')}`);
  const initrdBytes = statSync(img.initrd).size;
  const bzBytes = statSync(bzImage).size;
  const vmlinuxBytes = statSync(img.kernel).size;

  // runVm boots a decompressed copy of the initramfs, made on the host once per image
  // (kith vm run does the same on its first boot): made here, before the clock starts.
  const expandStarted = Date.now();
  const bootInitrdBytes = statSync(bootInitrd(img.initrd)).size;
  log(`initramfs expanded on the host for booting in ${((Date.now() - expandStarted) / 1000).toFixed(1)} s (once per image, not timed)`);
  const boots: Boot[] = [];
  const against: Boot[] = [];
  const other = values.against ? path.resolve(values.against) : undefined;
  if (other) bootInitrd(path.join(other, 'initramfs.cpio.zst'));
  for (let k = 0; k < runs; k++) {
    log(`run ${k + 1}/${runs}`);
    boots.push(await bootOnce(img.dir, accel, cpus, log));
    if (other) {
      log(`run ${k + 1}/${runs} of ${other}`);
      against.push(await bootOnce(other, accel, cpus, log));
    }
  }
  const compressedMB = (initrdBytes + bzBytes) / 1e6;
  const bootS = median(boots.map((b) => b.bootToAnswerMs)) / 1000;
  const rssMB = (median(boots.map((b) => b.dnsRssKiB)) * 1024) / 1e6;
  const initRssMB = (median(boots.map((b) => b.initRssKiB)) * 1024) / 1e6;
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  const results = {
    accel, runs, cpus,
    sizes: { initramfsZstdMB: initrdBytes / 1e6, kernelBzImageMB: bzBytes / 1e6, vmlinuxAsBootedMB: vmlinuxBytes / 1e6, initramfsAsBootedMB: bootInitrdBytes / 1e6, compressedMB },
    bootToAnswerS: { median: bootS, all: boots.map((b) => b.bootToAnswerMs / 1000) },
    /** Median host time from qemu start at which each console milestone appeared. */
    phasesS: Object.fromEntries(MILESTONES.map(([k]) => [k, median(boots.map((b) => b.phases[k] ?? NaN)) / 1000])),
    dnsRssMB: { median: rssMB, all: boots.map((b) => (b.dnsRssKiB * 1024) / 1e6) },
    initRssMB: initRssMB,
    ...(boots.every((b) => b.initAnonKiB !== undefined) ? { privateMB: { init: (median(boots.map((b) => b.initAnonKiB!)) * 1024) / 1e6, dns: (median(boots.map((b) => b.dnsAnonKiB!)) * 1024) / 1e6 } } : {}),
    ...(other ? { against: { image: other, bootToAnswerS: { median: median(against.map((b) => b.bootToAnswerMs)) / 1000, all: against.map((b) => b.bootToAnswerMs / 1000) }, phasesS: Object.fromEntries(MILESTONES.map(([k]) => [k, median(against.map((b) => b.phases[k] ?? NaN)) / 1000])), initRssMB: (median(against.map((b) => b.initRssKiB)) * 1024) / 1e6, ratio: bootS / (median(against.map((b) => b.bootToAnswerMs)) / 1000) } } : {}),
    targets: TARGETS,
    verdicts: { compressed: verdict(compressedMB <= TARGETS.compressedMB), bootToAnswer: verdict(bootS <= TARGETS.bootToAnswerS), dnsRss: verdict(rssMB <= TARGETS.dnsRssMB) },
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(results) + '\n');
    return 0;
  }
  const row = (name: string, value: string, target: string, v: string) => process.stdout.write(`${name.padEnd(34)} ${value.padStart(12)}   target ${target.padEnd(8)} ${v}\n`);
  process.stdout.write(`kith boot benchmark: kvm DNS image (ICU: ${languages.includes("all") ? "full" : `root + ${languages.join(", ")}`}) under qemu (${accel}, ${cpus} vCPU), ${runs} run(s), medians\n`);
  row('compressed image (initramfs+kernel)', `${compressedMB.toFixed(1)} MB`, `≤ ${TARGETS.compressedMB} MB`, results.verdicts.compressed);
  process.stdout.write(`  initramfs zstd ${(initrdBytes / 1e6).toFixed(1)} MB + kernel bzImage ${(bzBytes / 1e6).toFixed(1)} MB (both expanded on the host for booting: vmlinux ${(vmlinuxBytes / 1e6).toFixed(1)} MB, initramfs.cpio ${(bootInitrdBytes / 1e6).toFixed(1)} MB)\n`);
  row('boot to first DNS answer', `${bootS.toFixed(2)} s`, `≤ ${TARGETS.bootToAnswerS} s`, results.verdicts.bootToAnswer);
  process.stdout.write(`  all runs: ${results.bootToAnswerS.all.map((s) => s.toFixed(2)).join(', ')} s; medians from qemu start: ${Object.entries(results.phasesS).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}\n`);
  row('DNS service RSS (ready + 2 s)', `${rssMB.toFixed(1)} MB`, `≤ ${TARGETS.dnsRssMB} MB`, results.verdicts.dnsRss);
  process.stdout.write(`  all runs: ${results.dnsRssMB.all.map((s) => s.toFixed(1)).join(', ')} MB; PID 1 (init) RSS ${initRssMB.toFixed(1)} MB (1 MB = 10^6 bytes)\n`);
  if (results.privateMB) process.stdout.write(`  private (RssAnon) at ready + 2 s: PID 1 ${results.privateMB.init.toFixed(1)} MB, dns ${results.privateMB.dns.toFixed(1)} MB\n`);
  if (results.against) {
    const a = results.against;
    process.stdout.write(`against ${a.image}: boot to first answer ${a.bootToAnswerS.median.toFixed(2)} s (${a.bootToAnswerS.all.map((s) => s.toFixed(2)).join(', ')}); ${Object.entries(a.phasesS).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}; PID 1 RSS ${a.initRssMB.toFixed(1)} MB\n`);
    process.stdout.write(`same-run ratio this/against: ${a.ratio.toFixed(2)}x\n`);
  }
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err: Error) => {
  process.stderr.write(`bench/boot: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
