import { describe, expect, it } from 'vitest';
import { parseServiceArgs, UsageError } from './args.ts';
import type { ListenerSpec } from './service.ts';

const listeners: Record<string, ListenerSpec> = {
  health: { protocol: 'http', port: 9102, description: 'health' },
  dns: { protocol: 'dns', port: 53, description: 'DNS' },
};

describe('service arguments', () => {
  it('defaults every listener to its declared port and applies overrides', () => {
    const a = parseServiceArgs(['--config', 'c', '--data', 'd', '--listen', 'dns=127.0.0.1:5353', '--listen', 'health=[::1]:9000'], listeners);
    expect(a.listen).toEqual({ health: { host: '::1', port: 9000 }, dns: { host: '127.0.0.1', port: 5353 } });
    expect(parseServiceArgs(['--config', 'c', '--data', 'd'], listeners).listen.dns).toEqual({ host: '0.0.0.0', port: 53 });
  });
  it('explains what is wrong', () => {
    expect(() => parseServiceArgs(['--config', 'c'], listeners)).toThrow(UsageError);
    expect(() => parseServiceArgs(['--config', 'c', '--data', 'd', '--listen', 'smtp=1.2.3.4:25'], listeners)).toThrow(/no listener named smtp/);
    expect(() => parseServiceArgs(['--config', 'c', '--data', 'd', '--listen', 'dns:53'], listeners)).toThrow(/expected NAME=HOST:PORT/);
    expect(() => parseServiceArgs(['--config', 'c', '--data', 'd', '--listen', 'dns=h:99999'], listeners)).toThrow(/out of range/);
    expect(() => parseServiceArgs(['--bogus'], listeners)).toThrow(UsageError);
    expect(() => parseServiceArgs(['--config', 'c', '--data', 'd', '--local-peer', 'qemu-host'], listeners)).toThrow(/--local-peer qemu-host: expected an IPv4 or IPv6 address/);
  });
  it('takes the peers the port gates treat as this machine', () => {
    expect(parseServiceArgs(['--config', 'c', '--data', 'd', '--local-peer', '10.0.2.2'], listeners).localPeers).toEqual(['10.0.2.2']);
    expect(parseServiceArgs(['--config', 'c', '--data', 'd'], listeners).localPeers).toEqual([]);
  });
});
