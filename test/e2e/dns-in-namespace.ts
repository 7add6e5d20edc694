/**
 * The sealed DNS service run inside a network namespace of its own (unshare -rn), for e2e
 * tests that need what only a namespace gives: raw sockets, interfaces to add and change.
 * Everything stays on that namespace's own links.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../platform/helpers.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles, loadDefinitions } from '../../platform/services.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

export const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/**
 * Runs `setup` (shell, e.g. links and addresses), starts the DNS service with its default
 * config on 127.0.0.1:5300 (`$pid`, killed on exit), waits for it to be ready, then runs
 * `scenario`; all in one `unshare -rn bash`. Returns the shell's result and the service's log.
 */
export async function runDnsInNamespace(opts: { prefix: string; setup?: string; scenario: string; files?: Record<string, string>; timeoutMs?: number }): Promise<{ status: number | null; stdout: string; stderr: string; log: string; dir: string }> {
  const dir = tempDir(opts.prefix);
  const config = path.join(dir, 'config');
  const data = path.join(dir, 'data');
  mkdirSync(data);
  seedMissingFiles(config, defaultConfigFiles((await loadDefinitions(REPO)).filter((d) => d.name === 'dns')));
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(path.join(dir, name), text);
  const script = path.join(dir, 'scenario.sh');
  writeFileSync(script, `set -eu
ip link set lo up
${opts.setup ?? ''}
"${process.execPath}" "${path.join(REPO, 'dist/dns.mjs')}" --config "${config}" --data "${data}" --listen dns=127.0.0.1:5300 --listen health=127.0.0.1:0 > "${dir}/dns.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for i in $(seq 1 300); do grep -q '"msg":"ready"' "${dir}/dns.log" && break; sleep 0.1; done
${opts.scenario}
`);
  const r = spawnSync('unshare', ['-rn', 'bash', script], { encoding: 'utf8', timeout: opts.timeoutMs ?? 90_000 });
  let log = '';
  try { log = readFileSync(path.join(dir, 'dns.log'), 'utf8'); } catch { /* never started */ }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, log, dir };
}
