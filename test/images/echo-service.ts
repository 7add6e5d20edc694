/**
 * A tiny stand-in service for the image tests: answers HTTP on port 8080 with its pid,
 * its parent, whether it is sealed, and a hit counter it keeps in its data folder, so a
 * test can tell it runs inside the VM as a child of PID 1, under the permission model,
 * writing to the data disk.
 */
import { createServer } from 'node:http';
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const data = args.includes('--data') ? args[args.indexOf('--data') + 1] : '/data';
const counter = join(data, 'hits');

function hit(): number {
  let n = 0;
  try { n = Number(readFileSync(counter, 'utf8')) || 0; } catch { /* first hit */ }
  // O_DSYNC (fsync is off under the permission model): the test reads the counter from
  // the disk image after the VM is killed.
  const fd = openSync(counter, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC);
  try { writeSync(fd, String(n + 1)); } finally { closeSync(fd); }
  return n + 1;
}

const server = createServer((req, res) => {
  let hits: number | string;
  try { hits = hit(); } catch (e) { hits = `error:${(e as NodeJS.ErrnoException).code}`; }
  const sealed = process.permission?.has('fs.write', '/etc') === false;
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from kith echo pid=${process.pid} ppid=${process.ppid} permission=${sealed ? 'sealed' : 'open'} hits=${hits} path=${req.url}\n`);
});
server.listen(8080, '0.0.0.0', () => process.stdout.write(`echo-service listening on 0.0.0.0:8080 pid=${process.pid}\n`));
