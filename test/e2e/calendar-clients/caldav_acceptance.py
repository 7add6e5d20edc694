"""python3-caldav (Debian) against the kith calendar: the acceptance steps of issue 13.

Usage: caldav_acceptance.py URL USER PASSWORD STEP
  STEP = create   make a calendar, save events, query, stale ETag, delete
         after    (after a restart) everything from `create` is still there
         contacts an address book with contacts (CardDAV through the client's requests)
Prints one JSON object with what it saw; the vitest suite asserts on it.
"""
import json
import sys
from datetime import datetime, timezone

import caldav
from caldav.lib import error

URL, USER, PASSWORD, STEP = sys.argv[1:5]
client = caldav.DAVClient(url=URL, username=USER, password=PASSWORD)
out = {}

# Mondays 10:00 Europe/Berlin from 2 March 2026, six times: 16 March excluded, the
# 30 March one (after the DST change on 29 March) moved to Tuesday 31 March 15:00.
WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//kith test//EN
BEGIN:VEVENT
UID:weekly-standup@kith.test
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:20260302T100000
DTEND;TZID=Europe/Berlin:20260302T103000
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6
EXDATE;TZID=Europe/Berlin:20260316T100000
SUMMARY:Standup
END:VEVENT
BEGIN:VEVENT
UID:weekly-standup@kith.test
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20260330T100000
DTSTART;TZID=Europe/Berlin:20260331T150000
DTEND;TZID=Europe/Berlin:20260331T153000
SUMMARY:Standup (moved)
END:VEVENT
END:VCALENDAR
"""

ALLDAY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//kith test//EN
BEGIN:VEVENT
UID:holiday@kith.test
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20260403
DTEND;VALUE=DATE:20260404
SUMMARY:Holiday
END:VEVENT
END:VCALENDAR
"""

LATER = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//kith test//EN
BEGIN:VEVENT
UID:later@kith.test
DTSTAMP:20260101T000000Z
DTSTART:20260601T120000Z
DTEND:20260601T130000Z
SUMMARY:Later
END:VEVENT
END:VCALENDAR
"""


def body_of(r):
    return r.raw.decode() if isinstance(r.raw, bytes) else r.raw


def utc(dt):
    if isinstance(dt, datetime):
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    return dt.isoformat()


def instances(cal, start, end):
    found = cal.search(start=start, end=end, event=True, expand=True)
    rows = []
    for ev in found:
        for comp in ev.icalendar_instance.walk("VEVENT"):
            rows.append([utc(comp["DTSTART"].dt), str(comp["SUMMARY"])])
    return sorted(rows)


principal = client.principal()

if STEP == "create":
    cal = principal.make_calendar(name="Work", cal_id="work")
    out["calendars"] = [str(c.url) for c in principal.calendars()]
    weekly = cal.save_event(WEEKLY)
    cal.save_event(ALLDAY)
    later = cal.save_event(LATER)
    out["march_april"] = instances(cal, datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 4, 30, tzinfo=timezone.utc))
    out["only_april_first_week"] = instances(cal, datetime(2026, 3, 30, tzinfo=timezone.utc), datetime(2026, 4, 5, tzinfo=timezone.utc))
    # Update with a stale ETag: the second write must be refused with 412.
    later.load()
    stale = later.props.get("{DAV:}getetag") or client.request(str(later.url), "HEAD").headers.get("etag")
    r1 = client.request(str(later.url), "PUT", LATER.replace("SUMMARY:Later", "SUMMARY:Later (edited)"), {"Content-Type": "text/calendar", "If-Match": stale})
    r2 = client.request(str(later.url), "PUT", LATER.replace("SUMMARY:Later", "SUMMARY:Later (lost update)"), {"Content-Type": "text/calendar", "If-Match": stale})
    out["etag_update"] = [r1.status, r2.status]
    out["later_summary"] = str(cal.event_by_uid("later@kith.test").icalendar_instance.walk("VEVENT")[0]["SUMMARY"])
    later = cal.event_by_uid("later@kith.test")
    later.delete()
    try:
        cal.event_by_uid("later@kith.test")
        out["deleted"] = False
    except error.NotFoundError:
        out["deleted"] = True
    token = cal.objects_by_sync_token(load_objects=False).sync_token
    out["sync_token"] = token
elif STEP == "after":
    cal = principal.calendar(cal_id="work")
    out["march_april"] = instances(cal, datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 4, 30, tzinfo=timezone.utc))
    token = sys.argv[5]
    # The token from before the restart still works: nothing changed since.
    changed = cal.objects_by_sync_token(sync_token=token, load_objects=False)
    out["changed_since_token"] = [str(o.url) for o in changed]
    cal.save_event(LATER.replace("later@", "after-restart@"))
    changed = cal.objects_by_sync_token(sync_token=token, load_objects=False)
    out["changed_after_write"] = sorted(str(o.url).rsplit("/", 1)[-1] for o in changed)
    try:
        cal.objects_by_sync_token(sync_token="http://kith.invalid/ns/sync/" + "0" * 40, load_objects=False)
        out["bad_token"] = "accepted"
    except Exception as e:  # the library raises on the 403 valid-sync-token error
        out["bad_token"] = type(e).__name__
elif STEP == "contacts":
    home = str(principal.url)
    book = home + "contacts/"
    mk = client.request(book, "MKCOL", """<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>
