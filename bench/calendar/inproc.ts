/**
 * The calendar's DAV handler in this process over an in-memory store, with the bench's
 * events and requests, no HTTP: what a request costs in CPU alone, and where (run with
 * `node --cpu-prof bench/calendar/inproc.ts`). A profiling aid beside run.ts.
 *
 *   node [--cpu-prof] bench/calendar/inproc.ts [--events 10000] [--requests 300]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../../platform/log.ts';
import { CalendarSettingsSchema } from '../../services/calendar/config.ts';
import { createDavHandler } from '../../services/calendar/dav/handler.ts';
import { validateCalendarObject } from '../../services/calendar/ical/calendar-object.ts';
import { memoryStoreClient } from '../../services/calendar/store/memory-client.ts';
import { Repository } from '../../services/calendar/store/repository.ts';
import { prng } from '../../test/support/prng.ts';
import { SPAN_DAYS, SPAN_START, benchEvents } from './events.ts';

const { values } = parseArgs({ options: { events: { type: 'string' }, requests: { type: 'string' } } });
const n = Number(values.events ?? 10_000);
const count = Number(values.requests ?? 300);
const events = benchEvents(n);
const client = memoryStoreClient();
await client.batch('calendar', [{ path: 'kith/bench/collection.json', content: JSON.stringify({ type: 'calendar', props: {}, components: ['VEVENT', 'VTODO', 'VJOURNAL'] }) }], { message: 'c' });
for (let i = 0; i < n; i += 1000) await client.batch('calendar', events.slice(i, i + 1000).map((e) => ({ path: `kith/bench/items/${e.name}`, content: e.text })), { message: 'e' });
const dataDir = mkdtempSync(path.join(tmpdir(), 'kith-cal-inproc-'));
const log = createLogger({ service: 'calendar', level: 'warn' });
const repo = new Repository({ client, dataDir, log, summarize: (_t, text) => { const v = validateCalendarObject(text); return v.ok ? v.value : undefined; } });
let t = performance.now();
await repo.open();
// With --expose-gc: the live heap (the in-memory store holds its own copy of the files).
(globalThis as { gc?: () => void }).gc?.();
process.stdout.write(`index of ${n} events: ${(performance.now() - t).toFixed(0)} ms, heap ${(process.memoryUsage().heapUsed / 1048576).toFixed(1)} MiB\n`);
const cfg = CalendarSettingsSchema.parse({ users: { kith: { password: 'owner-token' } } });
const dav = createDavHandler({ repo, config: () => cfg });
const utc = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
const rand = prng(1);
const bodies = {
  query: () => {
    const from = SPAN_START + Math.floor(rand() * (SPAN_DAYS - 7)) * 86_400_000;
    return `<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="${utc(from)}" end="${utc(from + 7 * 86_400_000)}"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`;
  },
  multiget: () => `<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop>${Array.from({ length: 20 }, () => `<D:href>/dav/kith/bench/${encodeURIComponent(events[Math.floor(rand() * n)]!.name)}</D:href>`).join('')}</C:calendar-multiget>`,
  sync: () => `<D:sync-collection xmlns:D="DAV:"><D:sync-token>http://kith.invalid/ns/sync/${repo.head}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`,
  fullsync: () => '<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>',
};
for (const [name, body] of Object.entries(bodies)) {
  const reps = name === 'fullsync' ? 5 : count;
  t = performance.now();
  let bytes = 0;
  for (let i = 0; i < reps; i++) {
    const r = await dav.handle({ method: 'REPORT', path: '/dav/kith/bench/', headers: { depth: name === 'query' || name === 'multiget' ? '1' : '0' }, body: body(), user: 'kith' });
    if (r.status !== 207) throw new Error(`${name}: ${r.status}`);
    for (const p of [r.body ?? ''].flat()) bytes += p.length;
  }
  const ms = (performance.now() - t) / reps;
  process.stdout.write(`${name.padEnd(9)} ${ms.toFixed(2)} ms/request (${(bytes / reps / 1024).toFixed(1)} KiB)\n`);
}
process.stdout.write(`heap ${(process.memoryUsage().heapUsed / 1048576).toFixed(1)} MiB, rss ${(process.memoryUsage().rss / 1048576).toFixed(1)} MiB\n`);
await repo.stop();
rmSync(dataDir, { recursive: true, force: true });
