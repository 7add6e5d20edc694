/**
 * The repository bench/memory pushes and clones: `commits` commits, each changing a text
 * file and replacing one of five binary files with `binBytes` random bytes (base64, so git
 * can carry it as text; zlib gets it back to about `binBytes`, so the pack is ~commits ×
 * binBytes of incompressible data). Made with git fast-import, one commit at a time with
 * backpressure, so a 200 MB repository is never a single string in memory.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

/** Creates `dir`/src.git; returns its path. */
export async function makeRepo(dir: string, commits: number, binBytes: number): Promise<string> {
  const repo = path.join(dir, 'src.git');
  await new Promise<void>((resolve, reject) => {
    const c = spawn('git', ['init', '-q', '--bare', repo], { stdio: 'ignore' });
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`git init exited ${code}`))));
  });
  const c = spawn('git', ['--git-dir', repo, 'fast-import', '--quiet'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  c.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<void>((resolve, reject) => {
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}: ${err.slice(-2000)}`))));
  });
  for (let n = 1; n <= commits; n++) {
    const body = `${'line of text '.repeat(200)}${n}\n`.repeat(20);
    const bin = randomBytes(binBytes).toString('base64');
    const chunk = `commit refs/heads/main\nmark :${n}\ncommitter b <b@example.net> ${1_700_000_000 + n} +0000\ndata 8\ncommit ${n % 10}\n${n > 1 ? `from :${n - 1}\n` : ''}`
      + `M 644 inline f${n % 17}.txt\ndata ${Buffer.byteLength(body)}\n${body}\nM 644 inline b${n % 5}.bin\ndata ${bin.length}\n${bin}\n`;
    if (!c.stdin!.write(chunk)) await new Promise((r) => c.stdin!.once('drain', r));
  }
  c.stdin!.end();
  await exited;
  return repo;
}

/** Bytes of the repository's packs on disk. */
export function packBytes(repo: string): number {
  const dir = path.join(repo, 'objects/pack');
  return readdirSync(dir).reduce((a, f) => a + statSync(path.join(dir, f)).size, 0);
}
