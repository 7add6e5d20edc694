/**
 * One HTTP port, gated by who is asking (issue 14, item 5: every management and data port
 * refuses clients without a valid certificate). The first byte a client sends says what it
 * speaks: a TLS handshake (0x16) or plain HTTP.
 *
 * - TLS from the network: a client certificate from the appliance CA is required at the
 *   handshake (a client without one gets the TLS alert "certificate required"), and a
 *   revoked one is turned away there and on live connections (pki/revocation.ts).
 * - TLS from loopback (the box itself: the supervisor, the services' links, the owner's
 *   shell under `kith up`): a certificate is asked for but not required, so a token still
 *   works there during the change from tokens to certificates.
 * - Plain HTTP: per port. 'loopback' — only the box itself (a plain port's token travels
 *   in clear: never from the network); a network client is told, in a 403, to use TLS with
 *   a client certificate. 'anyone' — the health listener, whose plain answer to strangers
 *   is only the status word (platform/health.ts). 'never' — an https port.
 *
 * So the port numbers stay what they were, and a paired device reaches every management
 * port by mutual TLS on the same port a local tool reaches in plain HTTP.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { RevocationList } from './pki/revocation.ts';
import type { ServerTls } from './pki/server-tls.ts';
import type { ListenAddress } from './service.ts';

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return v4.startsWith('127.') || addr === '::1';
}

/**
 * Addresses that count as the box itself besides loopback, set once at start from the
 * service's `--local-peer` arguments: a kvm image's host under qemu's user networking
 * (10.0.2.2), whose forwarded ports qemu binds to the host's loopback only — so there it
 * is the same person as a local shell under `kith up`, and a kvm image has no pairing.
 */
const localPeers = new Set<string>();

export function setLocalPeers(addrs: readonly string[]): void {
  localPeers.clear();
  for (const a of addrs) localPeers.add(a);
}

/** Loopback, or a peer the service was told is this machine's own (setLocalPeers). */
export function isLocalPeer(addr: string | undefined): boolean {
  if (isLoopback(addr)) return true;
  if (!addr || localPeers.size === 0) return false;
  return localPeers.has(addr.startsWith('::ffff:') ? addr.slice(7) : addr);
}

/** A paired device of the owner's: a client certificate the handshake verified against the appliance CA, CN=owner. */
export function ownerCertificate(req: http.IncomingMessage): boolean {
  const sock = req.socket as TLSSocket;
  return sock.encrypted === true && sock.authorized && sock.getPeerCertificate()?.subject?.CN === 'owner';
}

export type PlainPolicy = 'loopback' | 'anyone' | 'never';

export interface GateOptions {
  at: ListenAddress;
  onRequest: http.RequestListener;
  /** The service's certificate and the appliance CA; without it the port speaks plain HTTP only. */
  tls?: ServerTls;
  /** Revoked client certificates, followed live. */
  revoked?: RevocationList;
  plain: PlainPolicy;
  /** Timeouts and the like, applied to every HTTP server behind the port. */
  configure?: (server: http.Server) => void;
  /** Who counts as the box itself (tests simulate a network peer); default: isLocalPeer. */
  isLocal?: (remoteAddress: string | undefined) => boolean;
}

export interface GatedListener {
  /** http://… when the port speaks plain HTTP to someone, else https://… */
  url: string;
  port: number;
  close(): Promise<void>;
}

export const TLS_HANDSHAKE = 0x16;
/** A client that connects and sends nothing is dropped after this long. */
const FIRST_BYTE_MS = 30_000;

const REFUSAL = 'this port answers the network only over TLS with a client certificate from the appliance CA: pair this device with `kith pair`, then use https:// with its certificate\n';

/** A plain-HTTP refusal written straight onto the socket (no HTTP parser was given it). */
function refusePlain(socket: net.Socket): void {
  socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(REFUSAL)}\r\nconnection: close\r\n\r\n${REFUSAL}`);
  socket.destroySoon();
}

export async function listenGated(o: GateOptions): Promise<GatedListener> {
  const isLocal = o.isLocal ?? isLocalPeer;
  const sockets = new Set<net.Socket>();
  const plainServer = o.plain === 'never' ? undefined : http.createServer(o.onRequest);
  const tlsServer = (strict: boolean) => {
    const s = https.createServer({ key: o.tls!.key, cert: o.tls!.cert, ca: o.tls!.ca, requestCert: true, rejectUnauthorized: strict }, o.onRequest);
    o.revoked?.guard(s);
    return s;
  };
  const strict = o.tls ? tlsServer(true) : undefined;
  const lenient = o.tls ? tlsServer(false) : undefined;
  for (const s of [plainServer, strict, lenient]) if (s) o.configure?.(s);
  // A failed handshake is the client's problem (an unpaired device, a wrong CA): not logged as ours.
  for (const s of [strict, lenient]) s?.on('tlsClientError', (_err: Error, sock: TLSSocket) => sock.destroy());

  const gate = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(FIRST_BYTE_MS, () => socket.destroy());
    const local = isLocal(socket.remoteAddress);
    const dispatch = () => {
      const first = socket.read(1) as Buffer | null;
      if (first === null) return void socket.once('readable', dispatch);
      socket.setTimeout(0);
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) {
        const to = local ? lenient : strict;
        if (!to) return void socket.destroy(); // TLS to a port that has no certificate yet
        to.emit('connection', socket);
        return;
      }
      if (plainServer && (o.plain === 'anyone' || local)) return void plainServer.emit('connection', socket);
      if (o.plain === 'never') return void socket.destroy();
      refusePlain(socket);
    };
    dispatch();
  });
  await new Promise<void>((resolve, reject) => {
    gate.once('error', reject);
    gate.listen(o.at.port, o.at.host, () => resolve());
  });
  const port = (gate.address() as net.AddressInfo).port;
  const host = o.at.host.includes(':') ? `[${o.at.host}]` : o.at.host;
  return {
    url: `${o.plain === 'never' ? 'https' : 'http'}://${host}:${port}`,
    port,
    close: () => new Promise<void>((resolve) => {
      for (const s of [plainServer, strict, lenient]) s?.closeAllConnections();
      for (const s of sockets) s.destroy();
      gate.close(() => resolve());
    }),
  };
}
