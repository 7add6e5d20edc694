/**
 * Command-line arguments of a service bundle:
 *   node dist/<service>.mjs --config DIR --data DIR [--listen NAME=HOST:PORT]... [--log-level L]
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import type { ListenAddress, ListenerSpec } from './service.ts';

export interface ServiceArgs {
  configRoot: string;
  dataDir: string;
  listen: Record<string, ListenAddress>;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  help: boolean;
  checkConfig: boolean;
  /** This machine's addresses as 'self' means them (--address); empty: its interfaces'. */
  addresses: string[];
  /** Peers the port gates treat as this machine (--local-peer; platform/peer-gate.ts). */
  localPeers: string[];
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseServiceArgs(argv: string[], listeners: Record<string, ListenerSpec>): ServiceArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        data: { type: 'string' },
        listen: { type: 'string', multiple: true },
        address: { type: 'string', multiple: true },
        'local-peer': { type: 'string', multiple: true },
        host: { type: 'string' },
        'log-level': { type: 'string' },
        'check-config': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const help = v.help === true;
  if (!help && (!v.config || !v.data)) throw new UsageError('--config DIR and --data DIR are required');
  const host = v.host ?? '0.0.0.0';
  const listen: Record<string, ListenAddress> = {};
  for (const [name, spec] of Object.entries(listeners)) listen[name] = { host, port: spec.port };
  for (const item of v.listen ?? []) {
    const m = /^([a-z0-9-]+)=(.+):(\d{1,5})$/.exec(item);
    if (!m) throw new UsageError(`--listen ${item}: expected NAME=HOST:PORT, e.g. dns=127.0.0.1:5353`);
    const [, name, h, port] = m as unknown as [string, string, string, string];
    if (!listeners[name]) throw new UsageError(`--listen ${item}: no listener named ${name} (have: ${Object.keys(listeners).join(', ')})`);
    const n = Number(port);
    if (n > 65535) throw new UsageError(`--listen ${item}: port out of range`);
    listen[name] = { host: h.replace(/^\[(.*)\]$/, '$1'), port: n };
  }
  for (const a of v.address ?? []) if (isIP(a) === 0) throw new UsageError(`--address ${a}: expected an IPv4 or IPv6 address`);
  for (const a of v['local-peer'] ?? []) if (isIP(a) === 0) throw new UsageError(`--local-peer ${a}: expected an IPv4 or IPv6 address`);
  const level = v['log-level'] ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level ${level}: expected debug, info, warn or error`);
  return {
    configRoot: v.config ?? '',
    dataDir: v.data ?? '',
    listen,
    logLevel: level as ServiceArgs['logLevel'],
    help,
    checkConfig: v['check-config'] === true,
    addresses: v.address ?? [],
    localPeers: v['local-peer'] ?? [],
  };
}

export function serviceUsage(name: string, description: string, listeners: Record<string, ListenerSpec>): string {
  const rows = Object.entries(listeners).map(([n, l]) => `  ${n.padEnd(12)} ${l.protocol.padEnd(6)} default port ${String(l.port).padEnd(6)} ${l.description}`);
  return [
    `kith ${name}: ${description}`,
    '',
    `Usage: node ${name}.mjs --config DIR --data DIR [options]`,
    '',
    'Options:',
    '  --config DIR              the config working tree (this service reads DIR/' + name + '/)',
    '  --data DIR                the service\'s own data folder (the only place it writes)',
    '  --listen NAME=HOST:PORT   override a listener (repeatable)',
    '  --host HOST               default host for every listener (default 0.0.0.0)',
    '  --address ADDR            this machine\'s address, what \'self\' means in the config\n' +
    '                            (repeatable; default: the network interfaces\' addresses)',
    '  --local-peer ADDR         a peer address treated as this machine by the management\n' +
    '                            ports (repeatable; a kvm image\'s host, 10.0.2.2)',
    '  --log-level LEVEL         debug, info, warn or error (default info)',
    '  --check-config            validate the config, print problems, exit 0 (valid) or 78',
    '  -h, --help                this help',
    '',
    'Listeners:',
    ...rows,
    '',
    'The process seals itself at start: no eval, frozen intrinsics, file system limited to',
    'its bundle, config and data, no child processes. Logs are JSON lines on stdout.',
    '',
  ].join('\n');
}
