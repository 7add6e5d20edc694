/**
 * kith storage: git repositories over smart HTTP (no git binary), the owner's config.git
 * — every push validated against all services' schemas, then applied live — and the
 * versioned store other services keep their data in.
 */
import { runServiceMain } from '../../platform/runner.ts';
import { defineService } from '../../platform/service.ts';
import { storageConfig, type StorageConfig } from './config/schema.ts';
import { startStorage } from './server.ts';

const storage = defineService<StorageConfig>({
  name: 'storage',
  description: 'git over HTTP, config.git and the versioned store',
  listeners: {
    health: { protocol: 'http', port: 9101, description: 'health and metrics' },
    http: { protocol: 'http', port: 8080, description: 'git smart HTTP and the store API (token)' },
    https: { protocol: 'https', port: 8443, description: 'the same over TLS (token or client certificate)', dnssd: { type: '_https._tcp', txt: { path: '/' } } },
  },
  config: storageConfig,
  writableConfig: true,
  // A small young generation: packs stream through short-lived Buffers, which V8 otherwise
  // lets pile up between scavenges (bench/storage: peak RssAnon, docs/decisions.md).
  // A 256 MB old space: a full DNS zone (200,000 records, 20× the default limit) still
  // validates; 64 and 128 slowed bench/storage (bench/storage/config-push.ts, docs/decisions.md).
  // Array buffers swept in the GC pause, not after it on a helper thread: otherwise the memory
  // governor reads external memory right after its GC as if nothing had been freed and sets
  // its next threshold from that (platform/memory-governor.ts, docs/decisions.md).
  nodeFlags: ['--max-semi-space-size=1', '--max-old-space-size=256', '--no-concurrent-array-buffer-sweeping'],
  // glibc's mmap threshold at 4 KiB, not the supervisor's 32 KiB (platform/malloc-env.ts): a
  // push's body arrives as HTTP chunks of ~7 KiB that Node copies into malloc'd Buffers, alive
  // until a GC; in the main heap they raised its top, and whatever was allocated above them
  // kept the freed space there for good (bench/storage, docs/decisions.md).
  env: { MALLOC_MMAP_THRESHOLD_: '4096' },
  start: startStorage,
});

export default storage;
if (import.meta.main) await runServiceMain(storage, import.meta.url);
