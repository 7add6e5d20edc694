/**
 * How long the block-list matcher takes to build and to answer, with a list the size of a
 * large public one (200k names). Prints figures only; the test beside the matcher checks
 * that the answers are right.
 *
 *   node bench/dns/blocklist.ts [--entries N] [--lookups N] [--json]
 */
import { parseArgs } from 'node:util';
import { createMatcher } from '../../services/dns/blocklist/matcher.ts';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '200000' },
    lookups: { type: 'string', default: '200000' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node bench/dns/blocklist.ts [--entries N] [--lookups N] [--json]\n\nBuilds a block-list matcher of N names and times N lookups (half hits, half misses).');
  process.exit(0);
}
const entries = Number(values.entries);
const lookups = Number(values.lookups);
const domains = Array.from({ length: entries }, (_, i) => `host${i}.ads${i % 997}.example`);
const heapBefore = process.memoryUsage().heapUsed;
const t0 = performance.now();
const matcher = createMatcher([{ name: 'big', domains }]);
const buildMs = performance.now() - t0;
const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
const t1 = performance.now();
let hits = 0;
for (let i = 0; i < lookups / 2; i++) if (matcher.lookup(`a.b.host${(i * 2) % entries}.ads${((i * 2) % entries) % 997}.example`)) hits++;
for (let i = 0; i < lookups / 2; i++) if (matcher.lookup(`www.site${i}.example.com`)) hits++;
const lookMs = performance.now() - t1;
const result = { entries, lookups, hits, buildMs: Math.round(buildMs), lookupNsEach: Math.round((lookMs * 1e6) / lookups), heapMiB: Number(heapMiB.toFixed(1)) };
if (values.json) console.log(JSON.stringify(result));
else console.log(`block list: ${entries} names built in ${result.buildMs} ms (+${result.heapMiB} MiB heap); ${lookups} lookups at ${result.lookupNsEach} ns each (${hits} hits)`);
