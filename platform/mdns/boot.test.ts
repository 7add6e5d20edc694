import { describe, expect, it } from 'vitest';
import { parseBootConfig } from '../boot/boot-config.ts';
import { rpiBootConfig, RPI_DEFAULT_MODULES, type RpiPlanInputs } from '../rpi/plan.ts';

const inputs: RpiPlanInputs = {
  out: '/o', cache: '/c', aptRoot: '/a', aptSources: [], kernelPackage: 'linux-image-arm64', nodeVersion: '26.10.0', bootEntry: '/init.ts', pkiEntry: '/pki-main.ts',
  services: [
    { descriptor: { name: 'storage', description: 's', writableConfig: true, listeners: { health: { protocol: 'http', port: 9101, description: 'h' }, https: { protocol: 'https', port: 8443, description: 't', dnssd: { type: '_https._tcp', txt: { path: '/' } } } } }, bundle: '/s.mjs' },
    { descriptor: { name: 'dns', description: 'd', listeners: { dns: { protocol: 'dns', port: 53, description: 'd', dnssd: { type: '_domain._udp' } } } }, bundle: '/d.mjs' },
  ],
  registry: '/r.mjs', configFiles: {}, modules: RPI_DEFAULT_MODULES, network: { mode: 'dhcp' }, bootMiB: 256, rootMiB: 192, dataMiB: 256, compression: 'zstd', languages: ['en'], hostname: 'kith',
};

describe('mDNS on the appliance (PID 1)', () => {
  it('boot.json says what to announce, from the plan, and parses back', () => {
    const cfg = rpiBootConfig(inputs);
    expect(cfg.mdns?.services).toEqual([
      { type: '_kith._tcp', port: 7299, txt: {} }, // pairing, served by the pki process
      { type: '_https._tcp', port: 8443, instance: 'storage', txt: { path: '/' } },
      { type: '_domain._udp', port: 53, instance: 'dns', txt: {} },
    ]);
    const parsed = parseBootConfig(JSON.stringify({ ...cfg, modules: [] }));
    expect(parsed.ok && parsed.value.mdns).toEqual(cfg.mdns);
  });

  it('refuses a malformed mdns section with a message', () => {
    const bad = parseBootConfig(JSON.stringify({ service: { name: 'dns', command: '/bin/node' }, mdns: { services: [{ type: 'domain', port: 53, txt: {} }] } }));
    expect(bad).toMatchObject({ ok: false, issues: [expect.stringContaining('mdns.services')] });
  });
});
