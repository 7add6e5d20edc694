/**
 * The store's HTTP API driven by the real `curl` (Debian: curl), and the result checked by
 * the real `git` (Debian: git): clone over the file system, log, fsck --strict.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, mkdirSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createStoreHttpHandler, type StoreHttpHandler } from './http.ts';
import { openStore } from './store.ts';

let tmp: string;
let root: string;
let server: http.Server;
let handler: StoreHttpHandler;
let base: string;

interface CurlResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Run curl (asynchronously: the server lives in this process). `-i` output is split up. */
function curl(args: string[], timeoutMs = 20_000): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', '--path-as-is', ...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout) => {
      if (err && !stdout) return reject(err);
      // A 100 Continue may come first: take the last header block.
      let rest = stdout;
      let head = '';
      for (;;) {
        const i = rest.indexOf('\r\n\r\n');
        if (i === -1) break;
        head = rest.slice(0, i);
        rest = rest.slice(i + 4);
        if (!/^HTTP\/\S+ 1\d\d/.test(head)) break;
      }
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: rest });
    });
  });
}

const json = (r: CurlResult) => JSON.parse(r.body);
const put = (p: string, data: string, extra: string[] = []) => curl(['-X', 'PUT', '--data-binary', data, '-H', 'content-type: application/octet-stream', ...extra, `${base}/store/${p}`]);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'kith-store-http-'));
  root = path.join(tmp, 'repos');
  mkdirSync(root);
  await openStore({ dir: path.join(root, 'notes.git'), create: true });
  await openStore({ dir: path.join(root, 'config.git'), create: true });
  handler = createStoreHttpHandler({ root, maxBody: 64 * 1024, store: { pollMs: 200 } });
  server = http.createServer(async (req, res) => {
    if (!(await handler(req, res))) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  handler.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

describe('store over HTTP with curl', () => {
  const commits: string[] = [];

  it('PUT creates (201) and replaces (200); GET returns the content with the commit as ETag', async () => {
    const r1 = await put('notes/todo/today.txt', 'buy milk', ['-H', 'X-Kith-Message: add%20today']);
    expect(r1.status).toBe(201);
    const c1 = json(r1).commit;
    expect(c1).toMatch(/^[0-9a-f]{40}$/);
    expect(r1.headers.etag).toBe(`"${c1}"`);
    commits.push(c1);

    const g = await curl([`${base}/store/notes/todo/today.txt`]);
    expect(g.status).toBe(200);
    expect(g.body).toBe('buy milk');
    expect(g.headers.etag).toBe(`"${c1}"`);
    expect(g.headers['x-kith-commit']).toBe(c1);
    expect(g.headers['x-kith-blob']).toBe(json(r1).blob);

    const r2 = await put('notes/todo/today.txt', 'buy milk and bread', ['-H', `If-Match: "${c1}"`, '-H', 'X-Kith-Message: more%20shopping']);
    expect(r2.status).toBe(200);
    commits.push(json(r2).commit);

    const old = await curl([`${base}/store/notes/todo/today.txt?at=${c1}`]);
    expect([old.status, old.body, old.headers.etag]).toEqual([200, 'buy milk', `"${c1}"`]);
    const nm = await curl(['-H', `If-None-Match: "${json(r2).commit}"`, `${base}/store/notes/todo/today.txt`]);
    expect(nm.status).toBe(304);
    const missing = await curl([`${base}/store/notes/todo/nope.txt`]);
    expect(missing.status).toBe(404);
    expect(json(missing).error).toBe('not-found');
    const folder = await curl([`${base}/store/notes/todo`]);
    expect(folder.status).toBe(404);
    expect(json(folder).message).toMatch(/is a folder.*\?list/);
  });

  it('If-Match with a stale commit is 412 with expected and actual; If-None-Match: * refuses to overwrite', async () => {
    const stale = commits[0]!;
    const r = await put('notes/todo/today.txt', 'lost update', ['-H', `If-Match: "${stale}"`]);
    expect(r.status).toBe(412);
    expect(json(r)).toMatchObject({ error: 'conflict', expected: stale, actual: commits[1] });
    const g = await curl([`${base}/store/notes/todo/today.txt`]);
    expect(g.body).toBe('buy milk and bread');
    const again = await put('notes/todo/today.txt', 'x', ['-H', 'If-None-Match: *']);
    expect(again.status).toBe(412);
    const fresh = await put('notes/todo/tomorrow.txt', 'call mum', ['-H', 'If-None-Match: *', '-H', 'X-Kith-Message: plan%20tomorrow']);
    expect(fresh.status).toBe(201);
    commits.push(json(fresh).commit);
  });

  it('lists folders and shows history', async () => {
    const l = await curl([`${base}/store/notes/todo/?list`]);
    expect(l.status).toBe(200);
    expect(json(l).entries.map((e: { path: string }) => e.path)).toEqual(['todo/today.txt', 'todo/tomorrow.txt']);
    expect(json(l).commit).toBe(commits[2]);
    const all = await curl([`${base}/store/notes?list`]);
    expect(json(all).entries).toHaveLength(2);

    const h = await curl([`${base}/store/notes/todo/today.txt?history&limit=5`]);
    expect(h.status).toBe(200);
    expect(json(h).entries.map((e: { message: string }) => e.message)).toEqual(['more shopping', 'add today']);
    const hr = await curl([`${base}/store/notes?history&limit=2`]);
    expect(json(hr).entries.map((e: { commit: string }) => e.commit)).toEqual([commits[2], commits[1]]);
    expect(json(hr).entries[0].changes).toEqual([{ path: 'todo/tomorrow.txt', type: 'add', blob: expect.any(String) }]);
  });

  it('DELETE removes a file (CAS too), then 404', async () => {
    const stale = await curl(['-X', 'DELETE', '-H', `If-Match: "${commits[0]}"`, `${base}/store/notes/todo/tomorrow.txt`]);
    expect(stale.status).toBe(412);
    const d = await curl(['-X', 'DELETE', '-H', `If-Match: "${commits[2]}"`, '-H', 'X-Kith-Message: done%20tomorrow', `${base}/store/notes/todo/tomorrow.txt`]);
    expect(d.status).toBe(200);
    commits.push(json(d).commit);
    expect((await curl([`${base}/store/notes/todo/tomorrow.txt`])).status).toBe(404);
    const again = await curl(['-X', 'DELETE', `${base}/store/notes/todo/tomorrow.txt`]);
    expect(again.status).toBe(404);
  });

  it('watch: long-poll returns the next commit, 204 on timeout; SSE streams commits', async () => {
    const head = commits[commits.length - 1]!;
    const quiet = await curl([`${base}/store/notes?watch&since=${head}&timeout=1`]);
    expect(quiet.status).toBe(204);
    const behind = await curl([`${base}/store/notes?watch&since=${commits[1]}`]);
    expect(behind.status).toBe(200);
    expect(json(behind).commits.map((e: { commit: string }) => e.commit)).toEqual(commits.slice(2));

    const poll = curl([`${base}/store/notes?watch&since=${head}&timeout=20`]);
    // The stream replays from `since`, so it gets the commit whenever it connects; it ends only
    // at --max-time, which leaves a loaded machine room for both curls (the test waits it out).
    const sse = curl(['-N', '-H', 'Accept: text/event-stream', '--max-time', '6', `${base}/store/notes?watch&since=${head}`]);
    await new Promise((r) => setTimeout(r, 300));
    const w = await put('notes/watched.txt', 'hello', ['-H', 'X-Kith-Message: watched']);
    const c = json(w).commit;
    commits.push(c);
    const p = await poll;
    expect(p.status).toBe(200);
    expect(json(p)).toMatchObject({ head: c, complete: true });
    expect(json(p).commits.map((e: { commit: string; message: string }) => [e.commit, e.message])).toEqual([[c, 'watched']]);
    const s = await sse; // ends at --max-time
    expect(s.headers['content-type']).toMatch(/text\/event-stream/);
    expect(s.body).toContain(`id: ${c}\nevent: commit\ndata: `);
    const data = JSON.parse(/data: (.*)\n/.exec(s.body)![1]!);
    expect(data).toMatchObject({ commit: c, message: 'watched', changes: [{ path: 'watched.txt', type: 'add' }] });
  });

  it('answers hostile and bad requests with 4xx JSON that says what to do', async () => {
    const cases: Array<[string[], number, string]> = [
      [[`${base}/store/notes/a/../b`], 400, 'bad-path'],
      [[`${base}/store/notes/a/%2e%2e/b`], 400, 'bad-path'],
      [[`${base}/store/notes/.git/config`], 400, 'bad-path'],
      [[`${base}/store/notes/.GIT/config`], 400, 'bad-path'],
      [[`${base}/store/notes/a%2Fb`], 400, 'bad-path'],
      [[`${base}/store/notes/a%00b`], 400, 'bad-path'],
      [[`${base}/store/notes/a//b`], 400, 'bad-path'],
      [[`${base}/store/notes/%E0%A4%A`], 400, 'bad-path'],
      [[`${base}/store/../etc/passwd`], 400, 'bad-repo'],
      [[`${base}/store/%2e%2e/x`], 400, 'bad-repo'],
      [[`${base}/store/nosuch/file`], 404, 'no-such-repo'],
      [[`${base}/store/notes?history&limit=abc`], 400, 'bad-limit'],
      [[`${base}/store/notes?watch&since=zzz`], 400, 'bad-since'],
      [[`${base}/store/notes/todo/today.txt?at=HEAD`], 400, 'bad-at'],
      [[`${base}/store/notes/todo/today.txt?at=${'0'.repeat(40)}`], 404, 'not-found'],
      [['-X', 'POST', '-d', 'x', `${base}/store/notes/a`], 405, 'method-not-allowed'],
      [['-X', 'PUT', '-d', 'x', '-H', 'If-Match: nonsense', `${base}/store/notes/a`], 400, 'bad-precondition'],
      [['-X', 'PUT', '-d', 'x', '-H', 'If-Match: "1234"', `${base}/store/notes/a`], 400, 'bad-precondition'],
      [['-X', 'PUT', '-d', 'x', `${base}/store/notes/dir/`], 400, 'bad-path'],
      [['-X', 'PUT', '-d', 'x', `${base}/store/notes/todo`], 409, 'path-conflict'],
      [['-X', 'PUT', '-d', 'x', `${base}/store/notes/todo/today.txt/child`], 409, 'path-conflict'],
      [['-X', 'PUT', '-d', 'x', `${base}/store/config/dns/zones/evil`], 403, 'read-only'],
      [['-X', 'PUT', '-d', 'x', '-H', 'X-Kith-Message: %zz', `${base}/store/notes/a`], 400, 'bad-message'],
    ];
    for (const [args, status, code] of cases) {
      const r = await curl(args);
      expect([r.status, json(r).error], args.join(' ')).toEqual([status, code]);
      expect(json(r).message.length, args.join(' ')).toBeGreaterThan(10);
    }
    // Over maxBody: refused by Content-Length, and when streamed without one.
    const big = 'x'.repeat(70 * 1024);
    const r1 = await curl(['-X', 'PUT', '--data-binary', big, `${base}/store/notes/big`]);
    expect(r1.status).toBe(413);
    expect(json(r1).message).toMatch(/maxBody = 65536/);
    const r2 = await curl(['-X', 'PUT', '-H', 'Transfer-Encoding: chunked', '--data-binary', big, `${base}/store/notes/big`]);
    expect(r2.status).toBe(413);
    // The server is still fine.
    expect((await curl([`${base}/store/notes/todo/today.txt`])).status).toBe(200);
  });

  it('asks authorize (401 when refused), authors commits as it says; close() ends long-polls', async () => {
    const h2 = createStoreHttpHandler({
      root,
      authorize: (req, access) => {
        if (req.headers.authorization !== 'Bearer sesame') return false;
        expect(access).toMatchObject({ repo: 'notes', path: 'auth/x', write: true });
        return { author: { name: 'Calendar', email: 'calendar@kith.local' } };
      },
    });
    const s2 = http.createServer((req, res) => void h2(req, res));
    await new Promise<void>((r) => s2.listen(0, '127.0.0.1', r));
    const b2 = `http://127.0.0.1:${(s2.address() as { port: number }).port}`;
    try {
      const no = await curl(['-X', 'PUT', '-d', 'x', `${b2}/store/notes/auth/x`]);
      expect(no.status).toBe(401);
      expect(no.headers['www-authenticate']).toMatch(/^Basic realm=/);
      expect(json(no).error).toBe('unauthorized');
      const yes = await curl(['-X', 'PUT', '-d', 'x', '-H', 'Authorization: Bearer sesame', `${b2}/store/notes/auth/x`]);
      expect(yes.status).toBe(201);
      commits.push(json(yes).commit);
      const store = await openStore({ dir: path.join(root, 'notes.git'), pollMs: 0 });
      const [last] = await store.history(undefined, { limit: 1 });
      expect(last).toMatchObject({ commit: json(yes).commit, author: { name: 'Calendar', email: 'calendar@kith.local' }, message: 'write auth/x' });

      const h3 = createStoreHttpHandler({ root });
      const s3 = http.createServer((req, res) => void h3(req, res));
      await new Promise<void>((r) => s3.listen(0, '127.0.0.1', r));
      const poll = curl([`http://127.0.0.1:${(s3.address() as { port: number }).port}/store/notes?watch&timeout=20`]);
      // close() ends the long-polls open at that moment: said again until the poll has its
      // answer, so a curl slow to arrive on a loaded machine is caught by a later one.
      let answered = false;
      poll.then(() => { answered = true; }, () => { answered = true; });
      while (!answered) { h3.close(); await new Promise((r) => setTimeout(r, 50)); }
      const p = await poll;
      expect([p.status, json(p).error]).toEqual([503, 'shutting-down']);
      s3.closeAllConnections();
      s3.close();
    } finally {
      s2.closeAllConnections();
      s2.close();
    }
  });

  it('real git clones the repository: one commit per write, with the messages; fsck --strict is clean', () => {
    const gitdir = path.join(root, 'notes.git');
    const fsck = execFileSync('git', ['-C', gitdir, 'fsck', '--full', '--strict'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(fsck).not.toMatch(/error|missing|broken/i);
    const clone = path.join(tmp, 'clone');
    execFileSync('git', ['clone', '-q', gitdir, clone]);
    const log = execFileSync('git', ['-C', clone, 'log', '--format=%H %s'], { encoding: 'utf8' }).trim().split('\n');
    expect(log).toEqual([...commits].reverse().map((c, i) => `${c} ${['write auth/x', 'watched', 'done tomorrow', 'plan tomorrow', 'more shopping', 'add today'][i]}`));
    expect(readFileSync(path.join(clone, 'todo/today.txt'), 'utf8')).toBe('buy milk and bread');
    expect(readFileSync(path.join(clone, 'watched.txt'), 'utf8')).toBe('hello');
  });
});
