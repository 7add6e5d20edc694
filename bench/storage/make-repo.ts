/**
 * The benchmark's test repository: a deterministic history made with the real git client
 * (git-fast-import(1), so 2,000 commits take seconds, not minutes). Text files change a
 * little in every commit — lines replaced, inserted, deleted — and binary blobs (random,
 * incompressible bytes) are added or replaced now and then, as in a real project.
 *
 * `refs/heads/main` holds `commits` commits; `refs/heads/next` adds 10 more on top, for the
 * incremental fetch. The result is cached by its parameters under build/bench/storage/.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { prng } from '../../test/support/prng.ts';

export interface RepoSpec {
  commits: number;
  /** Total bytes of every blob version in the history (text and binary), in MiB. */
  sizeMb: number;
  /** Commits on refs/heads/next beyond main. */
  extra: number;
}

export interface BenchRepo {
  gitdir: string;
  main: string;
  next: string;
  /** Sum of the sizes of all blob versions written. */
  contentBytes: number;
  /** Size of the repository's packs on disk. */
  packBytes: number;
}

// Bump when the generator changes, so a stale cached repository is not reused.
const GENERATOR_VERSION = 1;
const TEXT_SHARE = 0.6;
const TEXT_FILES = 150;
const BINARY_EVERY = 50;


const WORDS = ('the of and to in is that for it as with was on be at by this had not are but from or have an they which one ' +
  'you were all we her she there would their will when who him been has more if no out so said what up its about into than them ' +
  'can only other new some could time these two may then do first any my now such like our over man me even most made after also ' +
  'return const let function if else while for await async import export interface type string number boolean null undefined ' +
  'config storage push fetch commit tree blob ref pack index object server client request response buffer stream error value').split(' ');

interface TextFile { path: string; lines: string[] }

/** Writes a fast-import stream for the spec to `write`; returns the content bytes it holds. */
export function generateHistory(spec: RepoSpec, write: (chunk: Buffer | string) => void): number {
  const rnd = prng(0x6b697468 + spec.commits * 31 + spec.sizeMb);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const total = spec.sizeMb * 1024 * 1024;
  const textBudget = total * TEXT_SHARE;
  const binaryCount = Math.max(1, Math.floor((spec.commits + spec.extra) / BINARY_EVERY));
  const binaryAvg = (total - textBudget) / binaryCount;
  // About 2.5 text files change per commit: size them so the text adds up to its budget.
  const avgTextBytes = Math.max(200, textBudget / ((spec.commits + spec.extra) * 2.5 + TEXT_FILES));
  const line = () => {
    const n = int(3, 14);
    const w: string[] = [];
    for (let i = 0; i < n; i++) w.push(WORDS[int(0, WORDS.length - 1)]!);
    return ' '.repeat(int(0, 3) * 2) + w.join(' ');
  };
  const files: TextFile[] = [];
  for (let i = 0; i < TEXT_FILES; i++) {
    const lines: string[] = [];
    const target = avgTextBytes * (0.3 + rnd() * 1.4);
    for (let size = 0; size < target;) { const l = line(); lines.push(l); size += l.length + 1; }
    files.push({ path: `src/${['core', 'net', 'ui', 'docs', 'tests'][i % 5]}/file-${i}.${['ts', 'md', 'txt'][i % 3]}`, lines });
  }
  let content = 0;
  const blob = (mode: string, filePath: string, data: Buffer) => {
    write(`M ${mode} inline ${filePath}\ndata ${data.length}\n`);
    write(data);
    write('\n');
    content += data.length;
  };
  const text = (f: TextFile) => Buffer.from(f.lines.join('\n') + '\n');
  const random = (n: number) => {
    const b = Buffer.allocUnsafe(n & ~3);
    for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((rnd() * 4294967296) >>> 0, i);
    return b;
  };
  let mark = 0;
  let when = 1_700_000_000;
  const commit = (ref: string, n: number, first: boolean) => {
    mark++;
    when += int(60, 7200);
    const msg = `change ${n}: ${line().trim()}\n`;
    write(`commit ${ref}\nmark :${mark}\ncommitter Bench <bench@home.arpa> ${when} +0000\ndata ${Buffer.byteLength(msg)}\n${msg}`);
    if (first) {
      for (const f of files) blob('100644', f.path, text(f));
      return;
    }
    for (let k = int(1, 4); k > 0; k--) {
      const f = files[int(0, files.length - 1)]!;
      for (let e = int(1, 4); e > 0; e--) {
        const at = int(0, Math.max(0, f.lines.length - 1));
        const op = rnd();
        if (op < 0.5) f.lines[at] = line();
        else if (op < 0.8 || f.lines.length < 5) f.lines.splice(at, 0, line(), line());
        else f.lines.splice(at, 2);
      }
      blob('100644', f.path, text(f));
    }
    if (n % BINARY_EVERY === 0) {
      const slot = int(0, Math.max(0, Math.floor(binaryCount / 3)));
      blob('100644', `assets/image-${slot}.bin`, random(Math.floor(binaryAvg * (0.5 + rnd()))));
    }
  };
  for (let n = 1; n <= spec.commits; n++) commit('refs/heads/main', n, n === 1);
  write(`reset refs/heads/next\nfrom :${mark}\n\n`);
  for (let n = 1; n <= spec.extra; n++) commit('refs/heads/next', spec.commits + n, false);
  write('done\n');
  return content;
}

