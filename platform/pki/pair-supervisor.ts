/**
 * Pairing in the supervisor: a PairingServer whose codes are shown to the owner (console,
 * log) and whose devices are certified by the appliance CA, given a device password, and
 * recorded in `<pki>/devices.json`, served over HTTP on the pairing port.
 */
import type { Pem } from './ca.ts';
import { pairDevice, syncDevices } from './devices.ts';
import { startPairServer, type StatusAccess } from './pair-server.ts';
import { PairingServer } from './pairing.ts';

export interface PairingHandle {
  port: number;
  server: PairingServer;
  close(): Promise<void>;
}

export async function servePairing(o: { pkiDir: string; /** The services' data folders' parent: a new device's password is written there. */ servicesRoot: string; ca: Pem; appliance: string; host: string; port: number; standingSecret?: string; onCode(code: string, expiresAt: number, why: string): void; onPaired?(device: string): void; /** GET /status by mutual TLS (pair-server.ts). */ status?: StatusAccess }): Promise<PairingHandle> {
  let queue: Promise<unknown> = Promise.resolve();
  const server = new PairingServer({
    appliance: o.appliance,
    onCode: o.onCode,
    ...(o.standingSecret ? { standingSecret: o.standingSecret } : {}),
    // One at a time: devices.json is read, changed and written back.
    issue: (device, spki) => {
      const run = queue.then(async () => {
        const issued = await pairDevice(o.pkiDir, o.ca, device, spki);
        await syncDevices(o.pkiDir, o.servicesRoot); // its password works before `kith pair` returns
        o.onPaired?.(device);
        return issued;
      });
      queue = run.catch(() => undefined);
      return run;
    },
  });
  const http = await startPairServer(server, o.host, o.port, o.status);
  // An expired code is replaced (and shown) at once, not only when someone next tries it.
  const tick = setInterval(() => void server.currentCode, 5000);
  tick.unref();
  return { port: http.port, server, close: () => { clearInterval(tick); return http.close(); } };
}
