/**
 * Revoked client certificates, honoured without a restart. The supervisor (which holds the
 * CA) writes the revoked serial numbers into each TLS service's data folder
 * (`tls/revoked.json`, durably); a service watches that file and turns away a revoked
 * certificate at the handshake and on live connections. RFC 5280 §5 keeps serials as the
 * revocation key; a file of serials instead of a signed CRL is enough because only the
 * supervisor can write into a service's data folder. Kept free of the CA code so a sealed
 * service bundles only this.
 */
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { watchFile, type WatchedFile } from '../watched-file.ts';
import { TLS_DIR } from './server-tls.ts';

export const REVOKED_FILE = 'revoked.json';

/** Serial numbers compare as lower-case hex without leading zeros (Node prints them upper-case). */
export const normalSerial = (s: string) => s.toLowerCase().replace(/[^0-9a-f]/g, '').replace(/^0+(?=.)/, '');

export function parseRevoked(text: string): Set<string> {
  const v = JSON.parse(text) as { serials?: unknown };
  if (!Array.isArray(v.serials) || !v.serials.every((s) => typeof s === 'string')) throw new Error(`${REVOKED_FILE}: expected {"serials": ["hex", ...]}`);
  return new Set((v.serials as string[]).map(normalSerial));
}

export const revokedText = (serials: Iterable<string>) => JSON.stringify({ serials: [...new Set([...serials].map(normalSerial))].sort() }, null, 1) + '\n';

/** The live list for one service: reloaded when the file changes (a bad file keeps the last good list). */
export class RevocationList {
  private serials = new Set<string>();
  private readonly sockets = new Set<TLSSocket>();
  private readonly watched: WatchedFile;
  private readonly onError: (msg: string) => void;

  constructor(serviceDataDir: string, onError: (msg: string) => void = () => {}) {
    this.onError = onError;
    this.watched = watchFile(path.join(serviceDataDir, TLS_DIR, REVOKED_FILE), (text) => this.load(text));
  }

  isRevoked(serial: string): boolean {
    return this.serials.has(normalSerial(serial));
  }

  /** Refuse revoked client certificates on this server, at the handshake and on live connections. */
  guard(server: { on(event: 'secureConnection', l: (s: TLSSocket) => void): unknown }): void {
    server.on('secureConnection', (s) => {
      if (this.refuse(s)) return;
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** True (and the socket destroyed) when its peer's certificate is revoked. */
  refuse(s: TLSSocket): boolean {
    const serial = s.getPeerCertificate()?.serialNumber;
    if (serial && this.isRevoked(serial)) {
      s.destroy();
      return true;
    }
    return false;
  }

  close(): void {
    this.watched.close();
  }

  private load(text: string): void {
    try {
      this.serials = text === '' ? new Set() : parseRevoked(text);
    } catch (err) {
      this.onError((err as Error).message);
      return;
    }
    for (const s of this.sockets) this.refuse(s);
  }
}
