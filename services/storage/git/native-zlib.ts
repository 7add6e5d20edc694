/**
 * isomorphic-git inflates and deflates every object with pako, a pure-JS zlib; here its
 * pako is pointed at Node's native zlib instead (same formats, several times faster —
 * object reads were most of the time of a clone). Imported for its effect, once, by the
 * modules that read objects.
 */
import pako from 'pako';
import { inflateSync } from 'node:zlib';
import { deflateBody } from './zlib-chunks.ts';

const p = pako as { inflate: (b: Uint8Array) => Uint8Array; deflate: (b: Uint8Array) => Uint8Array };
p.inflate = (b) => inflateSync(b);
p.deflate = (b) => deflateBody(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
