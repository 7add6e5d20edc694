/**
 * Hostile TCP clients for guard.test.ts, in their own process (so their event loop and
 * file descriptors are not the server's): keeps COUNT connections to 127.0.0.1:PORT open,
 * re-opening each 5-10 s after the server closes it (issue 17's attacker re-opened every
 * 10 s); half send nothing, half trickle a query one byte every 4 s. Spread over 100
 * loopback sources (127.0.0.2-101).
 * IPC: 'stats' -> { opened, live, closedByServer }; 'stop' closes everything and exits.
 *
 *   node services/dns/test/tcp-hostile.ts PORT COUNT
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
let stopped = false;
const live = new Set<net.Socket>();
let opened = 0;
let closedByServer = 0;
const QUERY = Buffer.from([0, 29, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77, 0x77, 7, ...Buffer.from('example'), 4, ...Buffer.from('test'), 0, 0, 1, 0, 1]);

function one(i: number): void {
  if (stopped) return;
  const sock = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 100)}` });
  opened++;
  live.add(sock);
  sock.on('error', () => {});
  let trickle: NodeJS.Timeout | undefined;
  if (i % 2 === 1) {
    let n = 0;
    sock.on('connect', () => {
      sock.write(QUERY.subarray(n, ++n));
      trickle = setInterval(() => { if (n < QUERY.length) sock.write(QUERY.subarray(n, ++n)); }, 4000);
    });
  }
  sock.on('close', () => {
    if (trickle) clearInterval(trickle);
    live.delete(sock);
    if (stopped) return;
    closedByServer++;
    setTimeout(() => one(i), 5000 + Math.random() * 5000);
  });
}

for (let i = 0; i < count; i++) one(i);
process.on('message', (m) => {
  if (m === 'stats') process.send?.({ opened, live: live.size, closedByServer });
  if (m === 'stop') {
    stopped = true;
    for (const s of live) s.destroy();
    process.disconnect?.();
    setTimeout(() => process.exit(0), 50);
  }
});
