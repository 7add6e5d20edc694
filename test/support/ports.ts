/** A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read the number, close). */
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
