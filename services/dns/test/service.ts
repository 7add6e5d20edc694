/**
 * The whole DNS service in this process, as the runner starts it (config tree on disk,
 * live reloads, /metrics), on a free loopback port: for suites that drive it with real
 * clients and read its counters.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startService, type ServiceHandle } from '../../../platform/runner.ts';
import { createLogger, type Logger } from '../../../platform/log.ts';
import type { DnsConfig } from '../config.ts';
import dns from '../main.ts';
import { freePort } from './helpers.ts';

export interface DnsUnderTest {
  handle: ServiceHandle<DnsConfig>;
  port: number;
  configRoot: string;
  /** Write (or with undefined, delete) config files, then reload; resolves when applied. */
  write(files: Record<string, string | undefined>): Promise<{ applied: boolean; issues: unknown[] }>;
  /** One counter or gauge from /metrics, summed over the label sets matching `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export async function startDnsService(files: Record<string, string>, opts: { log?: Logger } = {}): Promise<DnsUnderTest> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kith-dns-svc-'));
  const configRoot = path.join(dir, 'config');
  const put = (files: Record<string, string | undefined>) => {
    for (const [f, text] of Object.entries(files)) {
      const p = path.join(configRoot, f);
      if (text === undefined) rmSync(p, { force: true });
      else {
        mkdirSync(path.dirname(p), { recursive: true });
        writeFileSync(p, text);
      }
    }
  };
  put({ 'dns/local.yaml': 'zone: home.arpa\nhosts: {}\n', ...files });
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      const handle = await startService(dns, {
        configRoot,
        dataDir: path.join(dir, 'data'),
        listen: { dns: { host: '127.0.0.1', port }, health: { host: '127.0.0.1', port: 0 } },
        log: opts.log ?? createLogger({ service: 'dns', level: 'error', write: () => {} }),
      });
      return {
        handle,
        port,
        configRoot,
        write: async (f) => {
          put(f);
          return handle.reload();
        },
        metric: async (name, labels = {}) => {
          const text = await (await fetch(`${handle.healthUrl}/metrics`)).text();
          let sum = 0;
          for (const line of text.split('\n')) {
            const m = /^([a-z_]+)(?:\{(.*)\})? ([0-9.e+-]+)$/.exec(line);
            if (!m || m[1] !== name) continue;
            const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
            if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
          }
          return sum;
        },
        stop: async () => {
          await handle.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastErr = e;
      if (!/EADDRINUSE/.test(String(e))) break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}

export const EXAMPLE_ZONE = `$ORIGIN example.test.
$TTL 3600
@    IN SOA ns1 hostmaster 2026120201 7200 900 1209600 300
@    IN NS  ns1
ns1  IN A   192.0.2.1
www  IN A   192.0.2.80
big  IN TXT "${'x'.repeat(200)}" "${'y'.repeat(200)}" "${'z'.repeat(200)}"
`;
