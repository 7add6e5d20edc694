// Hostile and malformed requests against the git smart-HTTP handler: each one gets
// a clear error (HTTP status or ERR packet / ng line) and the server keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import * as net from 'node:net';
import * as git from 'isomorphic-git';
import { deflateSync, gzipSync } from 'node:zlib';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { createRepo } from '../git/repos.ts';
import { FLUSH, DELIM, PktReader, demuxSideband, pkt, pktLine, type Packet } from '../git/pktline.ts';
import { objectHeader, packHeader } from '../git/pack-writer.ts';
import { resolve } from '../git/refs.ts';
import { startServer, type TestServer } from './helpers.ts';

let server: TestServer;
let gitdir: string;
const ZERO = '0'.repeat(40);

beforeAll(async () => {
  server = await startServer({
    authorize: (req) => req.headers['x-deny'] !== 'yes',
  });
  gitdir = await createRepo(server.root, 'h');
});
afterAll(async () => {
  await server?.close();
});

function post(service: string, body: Buffer, headers: Record<string, string> = {}, repo = 'h') {
  return fetch(`${server.base}/${repo}.git/${service}`, {
    method: 'POST',
    headers: { 'Content-Type': `application/x-${service}-request`, ...headers },
    body: new Uint8Array(body),
  });
}

function packets(buf: Buffer): Packet[] {
  const r = new PktReader(buf);
  const out: Packet[] = [];
  for (let p = r.next(); p; p = r.next()) out.push(p);
  return out;
}

function makePack(objects: { type: 'commit' | 'tree' | 'blob'; body: Buffer }[]): Buffer {
  const parts = [packHeader(objects.length)];
  for (const o of objects) parts.push(objectHeader(o.type, o.body.length), deflateSync(o.body));
  const pack = Buffer.concat(parts);
  return Buffer.concat([pack, createHash('sha1').update(pack).digest()]);
}

function oidOf(type: string, body: Buffer): string {
  return createHash('sha1').update(Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body])).digest('hex');
}

