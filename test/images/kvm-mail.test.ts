/**
 * The mail image the README's commands build and boot: `kith image build --target kvm
 * --service mail` (storage and dns come along: mail's links reach them), then
 * `kith vm run mail --accel tcg`; swaks on the host gets a 250 for
 * an alias of the default config, and a relay refusal, through the forwarded port 25.
 * TCG directly: nested KVM on the machines this runs on hangs until the runner's 20 s
 * fallback, so asking for TCG saves that wait without changing what is tested.
 * Needs: qemu-system-x86, binutils (strip), xz-utils, swaks, apt access to the kernel .deb.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles, loadDefinitions } from '../../platform/services.ts';
import { freePortBase } from '../support/ports.ts';
import { buildVmImage, startVm, stopVm } from './vm-process.ts';

const REPO = resolve(import.meta.dirname, '../..');
const OUT = join(REPO, 'build/test-images');

function swaks(port: number, ...args: string[]): { out: string; code: number | null } {
  const r = spawnSync('swaks', ['--server', '127.0.0.1', '--port', String(port), '--timeout', '30', '--suppress-data', ...args], { encoding: 'utf8', timeout: 90_000 });
  return { out: r.stdout + r.stderr, code: r.status };
}

describe.runIf(process.arch === 'x64')('kvm mail image (kith image build --target kvm --service mail, kith vm run mail)', () => {
  let dir: string;
  let tmp: string;
  let vm: ChildProcess | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-kvm-mail-'));
    const config = join(tmp, 'config');
    seedMissingFiles(config, defaultConfigFiles(await loadDefinitions(REPO)));
    dir = join(OUT, 'kvm-mail');
    const out = buildVmImage(REPO, 'mail', config, dir);
    expect(out).toMatch(/boot it: kith vm run mail/);
    // Its links reach storage (the zone files its records go into) and dns (its resolver): both come along.
    expect(out).toMatch(/mail reaches storage and dns through its links: they go into the image too/);
  }, 300_000);

  afterAll(async () => {
    await stopVm(vm);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('boots and swaks gets a 250 for an alias (and 554 for a relay attempt) through the forwarded port', async () => {
    const base = await freePortBase(4);
    const running = startVm(REPO, ['mail', '--image', dir, '--port-base', String(base), '--accel', 'tcg']);
    vm = running.child;
    const port = await running.port(/^ +smtp +tcp:\/\/127\.0\.0\.1:(\d+) +\(guest port 25\)/m);
    expect(port, running.output()).toBeGreaterThan(base);
    expect(running.output()).toMatch(/mail is booting under qemu \(tcg\)/);
    // Wait for the service, not a fixed time: qemu's slirp accepts connections before the
    // guest listens, so the sign of life is the runner's 'ready' line on the console.
    for (const end = Date.now() + 240_000; !/"service":"mail","msg":"ready"/.test(running.output()) && Date.now() < end; ) {
      if (vm.exitCode !== null) throw new Error(`kith vm run exited:\n${running.output()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(running.output().slice(-4000)).toMatch(/"service":"mail","msg":"ready"/);

    const ok = swaks(port, '--from', 'someone@example.net', '--to', 'postmaster@home.arpa', '--helo', 'client.example.net');
    expect(ok.out).toMatch(/^<- {2}250 2\.0\.0 Ok: queued as /m);
    expect(ok.code).toBe(0);
    const relay = swaks(port, '--from', 'someone@example.net', '--to', 'someone@example.org', '--helo', 'client.example.net');
    expect(relay.out).toMatch(/^<\*\* 554 5\.7\.1 /m);
    expect(running.output()).toMatch(/kith-init pid=1 .*service started service=mail child=\d+/);
    for (const other of ['storage', 'dns']) expect(running.output()).toMatch(new RegExp(`kith-init pid=1 .*service started service=${other} child=\\d+`));
    expect(running.output()).toMatch(/kith-init pid=1 .*link provisioned service=mail to=storage/);
    // Only mail's own ports are forwarded.
    expect(running.output()).not.toMatch(/\(guest port (53|8080|8443|9101|9102)\)/);
    expect(running.output()).not.toMatch(/FATAL|uncaught|Kernel panic/);
    expect(await stopVm(vm)).toBe(0);
  }, 420_000);
});
