/**
 * DKIM keys and signing (RFC 6376; Ed25519 per RFC 8463, RSA-2048): one key per selector,
 * created by the service in its data folder (dkim/<selector>.key, mode 0600) the first
 * time the selector appears, and the TXT record that publishes it. Signing runs on the
 * message as it streams into the queue (mailauth's signer hashes as it goes).
 *
 * mailauth (with joi, libmime and its charset tables) is loaded on the first signature,
 * not at start: about 8 MB of the idle service's private memory otherwise (issue 16).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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

const keyObjects = new Map<string, KeyObject>();
const keyObject = (pem: string) => {
  let k = keyObjects.get(pem);
  if (!k) {
    k = createPrivateKey(pem);
    keyObjects.set(pem, k);
  }
  return k;
};
// Not promisify(sign) at load: a startup snapshot refuses crypto taken while the bundle loads.
const signAsync = (alg: string | null, data: Buffer, key: KeyObject) => new Promise<Buffer>((resolve, reject) => cryptoSign(alg, data, key, (err, sig) => (err ? reject(err) : resolve(sig))));

/**
 * mailauth's DKIM signer (header parsing, relaxed canonicalization, body hash, the
 * DKIM-Signature line), finishing with the signature computed on libuv's thread pool
 * (crypto.sign with a callback) from a parsed key kept per selector: mailauth signs
 * synchronously on the event loop and parses the PEM key per message, a quarter of the
 * relay's CPU in bench/mail.
 */
function pooledSignerClass(mailauth: Mailauth) {
  const { DkimSigner, generateCanonicalizedHeader, getSigningHeaderLines, formatSignatureHeaderLine } = mailauth;
  return class PooledSigner extends (DkimSigner as unknown as new (o: unknown) => SignerBase) {
    override async finalize(): Promise<void> {
      // One t= for the header that is signed and the one that is written: without it mailauth
      // takes the clock again when formatting, and a sign that ends in the next second fails.
      const signTime = this.signTime ?? new Date();
      for (const sd of this.signatureData) {
        const signAlgo = sd.algorithm.startsWith('ed25519') ? 'ed25519' : 'rsa';
        const algorithm = `${signAlgo}-sha256`;
        // Every selector signs relaxed/sha256 over the whole body: one body hash (key 'relaxed:sha256:').
        const bodyHash = [...this.bodyHashes.values()][0]?.hash ?? null;
        const lines = getSigningHeaderLines(this.headers.parsed, this.headerList);
        const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader('DKIM', lines, { ...sd, algorithm, canonicalization: 'relaxed/relaxed', signTime, expires: this.expires, bodyHash });
        try {
          const data = signAlgo === 'rsa' ? canonicalizedHeader : createHash('sha256').update(canonicalizedHeader).digest();
          dkimHeaderOpts.b = (await signAsync(signAlgo === 'rsa' ? algorithm : null, data, keyObject(sd.privateKey))).toString('base64');
          this.signatureHeaders.push(formatSignatureHeaderLine('DKIM', dkimHeaderOpts, true));
        } catch (err) {
          this.errors.push({ selector: sd.selector, signingDomain: sd.signingDomain, err });
        }
      }
    }
  };
}

interface SignerBase extends Writable {
  signatureData: { signingDomain: string; selector: string; privateKey: string; algorithm: string }[];
  bodyHashes: Map<string, { hash?: string }>;
  headers: { parsed: unknown[] };
  headerList: string;
  signTime?: Date;
  expires?: Date;
  signatureHeaders: string[];
  errors: unknown[];
  finalize(): Promise<void>;
}

type Mailauth = typeof import('mailauth/lib/dkim/dkim-signer.js') & typeof import('mailauth/lib/dkim/header/index.js') & typeof import('mailauth/lib/tools.js');

// In the bundle each import() is inlined: it defers the modules' evaluation, not a file read.
let signerClass: Promise<ReturnType<typeof pooledSignerClass>> | undefined;
const loadSigner = () => (signerClass ??= Promise.all([
  import('mailauth/lib/dkim/dkim-signer.js'),
  import('mailauth/lib/dkim/header/index.js'),
  import('mailauth/lib/tools.js'),
]).then(([a, b, c]) => pooledSignerClass({ ...a, ...b, ...c } as Mailauth)));

const newSigner = async (keys: DkimKey[], domain: string) => new (await loadSigner())({
  canonicalization: 'relaxed/relaxed',
  headerList: SIGNED_HEADERS,
  signatureData: keys.map((k) => ({ signingDomain: domain, selector: k.selector, privateKey: k.privateKey, algorithm: k.algorithm === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256' })),
});

/** A signer fed the message as it streams; `done` gives the DKIM-Signature header lines. */
export async function startSigning(keys: DkimKey[], domain: string): Promise<{ write(chunk: Buffer): void; end(): void; abort(): void; done: Promise<string> }> {
  if (keys.length === 0) return { write: () => {}, end: () => {}, abort: () => {}, done: Promise.resolve('') };
  const signer = await newSigner(keys, domain);
  const done = new Promise<string>((resolve, reject) => {
    signer.once('finish', () => resolve(signer.signatureHeaders.length > 0 ? signer.signatureHeaders.join('\r\n') + '\r\n' : ''));
    signer.once('error', reject);
  });
  return {
    write: (c) => void signer.write(c),
    end: () => void signer.end(),
    abort: () => signer.destroy(),
    done,
  };
}

/**
 * Sign a stored message read back as a stream (a message held in the queue until the
 * clock was synchronised): the same signer, with the stream's back-pressure, so a large
 * message is never held whole.
 */
export async function signStream(keys: DkimKey[], domain: string, body: Readable): Promise<string> {
  if (keys.length === 0) {
    body.destroy();
    return '';
  }
  const signer = await newSigner(keys, domain);
  await pipeline(body, signer);
  return signer.signatureHeaders.length > 0 ? signer.signatureHeaders.join('\r\n') + '\r\n' : '';
}
