import { describe, expect, it } from 'vitest';
import { ADOPTED_FILE, OWNER_KEY_FILE, PAIRING_SECRET_FILE, runFirstBoot, type FirstBootIo } from './first-boot.ts';
import { FIRST_BOOT_DONE, FIRST_BOOT_REQUEST, parseSeed, renderSeed, sha256, type FirstBootRequest } from './owner-seed.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXCBmSJC8Yl7M7ZQ/3yBqCvE6mhlyXfVrgCh9vYY3bJ owner@laptop';
const SECRET = 'K7PQ2-M4XZR-9WD3T-HV6NB-E8FJA';
const SEED = renderSeed({ version: 1, hostname: 'box1', domain: 'example.net', timezone: 'Europe/Berlin', ownerKey: KEY, pairingSecret: SECRET });

class PowerCut extends Error {}

/** A machine: a boot partition with maybe a seed, a data partition, a hostname, a console. */
function machine(seed: string | null = SEED) {
  const m = {
    boot: seed ?? undefined,
    data: new Map<string, { text: string; mode: number }>(),
    hostname: 'kith',
    logs: [] as string[],
    /** Mutations left before the power goes (Infinity: no cut). */
    budget: Infinity,
    cut: false,
    bootUnreadable: false,
  };
  const spend = () => {
    if (m.budget <= 0) { m.cut = true; throw new PowerCut('power cut'); }
    m.budget--;
  };
  const io: FirstBootIo = {
    readBootSeed: () => { if (m.bootUnreadable) throw new Error('mount /boot: No such device'); return m.boot; },
    removeBootSeed: () => { spend(); m.boot = undefined; },
    readFile: (p) => m.data.get(p)?.text,
    writeDurable: (p, text, mode = 0o644) => { spend(); m.data.set(p, { text, mode }); },
    setHostname: (n) => { m.hostname = n; return 0; },
    log: (msg, f = {}) => m.logs.push(`${msg} ${JSON.stringify(f)}`),
  };
  /** Storage at its start: commits the request (here: records it) and marks it done. */
  const storageStarts = () => {
    const req = m.data.get(`/data/storage/${FIRST_BOOT_REQUEST}`);
    if (!req) return;
    const r = JSON.parse(req.text) as FirstBootRequest;
    m.data.set(`/data/storage/${FIRST_BOOT_DONE}`, { text: JSON.stringify({ seed: r.seed }), mode: 0o644 });
    m.data.delete(`/data/storage/${FIRST_BOOT_REQUEST}`);
  };
  const boot = () => {
    m.cut = false;
    m.hostname = 'kith'; // a reboot forgets the host name
    const out = runFirstBoot(io, { stateDir: '/data/kith', storageDataDir: '/data/storage' }, parseSeed);
    if (!m.cut) storageStarts(); // services start only on a boot that was not cut short
    return out;
  };
  return { m, boot };
}

function finished(m: ReturnType<typeof machine>['m']) {
  expect(m.boot).toBeUndefined();
  expect(m.hostname).toBe('box1');
  expect(m.data.get(`/data/kith/${PAIRING_SECRET_FILE}`)).toEqual({ text: SECRET + '\n', mode: 0o600 });
  expect(m.data.get(`/data/kith/${OWNER_KEY_FILE}`)?.text).toBe(KEY + '\n');
  const adopted = JSON.parse(m.data.get(`/data/kith/${ADOPTED_FILE}`)!.text);
  expect(adopted).toEqual({ seed: { version: 1, hostname: 'box1', domain: 'example.net', timezone: 'Europe/Berlin', ownerKey: KEY }, sha256: sha256(SEED), hasPairingSecret: true });
  expect(m.data.get(`/data/storage/${FIRST_BOOT_DONE}`)?.text).toContain(sha256(SEED));
  expect(m.data.has(`/data/storage/${FIRST_BOOT_REQUEST}`)).toBe(false);
}