<D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype><D:displayname>Contacts</D:displayname>
</D:prop></D:set></D:mkcol>""", {"Content-Type": "application/xml"})
    out["mkcol"] = mk.status
    cards = {
        "ada.vcf": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ada@kith.test\r\nFN:Ada Lovelace\r\nN:Lovelace;Ada;;;\r\nEMAIL;TYPE=home:ada@example.org\r\nEND:VCARD\r\n",
        "alan.vcf": "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:alan\r\nFN:Alan Turing\r\nN:Turing;Alan;;;\r\nEMAIL:alan@example.org\r\nTEL;VALUE=uri:tel:+44-1234\r\nEND:VCARD\r\n",
    }
    etags = {}
    for name, text in cards.items():
        r = client.request(book + name, "PUT", text, {"Content-Type": "text/vcard", "If-None-Match": "*"})
        etags[name] = r.headers.get("etag")
        out.setdefault("put", []).append(r.status)
    q = client.request(book, "REPORT", """<?xml version="1.0" encoding="utf-8"?>
<CR:addressbook-query xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
<D:prop><D:getetag/><CR:address-data/></D:prop>
<CR:filter><CR:prop-filter name="FN"><CR:text-match collation="i;unicode-casemap" match-type="contains">lovelace</CR:text-match></CR:prop-filter></CR:filter>
</CR:addressbook-query>""", {"Depth": "1", "Content-Type": "application/xml"})
    out["query_status"] = q.status
    out["query_hits"] = sorted(h.split("/")[-1] for h in __import__("re").findall(r"<D:href>([^<]+)</D:href>", body_of(q)))
    m = client.request(book, "REPORT", """<?xml version="1.0" encoding="utf-8"?>
<CR:addressbook-multiget xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
<D:prop><D:getetag/><CR:address-data/></D:prop><D:href>%salan.vcf</D:href><D:href>%snobody.vcf</D:href>
</CR:addressbook-multiget>""" % (book.replace(URL.split("/dav/")[0], ""), book.replace(URL.split("/dav/")[0], "")), {"Depth": "1", "Content-Type": "application/xml"})
    out["multiget_has_alan"] = "Alan Turing" in body_of(m)
    out["multiget_404"] = "404 Not Found" in body_of(m)
    stale = client.request(book + "ada.vcf", "PUT", cards["ada.vcf"].replace("FN:Ada Lovelace", "FN:Ada King"), {"Content-Type": "text/vcard", "If-Match": etags["ada.vcf"]})
    lost = client.request(book + "ada.vcf", "PUT", cards["ada.vcf"].replace("FN:Ada Lovelace", "FN:Lost"), {"Content-Type": "text/vcard", "If-Match": etags["ada.vcf"]})
    out["etag_update"] = [stale.status, lost.status]
    out["delete"] = client.request(book + "alan.vcf", "DELETE").status
    out["after_delete"] = client.request(book + "alan.vcf", "GET").status
print(json.dumps(out))