function run(cmd: string, args: string[], opts: { cwd?: string; input?: (stdin: NodeJS.WritableStream) => Promise<void> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.stderr!.on('data', (d) => { err += d; });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err}`))));
    if (opts.input) opts.input(child.stdin!).catch(reject);
  });
}

async function packBytes(gitdir: string): Promise<number> {
  const dir = path.join(gitdir, 'objects', 'pack');
  let n = 0;
  for (const f of await fsp.readdir(dir)) n += (await fsp.stat(path.join(dir, f))).size;
  return n;
}

/** The cached repository for `spec`, generated on first use. */
export async function benchRepo(cacheDir: string, spec: RepoSpec, progress: (msg: string) => void): Promise<BenchRepo> {
  const gitdir = path.join(cacheDir, `repo-c${spec.commits}-s${spec.sizeMb}-x${spec.extra}-v${GENERATOR_VERSION}.git`);
  const doneFile = path.join(gitdir, 'kith-bench.json');
  if (!existsSync(doneFile)) {
    progress(`generating ${spec.commits} commits / ${spec.sizeMb} MiB with git fast-import in ${gitdir}`);
    const t0 = Date.now();
    await fsp.rm(gitdir, { recursive: true, force: true });
    await fsp.mkdir(cacheDir, { recursive: true });
    await run('git', ['init', '-q', '--bare', '-b', 'main', gitdir]);
    let contentBytes = 0;
    await run('git', ['fast-import', '--quiet', '--done'], {
      cwd: gitdir,
      input: async (stdin) => {
        // Generation is synchronous: collect the stream, then write it with backpressure.
        const chunks: (Buffer | string)[] = [];
        contentBytes = generateHistory(spec, (c) => { chunks.push(c); });
        for (const c of chunks) if (!stdin.write(c)) await new Promise((r) => stdin.once('drain', r));
        stdin.end();
      },
    });
    // A repository as a server would hold it: one pack, with deltas.
    await run('git', ['repack', '-adq'], { cwd: gitdir });
    const main = (await run('git', ['rev-parse', 'refs/heads/main'], { cwd: gitdir })).trim();
    const next = (await run('git', ['rev-parse', 'refs/heads/next'], { cwd: gitdir })).trim();
    await fsp.writeFile(doneFile, JSON.stringify({ main, next, contentBytes }) + '\n');
    progress(`generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const meta = JSON.parse(await fsp.readFile(doneFile, 'utf8')) as { main: string; next: string; contentBytes: number };
  return { gitdir, ...meta, packBytes: await packBytes(gitdir) };
}
