/**
 * Fuzzing the entry points a client reaches: the XML parser, the iCalendar and vCard
 * validators, and the whole DAV handler (over an in-memory store) with mutated bodies,
 * methods, headers and paths. Nothing may throw past the handler, no answer may be a 5xx,
 * and every refusal must leave the store unchanged.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../platform/log.ts';
import { prng } from '../../test/support/prng.ts';
import { CalendarSettingsSchema } from './config.ts';
import { createDavHandler } from './dav/handler.ts';
import { XmlError, parseXml } from './dav/xml.ts';
import { validateCalendarObject } from './ical/calendar-object.ts';
import { memoryStoreClient } from './store/memory-client.ts';
import { Repository } from './store/repository.ts';
import { validateCard } from './vcard/vcard.ts';

const XML_SEEDS = [
  '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:displayname/></D:prop></D:propfind>',
  '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data><C:expand start="20260101T000000Z" end="20260201T000000Z"/></C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20260101T000000Z" end="20260201T000000Z"/><C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes">x</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>',
  '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set><D:remove><D:prop><D:foo/></D:prop></D:remove></D:propertyupdate>',
  '<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>',
  '<CR:addressbook-query xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:prop><CR:address-data/></D:prop><CR:filter test="allof"><CR:prop-filter name="FN"><CR:text-match match-type="equals">a</CR:text-match></CR:prop-filter></CR:filter><CR:limit><CR:nresults>1</CR:nresults></CR:limit></CR:addressbook-query>',
  '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:time-range start="20260101T000000Z" end="20260201T000000Z"/></C:free-busy-query>',
  '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data><C:comp name="VCALENDAR"><C:prop name="VERSION"/><C:comp name="VEVENT"><C:prop name="UID" novalue="yes"/><C:allcomp/></C:comp></C:comp><C:limit-freebusy-set start="20260101T000000Z" end="20260201T000000Z"/></C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter><C:timezone>BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nEND:VCALENDAR</C:timezone></C:calendar-query>',
];
const ICS_SEED = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:f1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Paris:20260105T100000\r\nDTEND;TZID=Europe/Paris:20260105T110000\r\nRRULE:FREQ=WEEKLY;COUNT=5;BYDAY=MO\r\nEXDATE;TZID=Europe/Paris:20260112T100000\r\nSUMMARY:fuzz\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:f1\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID;TZID=Europe/Paris:20260119T100000\r\nDTSTART:20260120T100000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
const VCF_SEED = 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Fuzz Card\r\nN:Card;Fuzz;;;\r\nEMAIL;TYPE=home:f@example.org\r\nEND:VCARD\r\n';
const PIECES = ['<', '>', '&', '&amp;', '&#0;', '&#x110000;', '"', "'", '\u0000', '\uffff', '\r\n', ':', ';', '=', 'BEGIN:VEVENT\r\n', 'END:VCALENDAR', 'RRULE:FREQ=SECONDLY\r\n', 'RRULE:FREQ=DAILY;COUNT=99999999\r\n', 'DTSTART:99999999T999999Z\r\n', 'TZID=', '<!DOCTYPE x>', '<![CDATA[', ']]>', 'xmlns:a="DAV:"', '<D:x>', '</D:x>', 'é', '\ud800', '%00', '../'];

function mutate(rand: () => number, s: string): string {
  let out = s;
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rand() * (out.length + 1));
    const op = rand();
    if (op < 0.3) out = out.slice(0, at) + PIECES[Math.floor(rand() * PIECES.length)] + out.slice(at);
    else if (op < 0.55) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(rand() * 20));
    else if (op < 0.8) out = out.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + out.slice(at + 1);
    else out = out.slice(0, at) + out.slice(Math.floor(rand() * out.length));
  }
  return out;
}

describe('fuzz', () => {
  it('the XML parser only ever returns a tree or an XmlError', () => {
    const rand = prng(1);
    for (let i = 0; i < 3000; i++) {
      const input = mutate(rand, XML_SEEDS[i % XML_SEEDS.length]!);
      try {
        parseXml(input);
      } catch (err) {
        expect(err).toBeInstanceOf(XmlError);
      }
    }
  });

  it('the iCalendar and vCard validators never throw', () => {
    const rand = prng(2);
    for (let i = 0; i < 1500; i++) {
      const v = validateCalendarObject(mutate(rand, ICS_SEED), 1000);
      expect(typeof v.ok).toBe('boolean');
      const c = validateCard(mutate(rand, VCF_SEED));
      expect(typeof c.ok).toBe('boolean');
    }
  });

  it('the DAV handler answers every mutated request without a 5xx, and refusals change nothing', async () => {
    const client = memoryStoreClient();
    const log = createLogger({ service: 'calendar', level: 'error' });
    const repo = new Repository({ client, dataDir: mkdtempSync(path.join(tmpdir(), 'kith-cal-fuzz-')), log, summarize: (type, text) => {
      if (type === 'calendar') {
        const v = validateCalendarObject(text);
        return v.ok ? v.value : undefined;
      }
      const v = validateCard(text);
      return v.ok ? { uid: v.value.uid } : undefined;
    } });
    await repo.open();
    const cfg = CalendarSettingsSchema.parse({ users: { kith: { password: 'owner-token' }, eve: { password: 'owner-token' } }, limits: { maxInstances: 500 } });
    const dav = createDavHandler({ repo, config: () => cfg });
    const ok = (r: { status: number }) => expect(r.status).toBeLessThan(500);
    ok(await dav.handle({ method: 'MKCALENDAR', path: '/dav/kith/cal/', headers: {}, body: '', user: 'kith' }));
    ok(await dav.handle({ method: 'MKCOL', path: '/dav/kith/book/', headers: {}, body: '<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>', user: 'kith' }));
    ok(await dav.handle({ method: 'PUT', path: '/dav/kith/cal/seed.ics', headers: { 'content-type': 'text/calendar' }, body: ICS_SEED, user: 'kith' }));
    const rand = prng(3);
    const methods = ['PROPFIND', 'REPORT', 'PROPPATCH', 'PUT', 'GET', 'DELETE', 'MOVE', 'COPY', 'MKCOL', 'MKCALENDAR', 'OPTIONS', 'HEAD', 'LOCK', 'PATCH'];
    const paths = ['/dav/', '/dav/kith/', '/dav/kith/cal/', '/dav/kith/cal/seed.ics', '/dav/kith/book/', '/dav/kith/book/c.vcf', '/dav/eve/', '/dav/kith/cal/x.ics'];
    for (let i = 0; i < 600; i++) {
      const method = methods[Math.floor(rand() * methods.length)]!;
      const p = rand() < 0.8 ? paths[Math.floor(rand() * paths.length)]! : mutate(rand, paths[Math.floor(rand() * paths.length)]!);
      const seed = method === 'PUT' ? (p.includes('book') ? VCF_SEED : ICS_SEED) : XML_SEEDS[Math.floor(rand() * XML_SEEDS.length)]!;
      const body = rand() < 0.2 ? seed : mutate(rand, seed);
      const headers: Record<string, string | undefined> = { depth: ['0', '1', 'infinity', 'x', undefined][Math.floor(rand() * 5)], 'content-type': method === 'PUT' ? (p.includes('book') ? 'text/vcard' : 'text/calendar') : 'application/xml' };
      if (rand() < 0.2) headers['if-match'] = mutate(rand, '"abc"');
      if (rand() < 0.2) headers.destination = mutate(rand, '/dav/kith/cal/moved.ics');
      const before = client.commits.length;
      const r = await dav.handle({ method, path: p, headers, body, user: rand() < 0.9 ? 'kith' : 'eve' });
      expect(r.status, `${method} ${p}`).toBeLessThan(500);
      if (r.status >= 400) expect(client.commits.length, `${method} ${p} -> ${r.status}`).toBe(before);
    }
  });
});
