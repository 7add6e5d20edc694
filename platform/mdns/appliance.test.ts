import { describe, expect, it } from 'vitest';
import type { ServiceDescriptor, ServiceLaunch } from '../appliance.ts';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../../test/platform/helpers.ts';
import { createCa } from '../pki/ca.ts';
import { certSha256 } from '../pki/server-tls.ts';
import { announceLinks, announcements, withCaFingerprint } from './appliance.ts';
import { defaultMdnsName } from './supervise.ts';

const descriptors: Pick<ServiceDescriptor, 'name' | 'listeners'>[] = [
  { name: 'storage', listeners: { health: { protocol: 'http' as const, port: 1, description: '' }, https: { protocol: 'https' as const, port: 8443, description: '', dnssd: { type: '_https._tcp' as const, txt: { path: '/' } } } } },
  { name: 'dns', listeners: { dns: { protocol: 'dns' as const, port: 53, description: '', dnssd: { type: '_domain._udp' as const } } } },
];
const services: Pick<ServiceLaunch, 'name' | 'listen' | 'dataDir' | 'writableConfig'>[] = [
  { name: 'storage', writableConfig: true, dataDir: '/d/storage', listen: { health: { host: '0.0.0.0', port: 9101 }, https: { host: '0.0.0.0', port: 8443 } } },
  { name: 'dns', writableConfig: false, dataDir: '/d/dns', listen: { dns: { host: '0.0.0.0', port: 53 } } },
];

describe('what the appliance announces, from its plan', () => {
  it('announces _kith._tcp at the config owner, and each listener that declares dnssd at its planned port', () => {
    const ads = announcements({ services, descriptors, version: '9.9', fingerprint: (s) => (s.name === 'storage' ? 'ab'.repeat(32) : undefined) });
    expect(ads).toEqual([
      { type: '_kith._tcp', port: 8443, txt: { version: '9.9' } },
      { type: '_https._tcp', port: 8443, instance: 'storage', txt: { version: '9.9', path: '/', certsha256: 'ab'.repeat(32) } },
      { type: '_domain._udp', port: 53, instance: 'dns', txt: { version: '9.9' } },
    ]);
  });

  it('announces where the services listen: everywhere, on given addresses, or not at all for loopback', () => {
    expect(announceLinks(services)).toEqual({});
    expect(announceLinks([{ listen: { a: { host: '192.0.2.4', port: 1 } } }])).toEqual({ addresses: ['192.0.2.4'] });
    expect(announceLinks([{ listen: { a: { host: '127.0.0.1', port: 1 } } }])).toBeUndefined();
    expect(announceLinks([{ listen: { a: { host: '127.0.0.1', port: 1 } } }], true)).toEqual({ addresses: ['127.0.0.1'], loopback: true });
  });

  it("adds the CA's fingerprint to PID 1's planned _kith._tcp once the device made its CA", async () => {
    const planned = announcements({ services, descriptors, kithPort: 7299 });
    expect(planned[0]).toEqual({ type: '_kith._tcp', port: 7299, txt: {} });
    const file = path.join(tempDir('kith-mdns-ca-'), 'ca.crt');
    expect(withCaFingerprint(planned, file)).toEqual(planned); // no CA yet
    const ca = await createCa('kith test CA');
    writeFileSync(file, ca.cert);
    const ads = withCaFingerprint(planned, file);
    expect(ads[0]).toEqual({ type: '_kith._tcp', port: 7299, txt: { ca: certSha256(ca.cert) } });
    expect(ads.slice(1)).toEqual(planned.slice(1));
  });

  it('makes a DNS label of the machine name', () => {
    expect(defaultMdnsName('My_Box.lan')).toBe('my-box');
    expect(defaultMdnsName('...')).toBe('kith');
  });
});
