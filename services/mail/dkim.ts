/**
 * DKIM keys and signing (RFC 6376; Ed25519 per RFC 8463, RSA-2048): one key per selector,
 * created by the service in its data folder (dkim/<selector>.key, mode 0600) the first
 * time the selector appears, and the TXT record that publishes it. Signing runs on the
 * message as it streams into the queue (mailauth's signer hashes as it goes).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { writeFileDurable } from '../../platform/durable.ts';

export interface DkimKey {
  selector: string;
  algorithm: 'ed25519' | 'rsa';
  privateKey: string;
  /** The TXT record's text: v=DKIM1; k=...; p=... */
  record: string;
}

export const DKIM_DIR = 'dkim';

export function dkimRecord(privatePem: string, algorithm: 'ed25519' | 'rsa'): string {
  const pub = createPublicKey(createPrivateKey(privatePem));
  // Ed25519: the raw 32-byte key (RFC 8463 §4.2); RSA: SubjectPublicKeyInfo DER.
  const p = algorithm === 'ed25519'
    ? Buffer.from((pub.export({ format: 'jwk' }) as { x: string }).x, 'base64url').toString('base64')
    : (pub.export({ format: 'der', type: 'spki' }) as Buffer).toString('base64');
  return `v=DKIM1; k=${algorithm}; p=${p}`;
}

/** The selector's key, made (and kept 0600) when it does not exist yet. */
export async function loadOrCreateKey(dataDir: string, selector: string, algorithm: 'ed25519' | 'rsa'): Promise<DkimKey> {
  const dir = path.join(dataDir, DKIM_DIR);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${selector}.${algorithm}.key`);
  let pem: string | undefined;
  try {
    pem = await fsp.readFile(file, 'utf8');
    createPrivateKey(pem);
  } catch {
    pem = undefined;
  }
  if (!pem) {
    const { privateKey } = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await writeFileDurable(file, pem, { mode: 0o600 });
  }
  return { selector, algorithm, privateKey: pem, record: dkimRecord(pem, algorithm) };
}

/** Headers signed (RFC 6376 §5.4.1 recommendations, From twice against an added From). */
const SIGNED_HEADERS = 'From:From:Sender:Reply-To:Subject:Date:Message-ID:To:Cc:MIME-Version:Content-Type:Content-Transfer-Encoding:In-Reply-To:References:List-Id:List-Unsubscribe';

/** A signer fed the message as it streams; `done` gives the DKIM-Signature header lines. */
export function startSigning(keys: DkimKey[], domain: string): { write(chunk: Buffer): void; end(): void; abort(): void; done: Promise<string> } {
  const input = new PassThrough();
  const done = keys.length === 0
    ? (input.resume(), Promise.resolve(''))
    : dkimSign(input, {
        canonicalization: 'relaxed/relaxed',
        headerList: SIGNED_HEADERS as unknown as string[], // mailauth takes the colon-separated string (its types say string[])
        signatureData: keys.map((k) => ({ signingDomain: domain, selector: k.selector, privateKey: k.privateKey, algorithm: k.algorithm === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256' })),
      } as unknown as Parameters<typeof dkimSign>[1]).then((r: { signatures: string; errors?: unknown[] }) => (r.signatures.trim() ? r.signatures : ''));
  return {
    write: (c) => void input.write(c),
    end: () => void input.end(),
    abort: () => input.destroy(),
    done,
  };
}
