/**
 * The calendar with real clients from Debian over real sockets: python3-caldav (a
 * calendar with a weekly event across the DST change, an exception and a moved instance;
 * time-range query; stale ETag; delete; an address book with contacts), a restart between
 * steps that loses nothing and keeps the sync token valid, vdirsyncer syncing both ways,
 * and a second user who can neither read nor write the first one's collections.
 * Storage and calendar run as their sealed bundles (test/e2e/calendar-stack.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../platform/passwords.ts';
import { startCalendarStack, type CalendarStack } from './calendar-stack.ts';

const SCRIPT = path.join(import.meta.dirname, 'calendar-clients', 'caldav_acceptance.py');

function caldav(stack: CalendarStack, step: string, ...extra: string[]): Record<string, unknown> {
  const r = spawnSync('/usr/bin/python3', [SCRIPT, stack.dav, 'kith', stack.token, step, ...extra], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`caldav_acceptance.py ${step} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

const ALICE_PASSWORD = 'alice-secret-password';

const EXPECTED_INSTANCES = [
  ['2026-03-02T09:00Z', 'Standup'], // CET: 10:00 Berlin = 09:00 UTC
  ['2026-03-09T09:00Z', 'Standup'],
  // 16 March: EXDATE
  ['2026-03-23T09:00Z', 'Standup'],
  ['2026-03-31T13:00Z', 'Standup (moved)'], // the 30 March instance, moved; CEST from 29 March
  ['2026-04-03', 'Holiday'],
  ['2026-04-06T08:00Z', 'Standup'], // CEST: 10:00 Berlin = 08:00 UTC
];

describe('calendar with real clients', () => {
  let stack: CalendarStack;
  beforeAll(async () => {
    const yaml = `users:\n  kith:\n    password: owner-token\n  alice:\n    passwordHash: "${hashPassword(ALICE_PASSWORD, { N: 1024 })}"\nshares:\n  - { owner: kith, collection: family, with: alice, access: read }\n  - { owner: kith, collection: team, with: alice, access: read-write }\n`;
    stack = await startCalendarStack({ calendarYaml: yaml });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  let token = '';
  it('python3-caldav: calendar, recurring event across DST with an exception and a moved instance, time-range query, stale ETag, delete', () => {
    const out = caldav(stack, 'create');
    expect(out.calendars).toContain(`${stack.dav}kith/work/`);
    expect(out.march_april).toEqual(EXPECTED_INSTANCES);
    expect(out.only_april_first_week).toEqual([['2026-03-31T13:00Z', 'Standup (moved)'], ['2026-04-03', 'Holiday']]);
    expect(out.etag_update).toEqual([204, 412]);
    expect(out.later_summary).toBe('Later (edited)');
    expect(out.deleted).toBe(true);
    token = out.sync_token as string;
    expect(token).toMatch(/^http:\/\/kith\.invalid\/ns\/sync\/[0-9a-f]{40}$/);
  });

  it('a restart loses nothing, and the sync token from before still works', async () => {
    await stack.restartCalendar();
    const out = caldav(stack, 'after', token);
    expect(out.march_april).toEqual(EXPECTED_INSTANCES);
    expect(out.changed_since_token).toEqual([]);
    expect(out.changed_after_write).toEqual(['after-restart%40kith.test.ics']);
    expect(out.bad_token).not.toBe('accepted');
  });

  it('python3-caldav: an address book with contacts (query, multiget, stale ETag, delete)', () => {
    const out = caldav(stack, 'contacts');
    expect(out).toEqual({ mkcol: 201, put: [201, 201], query_status: 207, query_hits: ['ada.vcf'], multiget_has_alan: true, multiget_404: true, etag_update: [204, 412], delete: 204, after_delete: 404 });
  });

  it('an invalid sync token gets 403 with the valid-sync-token precondition', async () => {
    const res = await fetch(`${stack.dav}kith/work/`, {
      method: 'REPORT',
      headers: { authorization: `Basic ${Buffer.from(`kith:${stack.token}`).toString('base64')}`, depth: '0', 'content-type': 'application/xml' },
      body: `<D:sync-collection xmlns:D="DAV:"><D:sync-token>http://kith.invalid/ns/sync/${'1'.repeat(40)}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`,
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('<D:valid-sync-token/>');
  });

  it('a second user can neither read nor write the first user\'s collections, and nothing changes', async () => {
    const alice = { authorization: `Basic ${Buffer.from(`alice:${ALICE_PASSWORD}`).toString('base64')}` };
    const owner = { authorization: `Basic ${Buffer.from(`kith:${stack.token}`).toString('base64')}` };
    const before = await (await fetch(`${stack.dav}kith/work/`, { method: 'PROPFIND', headers: { ...owner, depth: '1' } })).text();
    const attempts: Array<[string, string, Record<string, string>, string?]> = [
      ['PROPFIND', `${stack.dav}kith/`, { depth: '1' }],
      ['PROPFIND', `${stack.dav}kith/work/`, { depth: '1' }],
      ['GET', `${stack.dav}kith/work/weekly-standup%40kith.test.ics`, {}],
      ['PUT', `${stack.dav}kith/work/intruder.ics`, { 'content-type': 'text/calendar' }, 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:intruder\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n'],
      ['DELETE', `${stack.dav}kith/work/`, {}],
      ['PROPPATCH', `${stack.dav}kith/work/`, {}, '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>owned</D:displayname></D:prop></D:set></D:propertyupdate>'],
      ['MKCALENDAR', `${stack.dav}kith/alices/`, {}],
      ['REPORT', `${stack.dav}kith/work/`, { depth: '1' }, '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'],
      ['MOVE', `${stack.dav}kith/work/weekly-standup%40kith.test.ics`, { destination: `${stack.dav}alice/x.ics` }],
    ];
    for (const [method, url, headers, body] of attempts) {
      const res = await fetch(url, { method, headers: { ...alice, ...headers }, ...(body ? { body } : {}) });
      expect([403, 404], `${method} ${url}`).toContain(res.status);
    }
    // Alice's own home works and shows nothing of kith's.
    const home = await fetch(`${stack.dav}alice/`, { method: 'PROPFIND', headers: { ...alice, depth: '1' } });
    expect(home.status).toBe(207);
    expect(await home.text()).not.toContain('/dav/kith/');
    const after = await (await fetch(`${stack.dav}kith/work/`, { method: 'PROPFIND', headers: { ...owner, depth: '1' } })).text();
    expect(after).toBe(before);
  });

  it('sharing: read-only and read-write collections appear in the other user\'s home and allow just that', async () => {
    const alice = { authorization: `Basic ${Buffer.from(`alice:${ALICE_PASSWORD}`).toString('base64')}` };
    const owner = { authorization: `Basic ${Buffer.from(`kith:${stack.token}`).toString('base64')}` };
    const ev = (uid: string) => `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T100000Z\r\nSUMMARY:${uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`;
    for (const c of ['family', 'team']) {
      expect((await fetch(`${stack.dav}kith/${c}/`, { method: 'MKCALENDAR', headers: owner })).status).toBe(201);
      expect((await fetch(`${stack.dav}kith/${c}/${c}.ics`, { method: 'PUT', headers: { ...owner, 'content-type': 'text/calendar' }, body: ev(c) })).status).toBe(201);
    }
    const home = await (await fetch(`${stack.dav}alice/`, { method: 'PROPFIND', headers: { ...alice, depth: '1' } })).text();
    expect(home).toContain('<D:href>/dav/alice/kith~family/</D:href>');
    expect(home).toContain('<D:href>/dav/alice/kith~team/</D:href>');
    expect(home).not.toContain('work');
    expect(await (await fetch(`${stack.dav}alice/kith~family/family.ics`, { headers: alice })).text()).toBe(ev('family'));
    expect((await fetch(`${stack.dav}kith/family/family.ics`, { headers: alice })).status).toBe(200);
    const put = (c: string, who: Record<string, string>) => fetch(`${stack.dav}alice/kith~${c}/by-alice.ics`, { method: 'PUT', headers: { ...who, 'content-type': 'text/calendar' }, body: ev(`alice-${c}`) });
    expect((await put('family', alice)).status).toBe(403);
    expect((await fetch(`${stack.dav}alice/kith~family/family.ics`, { method: 'DELETE', headers: alice })).status).toBe(403);
    expect((await put('team', alice)).status).toBe(201);
    expect((await fetch(`${stack.dav}kith/team/by-alice.ics`, { headers: owner })).status).toBe(200);
    expect((await fetch(`${stack.dav}alice/kith~team/`, { method: 'DELETE', headers: alice })).status).toBe(403);
    expect((await fetch(`${stack.dav}kith/family/by-alice.ics`, { headers: owner })).status).toBe(404);
  });

  it('vdirsyncer syncs a calendar and an address book both ways, and again after changes on both sides', async () => {
    const dir = path.join(stack.dir, 'vdirsyncer');
    mkdirSync(path.join(dir, 'status'), { recursive: true });
    const config = path.join(dir, 'config');
    const storage = (name: string, type: 'caldav' | 'carddav', ext: string) => `
[storage ${name}_remote]
type = "${type}"
url = "${stack.dav}"
username = "kith"
password = "${stack.token}"

[storage ${name}_local]
type = "filesystem"
path = "${dir}/${name}/"
fileext = "${ext}"
`;
    writeFileSync(config, `[general]
status_path = "${dir}/status/"

[pair cal]
a = "cal_remote"
b = "cal_local"
collections = ["from a", "from b"]
conflict_resolution = "a wins"

[pair card]
a = "card_remote"
b = "card_local"
collections = ["from a", "from b"]
conflict_resolution = "a wins"
${storage('cal', 'caldav', '.ics')}${storage('card', 'carddav', '.vcf')}`);
    const vds = (...args: string[]) => {
      const r = spawnSync('vdirsyncer', ['-c', config, ...args], { encoding: 'utf8', input: 'y\n'.repeat(20), timeout: 120_000 });
      if (r.status !== 0) throw new Error(`vdirsyncer ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
      expect(r.stderr).not.toMatch(/error/i);
      return r;
    };
    vds('discover');
    vds('sync');
    // Server → local: the events and contacts python3-caldav left.
    const localCal = path.join(dir, 'cal', 'work');
    const localCard = path.join(dir, 'card', 'contacts');
    const calFiles = () => readdirSync(localCal).sort();
    expect(calFiles().length).toBe(3); // weekly, holiday, after-restart
    expect(readdirSync(localCard).map((f) => readFileSync(path.join(localCard, f), 'utf8')).join('')).toContain('Ada King');

    // Local → server: a new event and a new contact written as files.
    writeFileSync(path.join(localCal, 'from-laptop.ics'), 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//laptop//EN\r\nBEGIN:VEVENT\r\nUID:from-laptop@kith.test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260501T100000Z\r\nDTEND:20260501T110000Z\r\nSUMMARY:From the laptop\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n');
    writeFileSync(path.join(localCard, 'grace.vcf'), 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:grace@kith.test\r\nFN:Grace Hopper\r\nN:Hopper;Grace;;;\r\nEND:VCARD\r\n');
    // And a change on the server meanwhile.
    const owner = { authorization: `Basic ${Buffer.from(`kith:${stack.token}`).toString('base64')}` };
    const put = await fetch(`${stack.dav}kith/work/from-phone.ics`, { method: 'PUT', headers: { ...owner, 'content-type': 'text/calendar' }, body: 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//phone//EN\r\nBEGIN:VEVENT\r\nUID:from-phone@kith.test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260502T100000Z\r\nDTEND:20260502T110000Z\r\nSUMMARY:From the phone\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' });
    expect(put.status).toBe(201);
    vds('sync');
    expect(calFiles().length).toBe(5);
    expect(calFiles().map((f) => readFileSync(path.join(localCal, f), 'utf8')).join('')).toContain('From the phone');
    const listing = await (await fetch(`${stack.dav}kith/work/`, { method: 'PROPFIND', headers: { ...owner, depth: '1' } })).text();
    expect(listing.match(/\.ics<\/D:href>/g)?.length).toBe(5);
    const cards = await (await fetch(`${stack.dav}kith/contacts/`, { method: 'REPORT', headers: { ...owner, depth: '1' }, body: '<CR:addressbook-query xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:prop><CR:address-data/></D:prop></CR:addressbook-query>' })).text();
    expect(cards).toContain('Grace Hopper');

    // Changes on both sides again: an edit on the laptop, a delete on the server.
    const laptopFile = path.join(localCal, 'from-laptop.ics');
    writeFileSync(laptopFile, readFileSync(laptopFile, 'utf8').replace('SUMMARY:From the laptop', 'SUMMARY:From the laptop, edited'));
    const phoneHref = [...listing.matchAll(/<D:href>([^<]*from-phone[^<]*)<\/D:href>/g)][0]![1]!;
    expect((await fetch(new URL(phoneHref, stack.dav), { method: 'DELETE', headers: owner })).status).toBe(204);
    vds('sync');
    expect(calFiles().length).toBe(4);
    const events = await (await fetch(`${stack.dav}kith/work/`, { method: 'REPORT', headers: { ...owner, depth: '1' }, body: '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter></C:filter></C:calendar-query>' })).text();
    expect(events).toContain('From the laptop, edited');
    expect(events).not.toContain('From the phone');
    // A last sync has nothing to do.
    const again = vds('sync');
    expect(again.stdout + again.stderr).not.toMatch(/Copying|Updating|Deleting/);
  });
});
