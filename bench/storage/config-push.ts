/**
 * How much memory storage needs to validate the largest legitimate config push (issue 16):
 * the sealed storage bundle, started with a chosen V8 heap limit, takes a config.git push
 * of DNS zones holding `--records` records (dns/dns.yaml limits.zoneRecords raised to fit,
 * zones split at --per-zone), validated by the registry (platform/config/registry.ts) as
 * every config push is. Prints peak RssAnon (sampled every 20 ms) and whether the push was
 * taken. Sizes storage's `--max-old-space-size` (services/storage/main.ts, docs/decisions.md).
 * A benchmark, not a test.
 *
 *   node bench/storage/config-push.ts [--records N] [--per-zone N] [--heap-mb N] [--runs N]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleRegistry, bundleService } from '../../platform/build/bundle.ts';
import { startBundle, tempDir, writeConfig } from '../../test/platform/helpers.ts';
import { sampleRssAnon } from '../../test/platform/rss-anon.ts';

const { values: o } = parseArgs({ options: {
  records: { type: 'string', default: '10000' },
  'per-zone': { type: 'string', default: '200000' },
  'heap-mb': { type: 'string' },
  runs: { type: 'string', default: '1' },
} });
const RECORDS = Number(o.records);
const PER_ZONE = Number(o['per-zone']);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const progress = (m: string) => process.stderr.write(`[bench/config-push] ${m}\n`);

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { cwd, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A zone of n records, a mix of A, AAAA and TXT (as the dns limits were measured). */
function zoneText(origin: string, n: number): string {
  const lines = [`$ORIGIN ${origin}.`, '$TTL 3600', `@ IN SOA ns1 hostmaster 1 7200 3600 1209600 3600`, '@ IN NS ns1', 'ns1 IN A 192.0.2.1'];
  for (let i = 0; lines.length - 2 < n; i++) {
    const k = i % 3;
    lines.push(k === 0 ? `h${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : k === 1 ? `h${i} IN AAAA fd00::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}` : `h${i} IN TXT "record number ${i} of the benchmark zone"`);
  }
  return lines.join('\n') + '\n';
}

const out = tempDir('kith-cfgpush-bundle-');
progress('building the storage and registry bundles');
const { outfile } = await bundleService('storage', path.join(repoRoot, 'services/storage/main.ts'), out);
await bundleRegistry(repoRoot, out);
const mb = (n: number) => (n / 2 ** 20).toFixed(1);

for (let run = 0; run < Number(o.runs); run++) {
  const config = tempDir('kith-cfgpush-config-');
  const data = tempDir('kith-cfgpush-data-');
  const work = tempDir('kith-cfgpush-work-');
  await writeConfig(config, 'storage/storage.yaml', 'createOnPush: false\n');
  const prefix = o['heap-mb'] ? ['env', `NODE_OPTIONS=--max-old-space-size=${o['heap-mb']}`] : [];
  const svc = await startBundle(outfile, ['--config', config, '--data', data, '--listen', 'http=127.0.0.1:0', '--listen', 'health=127.0.0.1:0', '--listen', 'https=127.0.0.1:0'], 60_000, prefix);
  try {
    const pid = svc.child.pid!;
    const token = readFileSync(path.join(data, 'access-token'), 'utf8').trim();
    const remote = svc.ready.endpoints.git!.replace('://', `://kith:${token}@`).replace(/\/[^/]*\.git$/, '') + '/config.git';
    const clone = path.join(work, 'config');
    git(work, 'clone', '-q', remote, clone);
    const zones = Math.ceil(RECORDS / PER_ZONE);
    mkdirSync(path.join(clone, 'dns/zones'), { recursive: true });
    for (let z = 0; z < zones; z++) writeFileSync(path.join(clone, `dns/zones/bench${z}.example.zone`), zoneText(`bench${z}.example`, Math.min(PER_ZONE, RECORDS - z * PER_ZONE) - 3));
    const yamlFile = path.join(clone, 'dns/dns.yaml');
    let yaml = '';
    try { yaml = readFileSync(yamlFile, 'utf8'); } catch { /* none yet */ }
    writeFileSync(yamlFile, yaml.replace(/^limits:.*(\n[ ]+.*)*/m, '') + `\nlimits:\n  zoneRecords: ${Math.max(RECORDS + 1000, 10_000)}\n`);
    git(clone, 'add', '-A');
    git(clone, 'commit', '-qm', `${RECORDS} records`);
    const idle = Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    const sampler = sampleRssAnon({ storage: (p) => p === pid }, 20);
    const t0 = performance.now();
    // Asynchronously: the sampler runs on this event loop.
    const push = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const c = spawn('git', ['push', '-q', 'origin', 'main'], { cwd: clone, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      c.on('close', (status) => resolve({ status, stderr }));
    });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    sampler.stop();
    const alive = svc.child.exitCode === null && svc.child.signalCode === null;
    // Whether config.git's head is the pushed commit (a storage that dies must not have moved it).
    const head = spawnSync('git', ['--git-dir', path.join(data, 'repos/config.git'), 'rev-parse', 'refs/heads/main'], { encoding: 'utf8' }).stdout.trim();
    const moved = head === git(clone, 'rev-parse', 'HEAD').trim();
    const verdict = push.status === 0 ? 'taken' : `refused (${push.stderr.trim().split('\n').slice(-2).join(' | ').slice(0, 300)})`;
    process.stdout.write(`records ${RECORDS} in ${zones} zone(s), heap limit ${o['heap-mb'] ? o['heap-mb'] + ' MB' : "storage's own"}: push ${verdict} in ${secs} s; storage RssAnon idle ${mb(idle)} MiB, peak ${mb(sampler.peaks().storage ?? 0)} MiB; storage ${alive ? 'alive' : 'DEAD'}; config.git head ${moved ? 'is the pushed commit' : 'not moved'}\n`);
  } finally {
    if (svc.child.exitCode === null && svc.child.signalCode === null) await svc.stop();
    for (const t of [config, data, work]) rmSync(t, { recursive: true, force: true });
  }
}
rmSync(out, { recursive: true, force: true });
