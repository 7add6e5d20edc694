/**
 * RFC 6764 discovery records: the calendar commits `_caldavs._tcp` / `_carddavs._tcp` SRV
 * and TXT records into the owner's zone file in config.git through its link (as DNS
 * dynamic updates do), validated like any push; kith DNS then serves them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCalendarStack, type CalendarStack } from './calendar-stack.ts';

describe('calendar discovery records', () => {
  let s: CalendarStack;
  beforeAll(async () => {
    s = await startCalendarStack({ calendarYaml: 'users:\n  kith: {password: owner-token}\npublish: {zone: home.arpa, target: kith, port: 8843}\n' });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('commits SRV and TXT records for CalDAV and CardDAV to dns/zones/home.arpa.zone', async () => {
    await s.calendar.waitFor((l) => l.msg === 'discovery records published', 20_000);
    const res = await fetch(`${s.storageUrl}/store/config/dns/zones/home.arpa.zone`, { headers: { authorization: `Bearer ${s.token}` } });
    expect(res.status).toBe(200);
    const zone = await res.text();
    expect(zone).toContain('_caldavs._tcp.home.arpa. 3600 IN SRV 0 1 8843 kith.home.arpa.');
    expect(zone).toContain('_carddavs._tcp.home.arpa. 3600 IN SRV 0 1 8843 kith.home.arpa.');
    expect(zone).toContain('_caldavs._tcp.home.arpa. 3600 IN TXT "path=/dav/"');
    const log = await (await fetch(`${s.storageUrl}/store/config?history&limit=5`, { headers: { authorization: `Bearer ${s.token}` } })).json() as { entries: Array<{ message: string; author: { name: string } }> };
    expect(log.entries[0]).toMatchObject({ author: { name: 'calendar' } });
    expect(log.entries[0]!.message).toContain('Calendar discovery records');
  });
});