describe('first boot step machine', () => {
  it('adopts, names the host, hands the config to storage and scrubs the secret from the boot partition', () => {
    const { m, boot } = machine();
    const out = boot();
    expect(out.did).toEqual(['adopt', 'hostname', 'request', 'scrub']);
    expect(out.failed).toEqual([]);
    finished(m);
    const req = JSON.parse(m.data.get(`/data/storage/${FIRST_BOOT_DONE}`)!.text);
    expect(req.seed).toBe(sha256(SEED));
    // the next boot only names the host again
    expect(boot().did).toEqual(['hostname']);
    finished(m);
    // nothing secret in any log line
    expect(m.logs.join('\n')).not.toContain(SECRET);
    expect(m.logs.join('\n')).not.toContain('AAAAC3Nza');
  });

  it('a power cut at any point of first boot is finished on the next boot, with the same end state', () => {
    const { m: clean, boot: cleanBoot } = machine();
    cleanBoot();
    const mutations = 5; // secret, key, seed.json, request, remove
    for (let cutAt = 0; cutAt <= mutations; cutAt++) {
      for (let secondCut = 0; secondCut <= mutations; secondCut++) {
        const { m, boot } = machine();
        m.budget = cutAt;
        boot();
        m.budget = secondCut; // and maybe cut again on the next boot
        boot();
        m.budget = Infinity;
        boot();
        finished(m);
        expect([...m.data.entries()].sort()).toEqual([...clean.data.entries()].sort());
        expect(m.logs.join('\n')).not.toContain(SECRET);
      }
    }
  });

  it('a bad seed is logged with file, line and field, and the box boots with its defaults', () => {
    const bad = 'version: 1\nhostname: Box_1\ndomain: example\npairingSecret: hunter2\nwifi: yes\n';
    const { m, boot } = machine(bad);
    const out = boot();
    expect(out).toEqual({ failed: [], did: [] });
    expect(m.hostname).toBe('kith');
    expect(m.data.size).toBe(0);
    const log = m.logs.join('\n');
    expect(log).toMatch(/owner seed refused; booting with the defaults .*kith-seed.yaml:2.*hostname/);
    expect(log).toMatch(/kith-seed.yaml:3.*domain/);
    expect(log).toMatch(/kith-seed.yaml:4.*pairingSecret/);
    expect(log).toMatch(/kith-seed.yaml:5.*unknown key 'wifi'/);
    expect(log).not.toContain('hunter2');
    // not YAML at all, or not even text: still a log line and a normal boot
    for (const junk of ['{{{', ': : :', '\u0000\u0001binary', 'a'.repeat(70_000), '- a list\n']) {
      const j = machine(junk);
      expect(() => j.boot()).not.toThrow();
      expect(j.m.logs.join('\n')).toMatch(/owner seed refused/);
      expect(j.m.data.size).toBe(0);
    }
  });

  it('an unreadable boot partition fails the step, logged, and boot goes on', () => {
    const { m, boot } = machine();
    m.bootUnreadable = true;
    expect(boot()).toEqual({ failed: ['adopt'], did: [] });
    expect(m.logs.join('\n')).toMatch(/first boot step failed; it is retried at the next boot .*adopt.*No such device/);
    m.bootUnreadable = false;
    boot();
    finished(m);
  });

  it('a different seed put on the card later is left alone: first boot happens once', () => {
    const { m, boot } = machine();
    boot();
    const later = renderSeed({ version: 1, hostname: 'other', pairingSecret: 'AAAAA-BBBBB-CCCCC-DDDDD-EEEEE' });
    m.boot = later;
    expect(boot().did).toEqual(['hostname']);
    expect(m.boot).toBe(later);
    expect(m.hostname).toBe('box1');
    expect(m.logs.join('\n')).toMatch(/a seed on the boot partition is ignored/);
  });

  it('a seed with nothing for config asks storage for nothing; no seed does nothing', () => {
    const { m, boot } = machine(renderSeed({ version: 1, pairingSecret: SECRET }));
    expect(boot().did).toEqual(['adopt', 'scrub']);
    expect(m.data.has(`/data/storage/${FIRST_BOOT_REQUEST}`)).toBe(false);
    const none = machine(null);
    expect(none.boot()).toEqual({ failed: [], did: [] });
    expect(none.m.logs).toEqual([]);
  });
});
