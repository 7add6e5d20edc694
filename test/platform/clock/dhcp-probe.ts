/**
 * Run inside dhcp-ntp.test.ts's network namespace: PID 1's DHCP client (platform/boot/net.ts)
 * asks for a lease on IFNAME and prints it as one JSON line.
 */
import { dhcpLease, hwaddr } from '../../../platform/boot/net.ts';

const ifname = process.argv[2]!;
const logs: string[] = [];
const lease = await dhcpLease(ifname, hwaddr(ifname), 'box1', 15_000, (m, f = {}) => logs.push(`${m} ${JSON.stringify(f)}`));
process.stdout.write(JSON.stringify({ lease, logs }) + '\n');
