// Test harness for real-client suites: a plain node:http server running the git
// handler over a temp root, and an async runner for the real `git` binary (async so
// the in-process server keeps serving while the client runs).
import http from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createGitHttpHandler, type GitHttpOptions } from '../git/http.ts';

export interface TestServer {
  root: string;
  base: string; // http://127.0.0.1:PORT
  tmp: string;
  errors: unknown[];
  close(): Promise<void>;
}

export async function startServer(opts: Omit<GitHttpOptions, 'root'> = {}): Promise<TestServer> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'kith-git-'));
  const root = path.join(tmp, 'repos');
  const errors: unknown[] = [];
  const handler = createGitHttpHandler({ root, onError: (e) => errors.push(e), ...opts });
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    root,
    tmp,
    errors,
    base: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        maxBuffer: 64 * 1024 * 1024,
        timeout: 60_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: opts.cwd ?? tmpdir(),
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_TERMINAL_PROMPT: '0',
          GIT_AUTHOR_NAME: 'Test',
          GIT_AUTHOR_EMAIL: 'test@example.invalid',
          GIT_COMMITTER_NAME: 'Test',
          GIT_COMMITTER_EMAIL: 'test@example.invalid',
          LC_ALL: 'C',
          ...opts.env,
        },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** git with a protocol version pinned; throws with stderr on failure unless `allowFail`. */
export async function gitv(version: 0 | 2, cwd: string, args: string[], allowFail = false): Promise<RunResult> {
  const r = await run('git', ['-c', `protocol.version=${version}`, '-c', 'init.defaultBranch=main', ...args], { cwd });
  if (r.code !== 0 && !allowFail) throw new Error(`git ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r;
}

/** Write storage's default config files into a config folder (what `kith up` seeds). */
export async function seedStorageConfig(configRoot: string): Promise<void> {
  const { default: storage } = await import('../main.ts');
  const { mkdir, writeFile } = await import('node:fs/promises');
  for (const [file, text] of Object.entries(storage.config.defaults)) {
    await mkdir(path.dirname(path.join(configRoot, file)), { recursive: true });
    await writeFile(path.join(configRoot, file), text);
  }
}

/**
 * The storage service started in this process by the platform runner, on loopback ports
 * of its own, logging into `logs` (or nowhere); `remote` is config.git's URL with the owner's token.
 */
export async function startStorageService(o: { configRoot: string; dataDir: string; logs?: string[] }) {
  const { default: storage } = await import('../main.ts');
  const { startService } = await import('../../../platform/runner.ts');
  const { createLogger } = await import('../../../platform/log.ts');
  const { readFile } = await import('node:fs/promises');
  const handle = await startService(storage, {
    configRoot: o.configRoot,
    dataDir: o.dataDir,
    log: createLogger({ service: 'storage', write: (l) => void o.logs?.push(l) }),
    listen: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, health: { host: '127.0.0.1', port: 0 } },
  });
  const token = (await readFile(path.join(o.dataDir, 'access-token'), 'utf8')).trim();
  return { handle, token, remote: handle.endpoints.git!.replace('://', `://kith:${token}@`), url: handle.endpoints.store!.replace(/\/store\/$/, '') };
}
