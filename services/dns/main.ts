/**
 * kith DNS: authoritative for the owner's zones (from config.git), a caching forwarder
 * with block lists for the home network, zone transfers with NOTIFY, and TSIG-signed
 * dynamic updates. Think NSD + Pi-hole + dns-primary-git, in one sealed process.
 */
import { runServiceMain } from '../../platform/runner.ts';
import { defineService } from '../../platform/service.ts';
import { dnsConfig, type DnsConfig } from './config.ts';
import { startDns } from './service.ts';

const dns = defineService<DnsConfig>({
  name: 'dns',
  description: 'authoritative DNS, caching forwarder and block lists',
  listeners: {
    health: { protocol: 'http', port: 9102, description: 'health and metrics' },
    dns: { protocol: 'dns', port: 53, description: 'DNS over UDP and TCP (queries, AXFR, NOTIFY, UPDATE)', dnssd: { type: '_domain._udp' } },
  },
  config: dnsConfig,
  // Dynamic updates become commits to the zone files in config.git.
  needs: { configWrite: ['dns/zones/'] },
  // glibc's own mmap threshold, not the supervisor's 32 KiB (platform/malloc-env.ts): Node
  // receives every UDP batch into a fresh 64 KiB buffer, which a fixed threshold turns into an
  // mmap and a munmap per batch (~500 each per 4,000 queries, strace -c); bench/dns measures
  // the service this way. Its bundle loads in 21.1 MiB private with it, 20.8 without.
  env: { MALLOC_MMAP_THRESHOLD_: '' },
  start: startDns,
});

export default dns;
if (import.meta.main) await runServiceMain(dns, import.meta.url);