describe('hostile input', () => {
  it('rejects bad paths, unknown repos and dumb HTTP', async () => {
    expect((await fetch(`${server.base}/../../etc/passwd`)).status).toBe(404);
    expect((await fetch(`${server.base}/..%2f..%2fetc.git/info/refs?service=git-upload-pack`)).status).toBe(404);
    expect((await fetch(`${server.base}/.hidden.git/info/refs?service=git-upload-pack`)).status).toBe(404);
    expect((await fetch(`${server.base}/nope.git/info/refs?service=git-upload-pack`)).status).toBe(404);
    const dumb = await fetch(`${server.base}/h.git/info/refs`);
    expect(dumb.status).toBe(403);
    expect(await dumb.text()).toContain('dumb HTTP');
    expect((await fetch(`${server.base}/h.git/info/refs?service=git-evil`)).status).toBe(403);
    expect((await fetch(`${server.base}/h.git/git-upload-pack`)).status).toBe(405);
  });

  it('answers 401 with a Basic challenge when authorize says no', async () => {
    const r = await fetch(`${server.base}/h.git/info/refs?service=git-receive-pack`, { headers: { 'x-deny': 'yes' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('rejects wrong content types and encodings', async () => {
    const body = Buffer.concat([pktLine('command=ls-refs'), FLUSH]);
    expect((await post('git-upload-pack', body, { 'Content-Type': 'text/plain' })).status).toBe(415);
    expect((await post('git-upload-pack', body, { 'Content-Encoding': 'br' })).status).toBe(415);
    const bad = await post('git-upload-pack', Buffer.from('not gzip at all'), { 'Content-Encoding': 'gzip' });
    expect(bad.status).toBe(400);
  });

  it('accepts gzip request bodies', async () => {
    const body = gzipSync(Buffer.concat([pktLine('command=ls-refs'), DELIM, pktLine('symrefs'), pktLine('unborn'), FLUSH]));
    const r = await post('git-upload-pack', body, { 'Content-Encoding': 'gzip', 'Git-Protocol': 'version=2' });
    expect(r.status).toBe(200);
    const text = Buffer.from(await r.arrayBuffer()).toString();
    expect(text).toContain('unborn HEAD symref-target:refs/heads/main');
  });

  it('rejects garbage, bad lengths, oversized and truncated pkt-lines with 400', async () => {
    for (const body of [
      Buffer.from('hello world, this is not a pkt-line'),
      Buffer.from('zzzzwant'),
      Buffer.from('fff0' + 'a'.repeat(100)), // claims 65520 bytes, has 100
      Buffer.from('ffff' + 'a'.repeat(70000)), // longer than any pkt-line may be
      Buffer.from('0003'),
      Buffer.from('0010abc'),
    ]) {
      const r = await post('git-upload-pack', body);
      expect(r.status).toBe(400);
      expect(await r.text()).toMatch(/malformed request/);
      const rp = await post('git-receive-pack', body);
      expect(rp.status).toBe(400);
    }
  });

  it('answers semantic errors with an ERR packet', async () => {
    const want = Buffer.concat([pktLine(`want ${'1'.repeat(40)} side-band-64k`), FLUSH, pktLine('done')]);
    const r = await post('git-upload-pack', want);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).toString()).toContain('ERR upload-pack: not our ref');
    const v2 = await post('git-upload-pack', Buffer.concat([pktLine('command=rm-rf'), FLUSH]), { 'Git-Protocol': 'version=2' });
    expect(Buffer.from(await v2.arrayBuffer()).toString()).toContain('ERR unknown command');
    const badWant = await post('git-upload-pack', Buffer.concat([pktLine('want nothex'), FLUSH]));
    expect(Buffer.from(await badWant.arrayBuffer()).toString()).toContain('ERR bad object id');
    const badCmd = await post('git-receive-pack', Buffer.concat([pktLine('delete everything'), FLUSH]));
    expect(Buffer.from(await badCmd.arrayBuffer()).toString()).toContain('ERR bad command');
  });

  it('refuses a pack with a missing object (ng), and keeps no trace of it', async () => {
    const body = Buffer.from(`tree ${'ab'.repeat(20)}\nauthor A <a@b> 0 +0000\ncommitter A <a@b> 0 +0000\n\nevil\n`);
    const oid = oidOf('commit', body);
    const req = Buffer.concat([
      pkt(`${ZERO} ${oid} refs/heads/evil\0report-status side-band-64k\n`),
      FLUSH,
      makePack([{ type: 'commit', body }]),
    ]);
    const r = await post('git-receive-pack', req);
    expect(r.status).toBe(200);
    const { data } = demuxSideband(packets(Buffer.from(await r.arrayBuffer())));
    const report = packets(data).filter((p) => p.type === 'data').map((p) => (p as { data: Buffer }).data.toString().trim());
    expect(report).toEqual(['unpack ok', 'ng refs/heads/evil missing necessary objects']);
    expect(await resolve(gitdir, 'refs/heads/evil')).toBeNull();
    expect(await readdir(path.join(gitdir, 'objects', 'pack'))).toEqual([]);
  });

  it('reports unpack errors for corrupt packs', async () => {
    const oid = 'cd'.repeat(20);
    const corrupt = makePack([{ type: 'blob', body: Buffer.from('x') }]);
    corrupt[20] ^= 0xff; // break the data; the trailer no longer matches
    for (const pack of [Buffer.from('PACKgarbage'), corrupt]) {
      const req = Buffer.concat([pkt(`${ZERO} ${oid} refs/heads/x\0report-status\n`), FLUSH, pack]);
      const r = await post('git-receive-pack', req);
      const lines = packets(Buffer.from(await r.arrayBuffer()))
        .filter((p) => p.type === 'data')
        .map((p) => (p as { data: Buffer }).data.toString().trim());
      expect(lines[0]).toMatch(/^unpack (pack truncated|pack checksum mismatch)/);
      expect(lines[1]).toBe('ng refs/heads/x unpacker error');
    }
  });

  it('serves no object that no ref reaches', async () => {
    // A blob written straight into the store, referenced by nothing.
    const blob = Buffer.from('secret\n');
    const oid = await git.writeBlob({ fs, gitdir, blob });
    const r = await post('git-upload-pack', Buffer.concat([pktLine(`want ${oid} side-band-64k`), FLUSH, pktLine('done')]));
    expect(Buffer.from(await r.arrayBuffer()).toString()).toContain(`ERR upload-pack: not our ref ${oid}`);
  });

  it('refuses invalid ref names', async () => {
    const blob = Buffer.from('hello\n');
    const oid = oidOf('blob', blob);
    const req = Buffer.concat([pkt(`${ZERO} ${oid} refs/heads/../../config\0report-status\n`), FLUSH, makePack([{ type: 'blob', body: blob }])]);
    const r = await post('git-receive-pack', req);
    const text = Buffer.from(await r.arrayBuffer()).toString();
    expect(text).toContain('ng refs/heads/../../config funny refname');
  });

  it('never deletes a pack that an earlier push made live', async () => {
    const blob = Buffer.from('twice\n');
    const oid = oidOf('blob', blob);
    const pack = makePack([{ type: 'blob', body: blob }]);
    const push = async (ref: string) => {
      const r = await post('git-receive-pack', Buffer.concat([pkt(`${ZERO} ${oid} ${ref}\0report-status\n`), FLUSH, pack]));
      return Buffer.from(await r.arrayBuffer()).toString();
    };
    expect(await push('refs/tags/once')).toContain('ok refs/tags/once');
    expect(await push('refs/tags/bad..name')).toContain('ng refs/tags/bad..name funny refname');
    const packs = await readdir(path.join(gitdir, 'objects', 'pack'));
    expect(packs.filter((p) => p.endsWith('.pack'))).toHaveLength(1);
    const { blob: back } = await git.readBlob({ fs, gitdir, oid });
    expect(Buffer.from(back).toString()).toBe('twice\n');
  });

  it('shrugs off a client that hangs up mid-upload', async () => {
    const url = new URL(server.base);
    await new Promise<void>((resolve) => {
      const sock = net.connect(Number(url.port), url.hostname, () => {
        sock.write(
          'POST /h.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-receive-pack-request\r\n' +
            'Content-Length: 100000\r\n\r\n' + '0'.repeat(100),
        );
        setTimeout(() => {
          sock.destroy();
          resolve();
        }, 50);
      });
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(server.errors).toEqual([]);
  });

  it('keeps serving after all that', async () => {
    const r = await fetch(`${server.base}/h.git/info/refs?service=git-upload-pack`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/x-git-upload-pack-advertisement');
    expect(server.errors).toEqual([]);
  });
});
