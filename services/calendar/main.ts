/**
 * kith calendar: CalDAV (RFC 4791) and CardDAV (RFC 6352) for phones and desktop clients,
 * with sync (RFC 6578) and discovery (RFC 6764). Every change is a commit in storage's
 * versioned store, so history is undo. Think Xandikos, sealed.
 */
import { runServiceMain } from '../../platform/runner.ts';
import { defineService } from '../../platform/service.ts';
import { calendarConfig, type CalendarConfig } from './config.ts';
import { startCalendar } from './service.ts';

const calendar = defineService<CalendarConfig>({
  name: 'calendar',
  description: 'CalDAV and CardDAV, data in the versioned store',
  listeners: {
    health: { protocol: 'http', port: 9104, description: 'health and metrics' },
    http: { protocol: 'http', port: 5232, description: 'CalDAV and CardDAV (HTTP Basic)' },
    https: { protocol: 'https', port: 8843, description: 'the same over TLS' },
  },
  config: calendarConfig,
  // Calendars and contacts live in the store's `calendar` repository; discovery records
  // are committed to the zone files; the owner signs in with the access token.
  needs: { store: ['calendar'], configWrite: ['dns/zones/'] },
  // An index of every event lives in memory: keep V8's heap near what is live (the
  // memory budget is 64 MB of RssAnon at peak, ~25 MB of which is Node itself; 10 000
  // events are ~13 MB live; with 32 the calendar stopped answering in the bench's first full
  // sync-collection of 10 000 items), rather than letting it grow with the host's RAM.
  // Not --optimize-for-size: it made a calendar-query 6× slower (bench/calendar/inproc.ts).
  nodeFlags: ['--max-semi-space-size=1', '--max-old-space-size=40'],
  start: startCalendar,
});

export default calendar;
if (import.meta.main) await runServiceMain(calendar, import.meta.url);
