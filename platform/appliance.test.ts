import { describe, expect, it } from 'vitest';
import { kvmCompanions, launchArgs, planAppliance, type ServiceDescriptor } from './appliance.ts';

const storage: ServiceDescriptor = {
  name: 'storage', description: 's', writableConfig: true,
  listeners: { health: { protocol: 'http', port: 9101, description: 'h' }, http: { protocol: 'http', port: 8080, description: 'git' }, https: { protocol: 'https', port: 8443, description: 'git over TLS' } },
};
const dns: ServiceDescriptor = {
  name: 'dns', description: 'd', needs: { configWrite: ['dns/zones/'] },
  listeners: { health: { protocol: 'http', port: 9102, description: 'h' }, dns: { protocol: 'dns', port: 53, description: 'dns' } },
};
const relay: ServiceDescriptor = {
  name: 'relay', description: 'a service outside the known order', needs: { resolver: true }, nodeFlags: ['--max-semi-space-size=1'],
  listeners: { health: { protocol: 'http', port: 9199, description: 'h' }, smtp: { protocol: 'tcp', port: 25, tls: true, description: 'smtp' } },
};

describe('the appliance plan', () => {
  it('kith up: port blocks by slot, one data folder each, the bundle seals itself, self is the host', () => {
    const plan = planAppliance([relay, dns, storage], { target: 'local', host: '127.0.0.1', portBase: 7300, dataRoot: '/k', distDir: '/repo/dist', node: '/n' });
    expect(plan.services.map((s) => s.name)).toEqual(['storage', 'dns', 'relay']);
    const [s, d, r] = plan.services;
    expect(s!.listen).toEqual({ health: { host: '127.0.0.1', port: 7300 }, http: { host: '127.0.0.1', port: 7301 }, https: { host: '127.0.0.1', port: 7302 } });
    expect(d!.listen.dns).toEqual({ host: '127.0.0.1', port: 7311 });
    expect(r!.listen.smtp).toEqual({ host: '127.0.0.1', port: 7341 }); // after the four known slots
    expect(d!.command).toBe('/n');
    expect(d!.args).toEqual(['/repo/dist/dns.mjs', '--config', '/k/config', '--data', '/k/data/dns', '--listen', 'health=127.0.0.1:7310', '--listen', 'dns=127.0.0.1:7311', '--address', '127.0.0.1']);
    expect(d!.args).not.toContain('--permission');
    expect(s!.tlsNames).toContain('127.0.0.1');
    expect(r!.tlsNames).toBeDefined(); // a tls listener gets a certificate too
    expect(d!.tlsNames).toContain('127.0.0.1'); // every service under kith up: its health port speaks TLS to paired devices
    expect(plan.links).toEqual({ storage: 'storage', storageUrl: 'http://127.0.0.1:7301', storageTlsUrl: 'https://127.0.0.1:7302' });
    expect(plan.resolver).toEqual({ host: '127.0.0.1', port: 7311 });
    expect(r!.needs).toEqual({ resolver: true, configWrite: [] });
  });

  it('rpi: declared ports, sealed from the first instruction, health on loopback unless a test image asks', () => {
    const plan = planAppliance([storage, dns], { target: 'rpi' });
    const d = plan.services.find((s) => s.name === 'dns')!;
    expect(d.args.slice(0, 1)).toEqual(['--permission']);
    expect(d.args).toEqual(expect.arrayContaining(['--allow-fs-write=/data/dns', '--listen', 'dns=0.0.0.0:53', 'health=127.0.0.1:9102']));
    const s = plan.services.find((x) => x.name === 'storage')!;
    expect(s.args).toContain('--allow-fs-read=/kith/config-specs.mjs'); // it validates every service's config
    expect(s.args).toContain('--allow-fs-write=/data/config');
    expect(plan.resolver).toEqual({ host: '127.0.0.1', port: 53 });
    expect(planAppliance([dns], { target: 'rpi', listen: { exposeHealth: true } }).services[0]!.args).toContain('health=0.0.0.0:9102');
    // A service's own node flags go with the sealing flags, before the bundle.
    const r = planAppliance([relay], { target: 'rpi' }).services[0]!.args;
    expect(r.indexOf('--max-semi-space-size=1')).toBeLessThan(r.indexOf('/kith/relay.mjs'));
    expect(planAppliance([relay], { target: 'local', host: '127.0.0.1', portBase: 7300, dataRoot: '/k', distDir: '/d', node: '/n' }).services[0]!.args).not.toContain('--max-semi-space-size=1');
  });

  it('kvm: one service alone at /data with the image\'s config, maybe from its snapshot; no links', () => {
    const plan = planAppliance([storage, relay], { target: 'kvm', service: 'relay', snapshot: true });
    expect(plan.services.map((s) => s.name)).toEqual(['relay']); // its resolver (dns) is not there
    const args = plan.services[0]!.args;
    expect(args.slice(args.indexOf('--snapshot-blob'), args.indexOf('--snapshot-blob') + 3)).toEqual(['--snapshot-blob', '/kith/relay.blob', '/kith/relay.mjs']);
    expect([plan.services[0]!.dataDir, plan.configRoot]).toEqual(['/data', '/kith/config']);
    expect(plan.links).toBeUndefined();
    expect(plan.resolver).toBeUndefined();
    expect(() => planAppliance([dns], { target: 'kvm', service: 'nope' })).toThrow(/no service named nope/);
  });

  it('kvm: storage keeps the Pi\'s layout, its config apart from /kith/config-specs.mjs', () => {
    const plan = planAppliance([storage, relay], { target: 'kvm', service: 'storage' });
    expect([plan.services[0]!.dataDir, plan.configRoot]).toEqual(['/data/storage', '/data/config']);
    // Node's permission model refuses /kith/config when /kith/config-specs.mjs is allowed too.
    const reads = plan.services[0]!.args.filter((a) => a.startsWith('--allow-fs-read=')).map((a) => a.slice('--allow-fs-read='.length));
    expect(reads.filter((a) => reads.some((b) => b !== a && b.startsWith(a) && b[a.length] !== '/'))).toEqual([]);
  });

  it('kvm: the service first, then those its links reach, each with its own data folder and links', () => {
    const plan = planAppliance([storage, dns, relay], { target: 'kvm', service: 'relay', snapshot: true });
    // relay needs a resolver (dns), and dns writes its zones through storage.
    expect(plan.services.map((s) => s.name)).toEqual(['relay', 'storage', 'dns']);
    expect(plan.services.map((s) => s.dataDir)).toEqual(['/data/relay', '/data/storage', '/data/dns']);
    expect(plan.services.every((s) => s.args.includes('--snapshot-blob') && s.configRoot === '/data/config')).toBe(true);
    expect(plan.links).toEqual({ storage: 'storage', storageUrl: 'http://127.0.0.1:8080' });
    expect(plan.resolver).toEqual({ host: '127.0.0.1', port: 53 });
    // Only storage writes the config folder.
    expect(plan.services.filter((s) => s.args.includes('--allow-fs-write=/data/config')).map((s) => s.name)).toEqual(['storage']);
  });

  it('kvm companions: the targets of a service\'s links, and theirs; none that are not there', () => {
    const calendar: ServiceDescriptor = { name: 'calendar', description: 'c', needs: { store: ['calendar'] }, listeners: { http: { protocol: 'http', port: 5232, description: 'dav' } } };
    const all = [storage, dns, relay, calendar];
    expect(kvmCompanions(all, 'calendar').map((d) => d.name)).toEqual(['storage']);
    expect(kvmCompanions(all, 'relay').map((d) => d.name)).toEqual(['storage', 'dns']);
    expect(kvmCompanions(all, 'dns').map((d) => d.name)).toEqual(['storage']);
    expect(kvmCompanions(all, 'storage')).toEqual([]);
    expect(kvmCompanions([dns, relay], 'relay').map((d) => d.name)).toEqual(['dns']);
    expect(kvmCompanions([calendar], 'calendar')).toEqual([]);
  });

  it('builds one command line, IPv6 hosts bracketed', () => {
    expect(launchArgs({ bundle: '/b.mjs', configRoot: '/c', dataDir: '/d', listen: { dns: { host: '::1', port: 53 } }, sealed: false })).toEqual(['/b.mjs', '--config', '/c', '--data', '/d', '--listen', 'dns=[::1]:53']);
  });
});
