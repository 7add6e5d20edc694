/**
 * Packs piling up, and consolidation (issue 11, item 8): N pushes into one repository of
 * the git handler (in process), each one pack; then a full clone with N packs, the
 * consolidation into one pack (services/storage/git/consolidate.ts), and the same clone
 * again. A benchmark, not a test: it prints the figures and exits 0.
 *
 *   node bench/storage/packs.ts [--pushes 100] [--runs 3]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createRepo } from '../../services/storage/git/repos.ts';
import { consolidate, packState } from '../../services/storage/git/consolidate.ts';
import { gitv, startServer } from '../../services/storage/test/helpers.ts';

const { values } = parseArgs({ options: { pushes: { type: 'string' }, runs: { type: 'string' } } });
const pushes = Number(values.pushes ?? 100);
const runs = Number(values.runs ?? 3);
const server = await startServer();
const gitdir = await createRepo(server.root, 'b');
const work = path.join(server.tmp, 'work');
await gitv(2, server.tmp, ['init', '-q', work]);
const body = Array.from({ length: 3000 }, (_, i) => `line ${i}`).join('\n');
for (let i = 0; i < pushes; i++) {
  writeFileSync(path.join(work, `f${i % 20}.txt`), `${body}\n${i}\n`);
  await gitv(2, work, ['add', '.']);
  await gitv(2, work, ['commit', '-qm', `c${i}`]);
  await gitv(2, work, ['push', '-q', `${server.base}/b.git`, 'main']);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
async function cloneMs(): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const dest = path.join(server.tmp, `clone-${r}`);
    const t0 = performance.now();
    await gitv(2, server.tmp, ['clone', '-q', '--bare', `${server.base}/b.git`, dest]);
    times.push(performance.now() - t0);
    await rm(dest, { recursive: true, force: true });
  }
  return median(times);
}
const before = await packState(gitdir);
const cloneBefore = await cloneMs();
const r = await consolidate(gitdir, { minPacks: 2 });
const after = await packState(gitdir);
const cloneAfter = await cloneMs();
execFileSync('git', ['--git-dir', gitdir, 'fsck', '--full', '--strict'], { stdio: 'pipe' });
console.log(`${pushes} pushes: ${before.packs} packs, ${before.loose} loose objects`);
console.log(`clone (median of ${runs}) with ${before.packs} packs: ${cloneBefore.toFixed(0)} ms`);
console.log(`consolidation: ${r?.objects} objects, ${r?.bytes} bytes, ${r?.ms.toFixed(0)} ms -> ${after.packs} pack`);
console.log(`clone (median of ${runs}) with ${after.packs} pack: ${cloneAfter.toFixed(0)} ms (${(cloneBefore / cloneAfter).toFixed(2)}x)`);
await server.close();
