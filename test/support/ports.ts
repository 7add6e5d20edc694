/** A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read the number, close). */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

export function freeTcpPort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

/** Is this port free on 127.0.0.1 for both TCP and UDP right now? */
export async function portFree(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((ok) => {
    const s = createServer();
    s.once('error', () => ok(false));
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((ok) => {
    const u = createSocket('udp4');
    u.once('error', () => ok(false));
    u.bind(port, '127.0.0.1', () => u.close(() => ok(true)));
  });
}

/**
 * A `--port-base` for `kith vm run` / `kith up` whose service ports (base + 10·slot + j, for
 * the first `slots` slots of 10) are free now. Below Linux's ephemeral range (32768+),
 * where the ports other suites get from the OS live.
 */
export async function freePortBase(slots: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 10_000 + 10 * Math.floor(Math.random() * 2_000);
    let ok = true;
    for (let p = base; p < base + 10 * slots && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free block of ports below 32768');
}
