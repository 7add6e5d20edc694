/**
 * A TCP pass-through that counts the bytes each way, so both servers are measured by the
 * same yardstick (what crossed the wire, HTTP framing included). Both sides of the
 * benchmark go through one, so its small cost is paid equally.
 */
import * as net from 'node:net';

export interface CountingProxy {
  url: string;
  /** Bytes since the last reset: up = client to server, down = server to client. */
  take(): { up: number; down: number };
  close(): Promise<void>;
}

export async function startCountingProxy(targetPort: number, host = '127.0.0.1'): Promise<CountingProxy> {
  let up = 0;
  let down = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, host);
    sockets.add(client).add(upstream);
    // Forward every segment at once: Nagle + delayed ACK would add ~40 ms stalls per turn.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (d) => { up += d.length; });
    upstream.on('data', (d) => { down += d.length; });
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://${host}:${port}`,
    take() {
      const r = { up, down };
      up = 0;
      down = 0;
      return r;
    },
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
