/**
 * The calendar's WebDAV core and its refusals over real sockets (RFC 4918 status codes
 * and precondition elements, RFC 6764 redirects, RFC 4791/6352 reports), then hostile
 * input: entity expansion, deep nesting, huge attributes, path traversal, malformed
 * iCalendar and vCard, oversized bodies (and the limit applied live from config).
 * Every refusal leaves nothing stored and the service answering.
 */
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCalendarStack, type CalendarStack } from './calendar-stack.ts';

const EVENT = (uid: string, start = '20260105T100000Z', extra = '') => `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kith test//EN\r\nBEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:${start}\r\nDURATION:PT1H\r\nSUMMARY:${uid}\r\n${extra}END:VEVENT\r\nEND:VCALENDAR\r\n`;

describe('calendar WebDAV core and hostile input', () => {
  let s: CalendarStack;
  let auth: Record<string, string>;
  const req = (method: string, p: string, headers: Record<string, string> = {}, body?: string) =>
    fetch(new URL(p, s.base), { method, headers: { ...auth, ...headers }, ...(body !== undefined ? { body } : {}), redirect: 'manual' });
  const commits = async () => (await (await fetch(`${s.storageUrl}/store/calendar?history&limit=1000`, { headers: { authorization: `Bearer ${s.token}` } })).json() as { entries: unknown[] }).entries.length;

  beforeAll(async () => {
    s = await startCalendarStack();
    auth = { authorization: `Basic ${Buffer.from(`kith:${s.token}`).toString('base64')}` };
    expect((await req('MKCALENDAR', '/dav/kith/cal/')).status).toBe(201);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('redirects /.well-known/caldav and /.well-known/carddav to the context path (RFC 6764)', async () => {
    for (const w of ['caldav', 'carddav']) {
      const r = await fetch(`${s.base}/.well-known/${w}`, { redirect: 'manual' });
      expect(r.status).toBe(301);
      expect(r.headers.get('location')).toBe('/dav/');
    }
  });

  it('asks for credentials, and refuses wrong ones', async () => {
    expect((await fetch(`${s.dav}`, { method: 'PROPFIND', headers: { depth: '0' } })).status).toBe(401);
    const wrong = await fetch(`${s.dav}`, { method: 'PROPFIND', headers: { depth: '0', authorization: `Basic ${Buffer.from('kith:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it('OPTIONS names the DAV classes', async () => {
    const r = await req('OPTIONS', '/dav/kith/cal/');
    expect(r.status).toBe(200);
    expect(r.headers.get('dav')).toMatch(/1, 3.*calendar-access.*addressbook/);
    expect(r.headers.get('allow')).toContain('REPORT');
  });

  it('PROPFIND: Depth infinity refused with propfind-finite-depth; propname; allprop; principal and home properties', async () => {
    const inf = await req('PROPFIND', '/dav/kith/', { depth: 'infinity' });
    expect(inf.status).toBe(403);
    expect(await inf.text()).toContain('<D:propfind-finite-depth/>');
    const names = await (await req('PROPFIND', '/dav/kith/cal/', { depth: '0' }, '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>')).text();
    expect(names).toContain('<CS:getctag/>');
    expect(names).toContain('<D:sync-token/>');
    const all = await (await req('PROPFIND', '/dav/kith/cal/', { depth: '0' }, '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>')).text();
    expect(all).toContain('<C:calendar/>');
    const home = await (await req('PROPFIND', '/dav/kith/', { depth: '0' }, '<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:prop><D:current-user-principal/><D:principal-collection-set/><C:calendar-home-set/><CR:addressbook-home-set/><D:quota-available-bytes/><D:quota-used-bytes/><D:nonexistent/></D:prop></D:propfind>')).text();
    expect(home).toContain('<C:calendar-home-set><D:href>/dav/kith/</D:href></C:calendar-home-set>');
    expect(home).toContain('<D:current-user-principal><D:href>/dav/kith/</D:href></D:current-user-principal>');
    expect(home).toMatch(/<D:quota-available-bytes>\d+<\/D:quota-available-bytes>/);
    expect(home).toMatch(/<D:nonexistent\/><\/D:prop><D:status>HTTP\/1.1 404 Not Found/);
  });

  it('PROPPATCH sets and removes properties; a protected one fails the whole request (403 + 424)', async () => {
    const ok = await req('PROPPATCH', '/dav/kith/cal/', {}, '<D:propertyupdate xmlns:D="DAV:" xmlns:A="http://apple.com/ns/ical/" xmlns:X="urn:x"><D:set><D:prop><D:displayname>Work &amp; play</D:displayname><A:calendar-color>#ff0000</A:calendar-color><X:dead><X:inner a="1">t</X:inner></X:dead></D:prop></D:set></D:propertyupdate>');
    expect(ok.status).toBe(207);
    expect(await ok.text()).not.toContain('403');
    const got = await (await req('PROPFIND', '/dav/kith/cal/', { depth: '0' }, '<D:propfind xmlns:D="DAV:" xmlns:A="http://apple.com/ns/ical/" xmlns:X="urn:x"><D:prop><D:displayname/><A:calendar-color/><X:dead/></D:prop></D:propfind>')).text();
    expect(got).toContain('<D:displayname>Work &amp; play</D:displayname>');
    expect(got).toContain('#ff0000');
    expect(got).toMatch(/<X:dead xmlns:X="urn:x"><X:inner xmlns:X="urn:x" a="1">t<\/X:inner><\/X:dead>/);
    const bad = await (await req('PROPPATCH', '/dav/kith/cal/', {}, '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname><D:getetag>"x"</D:getetag></D:prop></D:set></D:propertyupdate>')).text();
    expect(bad).toContain('403 Forbidden');
    expect(bad).toContain('424 Failed Dependency');
    expect(await (await req('PROPFIND', '/dav/kith/cal/', { depth: '0' }, '<D:propfind xmlns:D="DAV:"><D:prop><D:displayname/></D:prop></D:propfind>')).text()).toContain('Work &amp; play');
  });

  it('PUT / GET / HEAD / DELETE with strong ETags, If-Match and If-None-Match (412)', async () => {
    const put = await req('PUT', '/dav/kith/cal/e1.ics', { 'content-type': 'text/calendar', 'if-none-match': '*' }, EVENT('e1'));
    expect(put.status).toBe(201);
    const etag = put.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{40}"$/);
    expect((await req('PUT', '/dav/kith/cal/e1.ics', { 'content-type': 'text/calendar', 'if-none-match': '*' }, EVENT('e1'))).status).toBe(412);
    const get = await req('GET', '/dav/kith/cal/e1.ics');
    expect(get.headers.get('etag')).toBe(etag);
    expect(await get.text()).toBe(EVENT('e1'));
    expect((await req('GET', '/dav/kith/cal/e1.ics', { 'if-none-match': etag })).status).toBe(304);
    const head = await req('HEAD', '/dav/kith/cal/e1.ics');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(EVENT('e1'))));
    const upd = await req('PUT', '/dav/kith/cal/e1.ics', { 'content-type': 'text/calendar', 'if-match': etag }, EVENT('e1', '20260106T100000Z'));
    expect(upd.status).toBe(204);
    expect((await req('PUT', '/dav/kith/cal/e1.ics', { 'content-type': 'text/calendar', 'if-match': etag }, EVENT('e1', '20260107T100000Z'))).status).toBe(412);
    expect((await req('DELETE', '/dav/kith/cal/e1.ics', { 'if-match': etag })).status).toBe(412);
    expect((await req('DELETE', '/dav/kith/cal/e1.ics', { 'if-match': upd.headers.get('etag')! })).status).toBe(204);
    expect((await req('GET', '/dav/kith/cal/e1.ics')).status).toBe(404);
    expect((await req('DELETE', '/dav/kith/cal/e1.ics')).status).toBe(404);
  });

  it('answers 405, 409, 415, 403 where RFC 4918 / 4791 say so', async () => {
    expect((await req('MKCALENDAR', '/dav/kith/cal/')).status).toBe(405);
    expect((await req('PUT', '/dav/kith/cal/', { 'content-type': 'text/calendar' }, EVENT('x'))).status).toBe(405);
    expect((await req('PUT', '/dav/kith/missing/x.ics', { 'content-type': 'text/calendar' }, EVENT('x'))).status).toBe(409);
    const wrongType = await req('PUT', '/dav/kith/cal/x.ics', { 'content-type': 'application/json' }, '{}');
    expect(wrongType.status).toBe(415);
    expect((await req('MKCOL', '/dav/kith/plain/')).status).toBe(403);
    // A UID already in the collection: no-uid-conflict.
    await req('PUT', '/dav/kith/cal/u1.ics', { 'content-type': 'text/calendar' }, EVENT('dup'));
    const dup = await req('PUT', '/dav/kith/cal/u2.ics', { 'content-type': 'text/calendar' }, EVENT('dup'));
    expect(dup.status).toBe(409);
    expect(await dup.text()).toContain('<C:no-uid-conflict/>');
    // A VTODO into a VEVENT-only calendar.
    await req('MKCALENDAR', '/dav/kith/events-only/', { 'content-type': 'application/xml' }, '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>');
    const todo = await req('PUT', '/dav/kith/events-only/t.ics', { 'content-type': 'text/calendar' }, 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t1\r\nDTSTAMP:20260101T000000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n');
    expect(todo.status).toBe(403);
    expect(await todo.text()).toContain('<C:supported-calendar-component/>');
  });

  it('COPY and MOVE items (Overwrite: F gives 412)', async () => {
    await req('MKCALENDAR', '/dav/kith/other/');
    await req('PUT', '/dav/kith/cal/m1.ics', { 'content-type': 'text/calendar' }, EVENT('m1'));
    expect((await req('COPY', '/dav/kith/cal/m1.ics', { destination: `${s.base}/dav/kith/other/m1.ics` })).status).toBe(201);
    expect((await req('COPY', '/dav/kith/cal/m1.ics', { destination: `${s.base}/dav/kith/other/m1.ics`, overwrite: 'F' })).status).toBe(412);
    expect((await req('MOVE', '/dav/kith/cal/m1.ics', { destination: '/dav/kith/cal/m1-renamed.ics' })).status).toBe(201);
    expect((await req('GET', '/dav/kith/cal/m1.ics')).status).toBe(404);
    expect(await (await req('GET', '/dav/kith/cal/m1-renamed.ics')).text()).toBe(EVENT('m1'));
    expect((await req('MOVE', '/dav/kith/other/', { destination: '/dav/kith/other2/' })).status).toBe(201);
    expect((await req('GET', '/dav/kith/other2/m1.ics')).status).toBe(200);
  });

  it('calendar-query with a VTODO and VJOURNAL, multiget, free-busy-query, expand and limit-recurrence-set', async () => {
    await req('MKCALENDAR', '/dav/kith/mixed/');
    // Daily at 09:00 for ten days, the 3rd excluded, the 4th moved to 15:00 (one resource: master + override).
    const master = EVENT('daily', '20260101T090000Z', 'RRULE:FREQ=DAILY;COUNT=10\r\nEXDATE:20260103T090000Z\r\n').replace(/END:VCALENDAR\r\n$/, '');
    const override = 'BEGIN:VEVENT\r\nUID:daily\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:20260104T090000Z\r\nDTSTART:20260104T150000Z\r\nDURATION:PT1H\r\nSUMMARY:moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
    expect((await req('PUT', '/dav/kith/mixed/d.ics', { 'content-type': 'text/calendar' }, master + override)).status).toBe(201);
    await req('PUT', '/dav/kith/mixed/t.ics', { 'content-type': 'text/calendar' }, 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:todo1\r\nDTSTAMP:20260101T000000Z\r\nDUE:20260102T120000Z\r\nSUMMARY:Pay\r\nEND:VTODO\r\nEND:VCALENDAR\r\n');
    await req('PUT', '/dav/kith/mixed/j.ics', { 'content-type': 'text/calendar' }, 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VJOURNAL\r\nUID:j1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260102\r\nSUMMARY:Notes\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n');
    const q = (comp: string, start: string, end: string, data = '<C:calendar-data/>') => req('REPORT', '/dav/kith/mixed/', { depth: '1' }, `<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/>${data}</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="${comp}"><C:time-range start="${start}" end="${end}"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`).then((r) => r.text());
    expect(await q('VTODO', '20260102T000000Z', '20260103T000000Z')).toContain('t.ics');
    expect(await q('VJOURNAL', '20260102T000000Z', '20260103T000000Z')).toContain('j.ics');
    expect(await q('VJOURNAL', '20260103T000000Z', '20260104T000000Z')).not.toContain('j.ics');
    expect(await q('VEVENT', '20260103T000000Z', '20260103T235959Z')).not.toContain('d.ics'); // EXDATE
    expect(await q('VEVENT', '20260111T000000Z', '20260120T000000Z')).not.toContain('d.ics'); // after COUNT
    const expanded = await q('VEVENT', '20260103T000000Z', '20260105T000000Z', '<C:calendar-data><C:expand start="20260103T000000Z" end="20260105T000000Z"/></C:calendar-data>');
    expect(expanded.match(/BEGIN:VEVENT/g)?.length, expanded).toBe(1); // the 3rd excluded, the 4th moved to 15:00
    expect(expanded).toContain('DTSTART:20260104T150000Z');
    expect(expanded).toContain('RECURRENCE-ID:20260104T090000Z');
    expect(expanded).not.toContain('RRULE');
    const limited = await q('VEVENT', '20260107T000000Z', '20260108T000000Z', '<C:calendar-data><C:limit-recurrence-set start="20260107T000000Z" end="20260108T000000Z"/></C:calendar-data>');
    expect(limited).toContain('RRULE');
    expect(limited).not.toContain('RECURRENCE-ID');
    const multi = await (await req('REPORT', '/dav/kith/mixed/', { depth: '1' }, '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop><D:href>/dav/kith/mixed/t.ics</D:href><D:href>/dav/kith/mixed/none.ics</D:href><D:href>/dav/kith/../../etc/passwd</D:href></C:calendar-multiget>')).text();
    expect(multi).toContain('SUMMARY:Pay');
    expect(multi.match(/404 Not Found/g)?.length).toBe(2);
    const fb = await req('REPORT', '/dav/kith/mixed/', { depth: '1' }, '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:time-range start="20260103T000000Z" end="20260105T000000Z"/></C:free-busy-query>');
    expect(fb.status).toBe(200);
    const fbText = await fb.text();
    expect(fbText).toContain('FREEBUSY;FBTYPE=BUSY:20260104T150000Z/20260104T160000Z');
    expect(fbText.match(/^FREEBUSY/gm)?.length).toBe(1);
  });

  it('sync-collection: initial, incremental with a deletion, and getctag changing', async () => {
    const sync = (token: string) => req('REPORT', '/dav/kith/mixed/', { depth: '0' }, `<D:sync-collection xmlns:D="DAV:"><D:sync-token>${token}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`).then((r) => r.text());
    const first = await sync('');
    const token = /<D:sync-token>([^<]+)<\/D:sync-token>/.exec(first)![1]!;
    expect(first.match(/<D:response>/g)?.length).toBe(3);
    const ctag = async () => /<CS:getctag>([^<]+)</.exec(await (await req('PROPFIND', '/dav/kith/mixed/', { depth: '0' }, '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><CS:getctag/></D:prop></D:propfind>')).text())![1];
    const c1 = await ctag();
    await req('DELETE', '/dav/kith/mixed/j.ics');
    await req('PUT', '/dav/kith/mixed/n.ics', { 'content-type': 'text/calendar' }, EVENT('new-one'));
    expect(await ctag()).not.toBe(c1);
    const next = await sync(token);
    expect(next).toMatch(/j\.ics<\/D:href><D:status>HTTP\/1.1 404 Not Found/);
    expect(next).toContain('n.ics');
    expect(next.match(/<D:response>/g)?.length).toBe(2);
  });

  it('kith calendar history and restore: a deleted event comes back, as a new commit the calendar picks up', async () => {
    await req('PUT', '/dav/kith/cal/keep.ics', { 'content-type': 'text/calendar' }, EVENT('keep'));
    expect((await req('DELETE', '/dav/kith/cal/keep.ics')).status).toBe(204);
    const kith = (...args: string[]) => spawnSync(process.execPath, [path.resolve(import.meta.dirname, '../../installer/kith.ts'), 'calendar', ...args, '--store', s.storageUrl, '--token', s.token], { encoding: 'utf8' });
    const hist = kith('history', '--path', '/dav/kith/cal/keep.ics');
    expect(hist.status, hist.stderr).toBe(0);
    expect(hist.stdout).toMatch(/Delete kith\/cal\/keep\.ics[^\n]*by kith\n\s+delete +kith\/cal\/items\/keep\.ics/);
    expect(hist.stdout).toContain('Add kith/cal/keep.ics');
    const restore = kith('restore', '/dav/kith/cal/keep.ics');
    expect(restore.status, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/^restored kith\/cal\/items\/keep\.ics/);
    let status = 0;
    for (const end = Date.now() + 15_000; status !== 200 && Date.now() < end; ) {
      status = (await req('GET', '/dav/kith/cal/keep.ics')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect(await (await req('GET', '/dav/kith/cal/keep.ics')).text()).toBe(EVENT('keep'));
    // The restore was someone else's commit: the next client write still succeeds (the index caught up).
    expect((await req('PUT', '/dav/kith/cal/after-restore.ics', { 'content-type': 'text/calendar' }, EVENT('after-restore'))).status).toBe(201);
  });

  it('floating times are in the calendar\'s CALDAV:calendar-timezone (UTC without one); partial calendar-data: comp/prop selection and limit-freebusy-set (curl)', async () => {
    const curl = (method: string, p: string, body: string, headers: string[] = []) => {
      const type = headers.some((h) => /^content-type:/i.test(h)) ? [] : ['-H', 'content-type: application/xml; charset=utf-8'];
      const r = spawnSync('curl', ['-sS', '-X', method, '-u', `kith:${s.token}`, ...type, ...headers.flatMap((h) => ['-H', h]), '--data-binary', '@-', '-w', '\n%{http_code}', new URL(p, s.base).href], { input: body, encoding: 'utf8' });
      const i = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(i + 1)), text: r.stdout.slice(0, i) };
    };
    const put = (p: string, ics: string) => curl('PUT', p, ics, ['content-type: text/calendar']).status;
    expect((await req('MKCALENDAR', '/dav/kith/floating/', { 'content-type': 'application/xml' }, '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="VFREEBUSY"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>')).status).toBe(201);
    // 09:00 floating on 5 January: 09:00 UTC without a zone, 08:00 UTC in Berlin (CET, UTC+1).
    expect(put('/dav/kith/floating/f.ics', EVENT('float1', '20260105T090000', 'RRULE:FREQ=DAILY;COUNT=3\r\n'))).toBe(201);
    expect(put('/dav/kith/floating/d.ics', 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:day1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260110\r\nSUMMARY:all day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n')).toBe(201);
    const q = (start: string, end: string) => curl('REPORT', '/dav/kith/floating/', `<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="${start}" end="${end}"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`, ['depth: 1']).text;
    expect(q('20260105T083000Z', '20260105T090000Z')).not.toContain('f.ics');
    expect(q('20260105T090000Z', '20260105T093000Z')).toContain('f.ics');
    expect(q('20260109T230000Z', '20260110T000000Z')).not.toContain('d.ics');
    const tz = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n';
    const set = curl('PROPPATCH', '/dav/kith/floating/', `<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><C:calendar-timezone><![CDATA[${tz}]]></C:calendar-timezone></D:prop></D:set></D:propertyupdate>`);
    expect(set.status).toBe(207);
    expect(set.text).not.toContain('403');
    // The same floating 09:00 is now 08:00 UTC; the all-day event starts at 23:00 UTC the day before.
    expect(q('20260105T083000Z', '20260105T090000Z')).toContain('f.ics');
    expect(q('20260105T090000Z', '20260105T093000Z')).not.toContain('f.ics');
    expect(q('20260107T080000Z', '20260107T081500Z')).toContain('f.ics');
    expect(q('20260109T230000Z', '20260110T000000Z')).toContain('d.ics');
    const expanded = curl('REPORT', '/dav/kith/floating/', '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data><C:expand start="20260106T000000Z" end="20260107T000000Z"/></C:calendar-data></D:prop><D:href>/dav/kith/floating/f.ics</D:href></C:calendar-multiget>').text;
    expect(expanded).toContain('DTSTART:20260106T080000Z');
    // A query's own CALDAV:timezone wins over the calendar's (RFC 4791 §9.8): UTC again.
    const utcTz = tz.replace(/TZID:Europe\/Berlin[\s\S]*END:VTIMEZONE/, 'TZID:UTC\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000\r\nEND:STANDARD\r\nEND:VTIMEZONE');
    const withTz = curl('REPORT', '/dav/kith/floating/', `<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20260105T090000Z" end="20260105T093000Z"/></C:comp-filter></C:comp-filter></C:filter><C:timezone><![CDATA[${utcTz}]]></C:timezone></C:calendar-query>`, ['depth: 1']).text;
    expect(withTz).toContain('f.ics');

    // Partial retrieval (§9.6.1): only UID and SUMMARY of the VEVENT, VERSION of the VCALENDAR, DTSTART with no value.
    const partial = curl('REPORT', '/dav/kith/floating/', '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data><C:comp name="VCALENDAR"><C:prop name="VERSION"/><C:comp name="VEVENT"><C:prop name="UID"/><C:prop name="SUMMARY"/><C:prop name="DTSTART" novalue="yes"/></C:comp></C:comp></C:calendar-data></D:prop><D:href>/dav/kith/floating/f.ics</D:href></C:calendar-multiget>');
    expect(partial.status).toBe(207);
    expect(partial.text).toContain('VERSION:2.0');
    expect(partial.text).toContain('UID:float1');
    expect(partial.text).toContain('SUMMARY:float1');
    expect(partial.text).toMatch(/DTSTART[^\r\n]*:\r\n/);
    expect(partial.text).not.toContain('RRULE');
    expect(partial.text).not.toContain('PRODID');
    expect(partial.text).not.toContain('DTSTAMP');
    const allprop = curl('REPORT', '/dav/kith/floating/', '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data><C:comp name="VCALENDAR"><C:comp name="VEVENT"><C:allprop/></C:comp></C:comp></C:calendar-data></D:prop><D:href>/dav/kith/floating/f.ics</D:href></C:calendar-multiget>').text;
    expect(allprop).toContain('RRULE:FREQ=DAILY;COUNT=3');
    expect(allprop).not.toContain('VERSION');
    expect(curl('REPORT', '/dav/kith/floating/', '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data><C:comp name="VEVENT"/></C:calendar-data></D:prop><D:href>/dav/kith/floating/f.ics</D:href></C:calendar-multiget>').status).toBe(400);

    // limit-freebusy-set (§9.6.7): only the FREEBUSY periods that overlap the range.
    expect(put('/dav/kith/floating/fb.ics', 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VFREEBUSY\r\nUID:fb1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\nDTEND:20260201T000000Z\r\nFREEBUSY:20260105T100000Z/20260105T110000Z,20260120T100000Z/20260120T110000Z\r\nFREEBUSY;FBTYPE=BUSY-TENTATIVE:20260125T100000Z/PT1H\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n')).toBe(201);
    const fb = curl('REPORT', '/dav/kith/floating/', '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data><C:limit-freebusy-set start="20260101T000000Z" end="20260110T000000Z"/></C:calendar-data></D:prop><D:href>/dav/kith/floating/fb.ics</D:href></C:calendar-multiget>').text;
    expect(fb).toContain('20260105T100000Z/20260105T110000Z');
    expect(fb).not.toContain('20260120T100000Z');
    expect(fb).not.toContain('BUSY-TENTATIVE');
  });

  it('the store grants the calendar its repository only; batch writes are one commit, conditional on the head', async () => {
    const link = JSON.parse(await fsp.readFile(path.join(s.dir, 'data', 'calendar', 'links', 'storage.json'), 'utf8')) as { url: string; token: string };
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    expect((await fetch(`${link.url}/store/calendar?list`, { headers: as(link.token) })).status).toBe(200);
    // Every service may read config (it is what they run on); no other repository.
    expect((await fetch(`${link.url}/store/config?list`, { headers: as(link.token) })).status).toBe(200);
    expect((await fetch(`${link.url}/store/other?list`, { headers: as(link.token) })).status).toBe(403);
    const post = (body: string, headers: Record<string, string> = {}) => fetch(`${link.url}/store/calendar?batch`, { method: 'POST', headers: { ...as(s.token), 'content-type': 'application/json', ...headers }, body });
    expect((await post('{not json')).status).toBe(400);
    expect((await post(JSON.stringify({ changes: [] }))).status).toBe(400);
    expect((await post(JSON.stringify({ changes: [{ path: 'x/y' }] }))).status).toBe(400);
    expect((await post(JSON.stringify({ changes: [{ path: 'kith/z/collection.json', delete: true }] }), { 'if-match': `"${'0'.repeat(40)}"` })).status).toBe(412);
    expect((await fetch(`${link.url}/store/calendar/kith/cal/collection.json`, { method: 'POST', headers: as(s.token), body: '{}' })).status).toBe(405);
  });

  it('refuses hostile XML: entity expansion, deep nesting, huge attributes, not XML — 400 and nothing changed', async () => {
    const before = await commits();
    const bombs = [
      '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&c;</D:displayname></D:prop></D:propfind>',
      '<?xml version="1.0"?><!DOCTYPE d SYSTEM "file:///etc/passwd"><D:propfind xmlns:D="DAV:"/>',
      '<D:propfind xmlns:D="DAV:">' + '<D:x>'.repeat(5000) + '</D:x>'.repeat(5000) + '</D:propfind>',
      `<D:propfind xmlns:D="DAV:" a="${'x'.repeat(100_000)}"/>`,
      '<D:propfind xmlns:D="DAV:"><D:prop>&undefined;</D:prop></D:propfind>',
      'this is not xml',
      '<D:propfind xmlns:D="DAV:"><D:prop></D:propfind>',
    ];
    for (const body of bombs) {
      const r = await req('PROPFIND', '/dav/kith/cal/', { depth: '0', 'content-type': 'application/xml' }, body);
      expect(r.status, body.slice(0, 60)).toBe(400);
      expect(await r.text()).toContain('<K:reason');
      const pp = await req('PROPPATCH', '/dav/kith/cal/', { 'content-type': 'application/xml' }, body);
      expect(pp.status).toBe(400);
    }
    expect(await commits()).toBe(before);
  });

  it('refuses path traversal and odd names in hrefs', async () => {
    const before = await commits();
    for (const p of ['/dav/kith/cal/..%2F..%2Fstorage%2Faccess-token', '/dav/kith/cal/%2e%2e', '/dav/kith/cal/.hidden.ics', '/dav/kith/cal/a%00b.ics', '/dav/kith/cal/a%5Cb.ics', '/dav/kith//x.ics', '/dav/%ZZ/']) {
      const r = await req('PUT', p, { 'content-type': 'text/calendar' }, EVENT('trav'));
      // (fetch itself folds %2e%2e into '..' and the '..' away, so that one arrives as the home: 405)
      expect([400, 404, 405], p).toContain(r.status);
    }
    const dest = await req('COPY', '/dav/kith/cal/u1.ics', { destination: '/dav/kith/cal/../../alice/x.ics' });
    expect([400, 404, 409]).toContain(dest.status);
    expect(await commits()).toBe(before);
  });

  it('refuses malformed iCalendar and vCard with 400 and the reason, and stores nothing', async () => {
    await req('MKCOL', '/dav/kith/book/', { 'content-type': 'application/xml' }, '<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>');
    const before = await commits();
    const bad: Array<[string, string, string, RegExp]> = [
      ['/dav/kith/cal/b1.ics', 'text/calendar', 'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2026\r\nEND:VCALENDAR\r\n', /valid-calendar-data/],
      ['/dav/kith/cal/b2.ics', 'text/calendar', EVENT('nouid').replace('UID:nouid\r\n', ''), /UID/],
      ['/dav/kith/cal/b3.ics', 'text/calendar', EVENT('a') + EVENT('b'), /one VCALENDAR/],
      ['/dav/kith/cal/b4.ics', 'text/calendar', EVENT('m').replace('VERSION:2.0', 'VERSION:2.0\r\nMETHOD:REQUEST'), /METHOD/],
      ['/dav/kith/cal/b5.ics', 'text/calendar', EVENT('r', '20260101T000000Z', 'RRULE:FREQ=SOMETIMES\r\n'), /./],
      ['/dav/kith/cal/b6.ics', 'text/calendar', 'not a calendar', /BEGIN:VCALENDAR/],
      ['/dav/kith/book/c1.vcf', 'text/vcard', 'BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No Uid\r\nEND:VCARD\r\n', /UID/],
      ['/dav/kith/book/c2.vcf', 'text/vcard', 'BEGIN:VCARD\r\nVERSION:2.1\r\nUID:x\r\nFN:Old\r\nEND:VCARD\r\n', /VERSION/],
      ['/dav/kith/book/c3.vcf', 'text/vcard', 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\n', /vCard/],
    ];
    for (const [p, type, body, reason] of bad) {
      const r = await req('PUT', p, { 'content-type': type }, body);
      const text = await r.text();
      expect([400, 403], `${p}: ${text}`).toContain(r.status);
      expect(text, p).toMatch(reason);
    }
    expect(await commits()).toBe(before);
  });

  it('refuses oversized bodies with 413, and the limit follows the config live', async () => {
    const big = EVENT('big', '20260101T000000Z', `DESCRIPTION:${'x'.repeat(70)}\r\n`.repeat(20_000));
    const r = await req('PUT', '/dav/kith/cal/big.ics', { 'content-type': 'text/calendar' }, big);
    expect(r.status).toBe(413);
    const yamlFile = path.join(s.configRoot, 'calendar', 'calendar.yaml');
    const yaml = await fsp.readFile(yamlFile, 'utf8');
    await fsp.writeFile(yamlFile, yaml.replace('maxBodyBytes: 1048576', 'maxBodyBytes: 4194304'));
    await s.calendar.waitFor((l) => l.msg === 'config applied', 10_000);
    expect((await req('PUT', '/dav/kith/cal/big.ics', { 'content-type': 'text/calendar' }, big)).status).toBe(201);
    await fsp.writeFile(yamlFile, yaml.replace('maxBodyBytes: 1048576', 'maxBodyBytes: 2048'));
    await s.calendar.waitFor((l) => l.msg === 'config applied' && l.generation === 3, 10_000);
    expect((await req('PUT', '/dav/kith/cal/small.ics', { 'content-type': 'text/calendar' }, EVENT('s', '20260101T000000Z', `DESCRIPTION:${'y'.repeat(3000)}\r\n`))).status).toBe(413);
    // Still answering.
    expect((await req('PROPFIND', '/dav/kith/', { depth: '0' })).status).toBe(207);
  });
});
