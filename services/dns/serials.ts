/**
 * Zone serials that only go up (RFC 1982): when a pushed zone's content changed but its
 * SOA serial did not, the served serial is bumped, so secondaries and caches see the
 * change. The last served serial and content hash per zone are kept durably in the data
 * folder, so a restart never serves an older serial.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from '../../platform/durable.ts';
import type { PendingWrites } from '../../platform/pending-writes.ts';
import { TYPE } from './wire/constants.ts';
import { indexSteps, Zone, type RRset } from './zone/zone.ts';
import { runSteps, runStepsAsync, STEP, type Steps } from './zone/steps.ts';

interface Served {
  hash: string;
  serial: number;
}

/** Hash of a zone's content, the SOA serial left out. */
export function contentHash(zone: Zone): string {
  return runSteps(contentHashSteps(zone));
}

function* contentHashSteps(zone: Zone): Steps<string> {
  const h = createHash('sha256');
  // Owners in order, then types in order: one sort of the owner names (a plain string
  // sort, far cheaper than comparing RRsets), the rest in slices.
  const owners = [...zone.nodes.keys()].sort();
  yield;
  let n = 0;
  for (const rs of owners.flatMap((o) => [...zone.nodes.get(o)!.values()].sort((a, b) => a.type - b.type))) {
    if (++n % STEP === 0) yield;
    h.update(`${rs.owner}|${rs.type}|${rs.ttl}|`);
    for (const rd of [...rs.rdata].sort(Buffer.compare)) {
      const bytes = rs.type === TYPE.SOA ? Buffer.concat([rd.subarray(0, rd.length - 20), rd.subarray(rd.length - 16)]) : rd;
      h.update(bytes.toString('hex') + ',');
    }
  }
  return h.digest('hex');
}

/** serial a is newer than b in sequence-space arithmetic (RFC 1982 §3.2). */
export function serialGt(a: number, b: number): boolean {
  return a !== b && ((a > b && a - b < 2 ** 31) || (a < b && b - a > 2 ** 31));
}

async function withSerial(zone: Zone, serial: number): Promise<Zone> {
  const soaRd = Buffer.from(zone.soa.rdata[0]!);
  soaRd.writeUInt32BE(serial >>> 0, soaRd.length - 20);
  const sets: RRset[] = [...zone.rrsets()].map((rs) => (rs.type === TYPE.SOA && rs.owner === zone.origin ? { ...rs, rdata: [soaRd] } : rs));
  return new Zone(zone.origin, sets, await runStepsAsync(indexSteps(zone.origin, sets)));
}

export class SerialKeeper {
  private served = new Map<string, Served>();
  private readonly file: string;

  /**
   * `writes`: where a write the disk refuses (read-only, full) waits and is retried, so a
   * bad disk leaves DNS serving (unhealthy) instead of stopping it.
   */
  private readonly writes?: PendingWrites;

  constructor(dataDir: string, writes?: PendingWrites) {
    this.file = path.join(dataDir, 'zone-serials.json');
    this.writes = writes;
  }

  async load(): Promise<void> {
    try {
      const raw = JSON.parse(await fsp.readFile(this.file, 'utf8')) as Record<string, Served>;
      for (const [k, v] of Object.entries(raw)) if (typeof v?.serial === 'number' && typeof v.hash === 'string') this.served.set(k, v);
    } catch {
      // First start, or an unreadable file: serials start from the zone files.
    }
  }

  /**
   * The zones to serve: each with its file's serial, or a bumped one when its content
   * changed without a newer serial. Returns the origins whose served serial changed.
   */
  async apply(zones: Zone[]): Promise<{ zones: Zone[]; changed: string[] }> {
    const out: Zone[] = [];
    const changed: string[] = [];
    for (const z of zones) {
      // In slices (steps.ts): the zones being replaced keep answering meanwhile.
      const hash = await runStepsAsync(contentHashSteps(z));
      const prev = this.served.get(z.origin);
      let serial = z.serial;
      if (prev) {
        if (prev.hash === hash) serial = serialGt(serial, prev.serial) ? serial : prev.serial;
        else if (!serialGt(serial, prev.serial)) serial = (prev.serial + 1) >>> 0;
      }
      if (!prev || prev.serial !== serial || prev.hash !== hash) changed.push(z.origin);
      this.served.set(z.origin, { hash, serial });
      out.push(serial === z.serial ? z : await withSerial(z, serial));
    }
    if (changed.length > 0) {
      const text = JSON.stringify(Object.fromEntries(this.served), null, 1);
      const write = () => writeFileDurable(this.file, text, { mode: 0o600 });
      if (this.writes) await this.writes.attempt('zone serials', write);
      else await write();
    }
    return { zones: out, changed };
  }
}
