/**
 * DHCP option 42 (RFC 2132 §8.3) from a real DHCP server: dnsmasq serves a lease naming two
 * NTP servers on one end of a veth pair in a network namespace this test makes
 * (unshare -rn); PID 1's DHCP client (platform/boot/net.ts) asks on the other end.
 * Needs: dnsmasq-base, util-linux (unshare), iproute2.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['dnsmasq', 'unshare', 'ip'];
const missing = tools.filter((t) => !have(t));
const PROBE = join(import.meta.dirname, 'dhcp-probe.ts');

describe.skipIf(missing.length > 0)(`DHCP NTP servers from dnsmasq in a network namespace (needs ${tools.join(', ')})`, () => {
  it('reads the NTP servers of option 42 (and resolvers, router) from the ACK', () => {
    // Namespace A (server, this shell) and B (client): a veth pair between them, as a box
    // and its router would have. The client end has no address until the lease.
    const client = [
      'while ! ip link show kc0 >/dev/null 2>&1; do sleep 0.05; done',
      'ip link set lo up', 'ip link set kc0 up',
      // No address yet: a host route sends the DISCOVER out of the NIC (as net.ts does).
      'ip route add 255.255.255.255/32 dev kc0',
      `exec "${process.execPath}" "${PROBE}" kc0`,
    ].join('; ');
    const script = [
      'set -e',
      'ip link set lo up',
      'ip link add kc0 type veth peer name ks0',
      'ip addr add 10.9.0.1/24 dev ks0',
      'ip link set ks0 up',
      'dnsmasq -k -d --port=0 --interface=ks0 --bind-interfaces --no-resolv --no-hosts --pid-file --user=root --dhcp-range=10.9.0.50,10.9.0.60,255.255.255.0,1h --dhcp-option=3,10.9.0.1 --dhcp-option=6,10.9.0.1 --dhcp-option=42,10.9.0.1,10.9.0.2 --dhcp-leasefile=/dev/null > /dev/null 2>&1 & d=$!',
      `unshare -n sh -c '${client}' & c=$!`,
      'while [ "$(readlink /proc/$c/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.05; done',
      'ip link set kc0 netns $c',
      'set +e', 'wait $c', 'r=$?', 'kill $d', 'wait', 'exit $r',
    ].join('\n');
    const r = spawnSync('unshare', ['-rn', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const { lease } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { lease: { address: string; prefix: number; router: string; dns: string[]; ntp: string[]; leaseSeconds: number } };
    expect(lease).toMatchObject({ prefix: 24, router: '10.9.0.1', dns: ['10.9.0.1'], ntp: ['10.9.0.1', '10.9.0.2'], leaseSeconds: 3600 });
    expect(lease.address).toMatch(/^10\.9\.0\.(5\d|60)$/);
  });
});
