/**
 * A bare advertiser for the two-namespace mDNS tests: `node mdns-advertise.ts --name kith
 * --service _kith._tcp:7300:version=1 ...`; prints each responder event as a JSON line and
 * sends its goodbyes on SIGTERM.
 */
import { parseArgs } from 'node:util';
import { Advertiser } from '../../platform/mdns/advertiser.ts';
import type { ServiceAd } from '../../platform/mdns/records.ts';

const { values } = parseArgs({ options: { name: { type: 'string' }, service: { type: 'string', multiple: true }, instance: { type: 'string', multiple: true } } });
const services = (values.service ?? []).map((spec, i): ServiceAd => {
  const [type, port, txt] = spec.split(':');
  const inst = values.instance?.[i];
  return {
    type: type!,
    port: Number(port),
    txt: Object.fromEntries((txt ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    ...(inst && inst !== '-' ? { instance: inst } : {}),
  };
});
const adv = new Advertiser({ name: values.name ?? 'kith', services, pollMs: 500, onEvent: (e) => process.stdout.write(JSON.stringify(e) + '\n') });
await adv.start();
process.once('SIGTERM', () => void adv.stop().then(() => { process.stdout.write(JSON.stringify({ kind: 'exit' }) + '\n'); process.exit(0); }));
