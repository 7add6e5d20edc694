/**
 * Storage and calendar as the supervisor runs them, for the calendar's real-client suites:
 * each its sealed bundle from dist/ in its own process, the calendar's link to storage
 * and the owner's password provisioned first (platform/links.ts), the default config
 * seeded. The calendar can be restarted on the same data.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { provisionOwnerAccess, provisionStorageLink } from '../../platform/links.ts';
import calendar from '../../services/calendar/main.ts';
import { loadOrCreateToken } from '../../services/storage/auth.ts';
import { storageConfig } from '../../services/storage/config/schema.ts';
import { startBundle, tempDir, type ServiceProcess } from '../platform/helpers.ts';
import { freeTcpPort } from '../support/ports.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface CalendarStack {
  dir: string;
  token: string;
  /** http://127.0.0.1:PORT (no path) */
  base: string;
  /** http://127.0.0.1:PORT/dav/ */
  dav: string;
  storageUrl: string;
  calendar: ServiceProcess;
  storage: ServiceProcess;
  configRoot: string;
  restartCalendar(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCalendarStack(opts: { calendarYaml?: string } = {}): Promise<CalendarStack> {
  const dir = tempDir('kith-cal-');
  const configRoot = path.join(dir, 'config');
  const files: Record<string, string> = { ...storageConfig.defaults, ...calendar.config.defaults };
  if (opts.calendarYaml) files['calendar/calendar.yaml'] = opts.calendarYaml;
  for (const [rel, text] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(configRoot, rel)), { recursive: true });
    await fsp.writeFile(path.join(configRoot, rel), text);
  }
  const storageData = path.join(dir, 'data', 'storage');
  const calData = path.join(dir, 'data', 'calendar');
  await fsp.mkdir(storageData, { recursive: true });
  const token = await loadOrCreateToken(storageData);
  const [sPort, sHealth, sHttps, cPort, cHealth] = await Promise.all([freeTcpPort(), freeTcpPort(), freeTcpPort(), freeTcpPort(), freeTcpPort()]);
  const storageUrl = `http://127.0.0.1:${sPort}`;
  await provisionStorageLink({ service: 'calendar', needs: calendar.needs!, serviceDataDir: calData, storageDataDir: storageData, storageUrl });
  await provisionOwnerAccess(calData, token);
  const storage = await startBundle(path.join(repoRoot, 'dist/storage.mjs'), ['--config', configRoot, '--data', storageData, '--listen', `http=127.0.0.1:${sPort}`, '--listen', `health=127.0.0.1:${sHealth}`, '--listen', `https=127.0.0.1:${sHttps}`]);
  const startCal = async () => {
    const p = await startBundle(path.join(repoRoot, 'dist/calendar.mjs'), ['--config', configRoot, '--data', calData, '--listen', `http=127.0.0.1:${cPort}`, '--listen', `health=127.0.0.1:${cHealth}`, '--listen', 'https=127.0.0.1:0']);
    await p.waitFor((r) => r.msg === 'store opened', 30_000);
    return p;
  };
  const stack: CalendarStack = {
    dir,
    token,
    base: `http://127.0.0.1:${cPort}`,
    dav: `http://127.0.0.1:${cPort}/dav/`,
    storageUrl,
    storage,
    calendar: await startCal(),
    configRoot,
    async restartCalendar() {
      await stack.calendar.stop();
      stack.calendar = await startCal();
    },
    async stop() {
      await stack.calendar.stop();
      await storage.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
  return stack;
}
