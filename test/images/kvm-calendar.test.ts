/**
 * The calendar image (issue 13's last acceptance item): `kith image build --target kvm
 * --service calendar --data-disk` puts storage in the image beside the calendar (its
 * calendars live in storage's versioned store, through the link PID 1 provisions), and
 * `kith vm run calendar --accel tcg` boots it, forwarding the calendar's own ports only.
 * python3-caldav on the host, signing in as the owner (user kith, the token `kith vm run`
 * printed, as with `kith up`), makes a calendar and saves events through the forwarded
 * port (test/e2e/calendar-clients/caldav_acceptance.py, the e2e suite's script); after the
 * VM is stopped and booted again on the same data disk they are all there, and the sync
 * token from before still works.
 * TCG directly: nested KVM on the machines this runs on hangs until the runner's 20 s
 * fallback (as in kvm-mail.test.ts).
 * Needs: qemu-system-x86, binutils (strip), e2fsprogs, python3-caldav, apt access to the kernel .deb.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles, loadDefinitions } from '../../platform/services.ts';
import { run } from '../../services/dns/test/helpers.ts';
import { freePortBase } from '../support/ports.ts';
import { buildVmImage, startVm, stopVm, type RunningVm } from './vm-process.ts';

const REPO = resolve(import.meta.dirname, '../..');
const OUT = join(REPO, 'build/test-images');
const SCRIPT = join(REPO, 'test/e2e/calendar-clients/caldav_acceptance.py');

/** The e2e suite's instances for its weekly event across the DST change (calendar-clients.test.ts). */
const EXPECTED_INSTANCES = [
  ['2026-03-02T09:00Z', 'Standup'],
  ['2026-03-09T09:00Z', 'Standup'],
  ['2026-03-23T09:00Z', 'Standup'],
  ['2026-03-31T13:00Z', 'Standup (moved)'],
  ['2026-04-03', 'Holiday'],
  ['2026-04-06T08:00Z', 'Standup'],
];

interface Booted { vm: RunningVm; dav: string; health: string; token: string }

/**
 * python3-caldav (Debian's, /usr/bin/python3) through the forwarded port: the JSON the script
 * printed. Run without blocking this process, so that the guest's console is still read
 * while the script runs and a failure shows what the guest logged meanwhile.
 */
