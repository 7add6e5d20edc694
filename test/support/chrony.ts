/** chronyd as a test's NTP server: serving its own clock at stratum 8, never setting the host's (run it with -x). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `dir`/chrony.conf for a server bound to `bind` that answers `allow`; returns its path. */
export function writeChronyConf(dir: string, bind: string, allow: string): string {
  const file = join(dir, 'chrony.conf');
  writeFileSync(file, ['local stratum 8', `allow ${allow}`, `bindaddress ${bind}`, 'port 123', 'cmdport 0', `pidfile ${dir}/chronyd.pid`, `driftfile ${dir}/drift`, ''].join('\n'));
  return file;
}
