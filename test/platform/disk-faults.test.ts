/**
 * A data folder the disk refuses to write does not stop a service (issue 11, item 11).
 * The real DNS bundle runs once on a writable folder, then again on the same folder
 * bind-mounted read-only, then on a full tmpfs, each made by the test in its own mount
 * namespace (`unshare -rm`): it starts, answers dig from the config it can read, and
 * /healthz says 503 with the reason; once space returns the write is retried and health
 * comes back without a restart. Storage on a read-only folder serves git. last-good-config.json
 * and the data folder are private.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, promises as fsp, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import dns from '../../services/dns/main.ts';
import storage from '../../services/storage/main.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles } from '../../platform/services.ts';
import { freePortBase } from '../support/ports.ts';
import { startBundle, tempDir, type ServiceProcess } from './helpers.ts';

const bundle = path.resolve(import.meta.dirname, '../../dist/dns.mjs');
const readOnly = (dir: string) => ['unshare', '-rm', 'sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"', dir];

describe('a service whose data folder the disk refuses', () => {
  let root: string;
  let config: string;
  let data: string;
  let backup: string;
  let args: string[];
  let port: number;
  let svc: ServiceProcess | undefined;
  const dig = (name: string) => execFileSync('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+short', name], { encoding: 'utf8' }).trim();
  const health = async (s: ServiceProcess) => {
    const res = await fetch(`${s.ready.health}/healthz`);
    return { status: res.status, body: (await res.json()) as { status: string; detail?: string; pendingWrites?: { write: string; reason: string }[] } };
  };

  beforeAll(async () => {
    root = tempDir('kith-diskfault-');
    config = path.join(root, 'config');
    data = path.join(root, 'data', 'dns');
    backup = path.join(root, 'backup');
    seedMissingFiles(config, defaultConfigFiles([dns as never]));
    const base = await freePortBase(1);
    port = base + 1;
    args = ['--config', config, '--data', data, '--listen', `health=127.0.0.1:${base}`, '--listen', `dns=127.0.0.1:${port}`, '--address', '127.0.0.1'];
    // A first life on a writable folder: it saves its last good config and zone serials.
    const first = await startBundle(bundle, args);
    expect((await health(first)).status).toBe(200);
    expect(dig('kith.home.arpa')).toBe('127.0.0.1');
    expect(await first.stop()).toBe(0);
    cpSync(data, backup, { recursive: true });
  });
  afterEach(async () => {
    await svc?.stop();
    svc = undefined;
  });

  it('keeps its secrets private: last-good-config.json 0600, the data folder 0700', () => {
    expect(statSync(path.join(data, 'last-good-config.json')).mode & 0o777).toBe(0o600);
    expect(statSync(data).mode & 0o777).toBe(0o700);
  });

  it('starts on a read-only data folder, serves DNS, and reports unhealthy with the reason', async () => {
    svc = await startBundle(bundle, args, 20_000, readOnly(data));
    expect(dig('kith.home.arpa')).toBe('127.0.0.1');
    const h = await health(svc);
    expect(h.status).toBe(503);
    expect(h.body.status).toBe('unhealthy');
    expect(h.body.detail).toMatch(/cannot write the data folder .*last good config: EROFS/);
    // Still up a while later, still answering: no exit-70 loop.
    await new Promise((r) => setTimeout(r, 1500));
    expect(svc.child.exitCode).toBeNull();
    expect(dig('kith.home.arpa')).toBe('127.0.0.1');
    expect(svc.lines.some((l) => l.msg === 'cannot write the data folder; serving on, and retrying')).toBe(true);
  });

  it('starts on a read-only data folder after its zones changed (the serials cannot be saved), and serves them', async () => {
    // The home zone gets a new name since the last run: DNS must save a new serial, and cannot.
    const local = path.join(config, 'dns/local.yaml');
    const before = readFileSync(local, 'utf8');
    writeFileSync(local, before.replace('hosts:\n', 'hosts:\n  printer: [192.0.2.77]\n'));
    try {
      svc = await startBundle(bundle, args, 20_000, readOnly(data));
      expect(dig('printer.home.arpa')).toBe('192.0.2.77');
      const h = await health(svc);
      expect(h.status).toBe(503);
      expect(h.body.pendingWrites?.map((w) => w.write)).toEqual(expect.arrayContaining(['zone serials']));
      await new Promise((r) => setTimeout(r, 1000));
      expect(svc.child.exitCode).toBeNull();
    } finally {
      writeFileSync(local, before);
    }
  });

  it('starts on a full data folder, and is healthy again once space returns, without a restart', async () => {
    // A 512 KiB tmpfs over the data folder, holding a copy of it, then filled to the brim.
    const full = ['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs -o size=512k,mode=0700 kithfull "$0" && cp -a "$1"/. "$0"/ && { head -c 1M /dev/zero > "$0"/filler 2>/dev/null; true; } && shift && exec "$@"', data, backup];
    svc = await startBundle(bundle, args, 20_000, full);
    expect(dig('kith.home.arpa')).toBe('127.0.0.1');
    const h = await health(svc);
    expect(h.status).toBe(503);
    expect(h.body.detail).toMatch(/ENOSPC/);
    expect(h.body.pendingWrites?.[0]?.write).toBe('last good config');
    // Free the space, seen through the service's own mount namespace.
    rmSync(path.join(`/proc/${svc.child.pid}/root`, data, 'filler'));
    await new Promise((r) => setTimeout(r, 1100)); // the retry-on-probe rate limit
    // Each probe may retry the write: asked again until healthy, up to 15 s on a loaded machine.
    let after = await health(svc);
    for (const end = Date.now() + 15_000; after.status !== 200 && Date.now() < end; after = await health(svc)) await new Promise((r) => setTimeout(r, 200));
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    const saved = await fsp.stat(path.join(`/proc/${svc.child.pid}/root`, data, 'last-good-config.json'));
    expect(saved.mode & 0o777).toBe(0o600);
    expect(svc.lines.some((l) => l.msg === 'data folder write done after a disk fault')).toBe(true);
  });
});

describe('storage on a read-only data folder', () => {
  it('starts, serves git from what it has, and reports unhealthy with the reason', async () => {
    const root = tempDir('kith-diskfault-');
    const config = path.join(root, 'config');
    const data = path.join(root, 'data', 'storage');
    seedMissingFiles(config, defaultConfigFiles([storage as never, dns as never]));
    const base = await freePortBase(1);
    const bundle = path.resolve(import.meta.dirname, '../../dist/storage.mjs');
    const args = ['--config', config, '--data', data, '--listen', `health=127.0.0.1:${base}`, '--listen', `http=127.0.0.1:${base + 1}`, '--listen', `https=127.0.0.1:${base + 2}`];
    const first = await startBundle(bundle, args);
    expect(await first.stop()).toBe(0);
    const token = readFileSync(path.join(data, 'access-token'), 'utf8').trim();

    const svc = await startBundle(bundle, args, 20_000, readOnly(data));
    try {
      const res = await fetch(`${svc.ready.health}/healthz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/EROFS/);
      const refs = execFileSync('git', ['ls-remote', `http://kith:${token}@127.0.0.1:${base + 1}/config.git`], { encoding: 'utf8' });
      expect(refs).toMatch(/refs\/heads\/main/);
    } finally {
      await svc.stop();
    }
  });
});