async function caldav(b: Booted, step: string, ...extra: string[]): Promise<Record<string, unknown>> {
  const r = await run('/usr/bin/python3', [SCRIPT, b.dav, 'kith', b.token, step, ...extra], 180_000);
  // A moment for the guest's last lines (the serial console) to arrive.
  if (r.code !== 0) await new Promise((res) => setTimeout(res, 2000));
  const guest = () => b.vm.output().split('\n').filter((l) => /"level":"(warn|error)"|failed|kith-init/.test(l)).join('\n').slice(-8000);
  if (r.code !== 0) throw new Error(`caldav_acceptance.py ${step} failed (${r.code}):\n${r.stderr}\n${r.stdout}\n--- the guest's console (warnings, errors, PID 1):\n${guest()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/**
 * `kith vm run calendar` on the data disk; resolves once the calendar's health (through its
 * forwarded health port, with the owner token) says ok, which it does only once its link to
 * storage works.
 */
async function boot(dir: string, disk: string): Promise<Booted> {
  const base = await freePortBase(4);
  const vm = startVm(REPO, ['calendar', '--image', dir, '--port-base', String(base), '--data-disk', disk, '--data-size', '64', '--accel', 'tcg']);
  const http = await vm.port(/^ +http +http:\/\/127\.0\.0\.1:(\d+) +\(guest port 5232\)/m);
  const health = await vm.port(/^ +health +http:\/\/127\.0\.0\.1:(\d+) +\(guest port 9104\)/m);
  expect(http, vm.output()).toBeGreaterThan(base);
  const token = /^ +token +(\S+) /m.exec(vm.output())?.[1] ?? '';
  expect(token, vm.output()).toMatch(/^\S{32,}$/);
  const booted = { vm, dav: `http://127.0.0.1:${http}/dav/`, health: `http://127.0.0.1:${health}/healthz`, token };
  // qemu's slirp accepts connections before the guest listens: ask until the calendar answers ok.
  for (const end = Date.now() + 300_000; Date.now() < end; ) {
    if (vm.child.exitCode !== null) throw new Error(`kith vm run exited:\n${vm.output()}`);
    const ok = await fetch(booted.health, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false);
    if (ok) return booted;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`the calendar never said it was healthy:\n${vm.output().slice(-6000)}`);
}

describe.runIf(process.arch === 'x64')('kvm calendar image (kith image build --target kvm --service calendar --data-disk, kith vm run calendar)', () => {
  let dir: string;
  let tmp: string;
  let vm: ChildProcess | undefined;
  let buildOut = '';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-kvm-calendar-'));
    const config = join(tmp, 'config');
    seedMissingFiles(config, defaultConfigFiles(await loadDefinitions(REPO)));
    dir = join(OUT, 'kvm-calendar');
    buildOut = buildVmImage(REPO, 'calendar', config, dir, ['--data-disk']);
  }, 600_000);

  afterAll(async () => {
    await stopVm(vm);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('builds storage into the image beside the calendar, both from startup snapshots', () => {
    expect(buildOut).toMatch(/calendar reaches storage through its links: they go into the image too/);
    for (const part of ['service (calendar.mjs)', 'service (storage.mjs)', 'service snapshot (calendar.blob)', 'service snapshot (storage.blob)']) expect(buildOut).toContain(part);
    expect(buildOut).toMatch(/boot it: kith vm run calendar/);
  });

  let syncToken = '';
  const disk = () => join(tmp, 'calendar-data.img');

  it('python3-caldav, as the owner, makes a calendar and saves events through the forwarded port', async () => {
    const b = await boot(dir, disk());
    vm = b.vm.child;
    const out = b.vm.output();
    // Only the calendar's own ports are forwarded, not storage's.
    expect(out).toMatch(/^ +https +https:\/\/127\.0\.0\.1:\d+ +\(guest port 8843\)/m);
    expect(out).not.toMatch(/guest port (8080|8443|9101)\)/);
    expect(out).toMatch(/made a 64 MiB data disk: /);
    expect(out).toMatch(/kith-init pid=1 .*owner token hash from the kernel command line/);
    expect(out).toMatch(/kith-init pid=1 .*link provisioned service=calendar to=storage/);
    expect(out).toMatch(/kith-init pid=1 .*service started service=storage child=\d+ .*--snapshot-blob \/kith\/storage\.blob/);
    expect(out).toMatch(/store repository created for a service.*"repo":"calendar"/);
    // Without credentials, or with a wrong password: 401.
    expect((await fetch(b.dav, { method: 'PROPFIND', headers: { depth: '0' } })).status).toBe(401);
    expect((await fetch(b.dav, { method: 'PROPFIND', headers: { depth: '0', authorization: `Basic ${Buffer.from('kith:not-the-token').toString('base64')}` } })).status).toBe(401);

    const made = await caldav(b, 'create');
    expect(made.calendars).toContain(`${b.dav}kith/work/`);
    expect(made.march_april).toEqual(EXPECTED_INSTANCES);
    expect(made.etag_update).toEqual([204, 412]);
    expect(made.deleted).toBe(true);
    syncToken = made.sync_token as string;
    expect(syncToken).toMatch(/^http:\/\/kith\.invalid\/ns\/sync\/[0-9a-f]{40}$/);
    expect(b.vm.output()).not.toMatch(/FATAL|uncaught|Kernel panic/);
    expect(await stopVm(vm)).toBe(0);
  }, 900_000);

  it('booted again on the same data disk, loses nothing, and the sync token from before still works', async () => {
    expect(syncToken).not.toBe('');
    const b = await boot(dir, disk());
    vm = b.vm.child;
    expect(b.vm.output()).not.toMatch(/made a \d+ MiB data disk/);
    const after = await caldav(b, 'after', syncToken);
    expect(after.march_april).toEqual(EXPECTED_INSTANCES);
    expect(after.changed_since_token).toEqual([]);
    expect(after.changed_after_write).toEqual(['after-restart%40kith.test.ics']);
    expect(after.bad_token).not.toBe('accepted');
    expect(b.vm.output()).not.toMatch(/FATAL|uncaught|Kernel panic/);
    expect(await stopVm(vm)).toBe(0);
  }, 900_000);
});
