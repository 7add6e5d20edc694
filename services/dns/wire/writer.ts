/**
 * Response encoder with name compression (RFC 1035 §4.1, §4.1.4).
 *
 * dns-packet does not compress, and a UDP answer must fit 512–1232 octets, so responses are
 * built here. Owner names, and the names inside NS/CNAME/PTR/MX/SOA RDATA, are compressed
 * against every name written so far; other RDATA is copied as stored (RFC 3597 §4 forbids
 * compressing newer types, and RFC 2782 SRV targets). `mark()`/`rollback()` let the caller
 * drop a whole RRset that overflowed the limit.
 */
import { Buffer } from 'node:buffer';
import type { Labels } from './name.ts';
import { RCODE, TYPE } from './constants.ts';

// Room for one maximal RR past the 65535 message cap, so a write never overruns the buffer;
// the caller rolls back anything beyond its limit.
const CAPACITY = 65535 + 65535 + 1024;

// One scratch buffer for every writer: a 132 KiB allocation per answer was most of the
// garbage collector's work. A writer is used synchronously from construction to finish(),
// which copies the message out and frees the scratch; a writer made while another holds it
// gets its own buffer. A writer abandoned by an exception frees it at the next microtask.
const SCRATCH = Buffer.allocUnsafe(CAPACITY);
let scratchInUse = false;
const freeScratch = () => {
  scratchInUse = false;
};

export interface Mark {
  off: number;
  counts: [number, number, number, number];
  names: number;
}

export class MessageWriter {
  readonly buf: Buffer;
  off = 12;
  counts: [number, number, number, number] = [0, 0, 0, 0];
  private table = new Map<string, number>();
  private added: string[] = [];

  private readonly ownsScratch: boolean;

  constructor() {
    // Unzeroed: every byte up to `off` is written before finish() copies it out.
    this.ownsScratch = !scratchInUse;
    if (this.ownsScratch) {
      scratchInUse = true;
      queueMicrotask(freeScratch);
    }
    this.buf = this.ownsScratch ? SCRATCH : Buffer.allocUnsafe(CAPACITY);
    this.buf.fill(0, 0, 12);
  }

  header(id: number, flags: number): void {
    this.buf.writeUInt16BE(id & 0xffff, 0);
    this.buf.writeUInt16BE(flags & 0xffff, 2);
  }

  setFlags(flags: number): void {
    this.buf.writeUInt16BE(flags & 0xffff, 2);
  }

  getFlags(): number {
    return this.buf.readUInt16BE(2);
  }

  /** Write a name, compressing the longest known suffix. Keys are lowercase, so compression is case-insensitive. */
  name(labels: Labels): void {
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i);
      const key = suffixKey(suffix);
      const ptr = this.table.get(key);
      if (ptr !== undefined) {
        this.buf.writeUInt16BE(0xc000 | ptr, this.off);
        this.off += 2;
        return;
      }
      if (this.off < 0x4000) {
        this.table.set(key, this.off);
        this.added.push(key);
      }
      const l = labels[i];
      this.buf[this.off++] = l.length;
      l.copy(this.buf, this.off);
      this.off += l.length;
    }
    this.buf[this.off++] = 0;
  }

  question(labels: Labels, type: number, cls: number): void {
    this.name(labels);
    this.buf.writeUInt16BE(type, this.off);
    this.buf.writeUInt16BE(cls, this.off + 2);
    this.off += 4;
    this.counts[0]++;
  }

  /** Append one RR to section 1 (answer), 2 (authority) or 3 (additional). */
  rr(section: 1 | 2 | 3, owner: Labels, type: number, cls: number, ttl: number, rdata: Buffer): void {
    this.name(owner);
    this.buf.writeUInt16BE(type, this.off);
    this.buf.writeUInt16BE(cls, this.off + 2);
    this.buf.writeUInt32BE(ttl >>> 0, this.off + 4);
    const lenAt = this.off + 8;
    this.off += 10;
    const start = this.off;
    const names = this.added.length;
    if (!this.compressedRdata(type, rdata)) {
      // Forget any names registered from the half-written RDATA before overwriting it.
      while (this.added.length > names) this.table.delete(this.added.pop()!);
      this.off = start;
      rdata.copy(this.buf, this.off);
      this.off += rdata.length;
    }
    this.buf.writeUInt16BE(this.off - start, lenAt);
    this.counts[section]++;
  }

  /**
   * RFC 1035 §4.1.4 lets the names inside NS, CNAME, PTR, MX and SOA RDATA be compressed
   * (the RFC 3597 §4 "well-known" types); every other type is copied as stored. Returns
   * false when the stored RDATA does not parse, so it is copied verbatim instead.
   */
  private compressedRdata(type: number, rdata: Buffer): boolean {
    let names: number;
    let prefix = 0;
    switch (type) {
      case 2: case 5: case 12: names = 1; break; // NS, CNAME, PTR
      case 15: names = 1; prefix = 2; break; // MX
      case 6: names = 2; break; // SOA
      default: return false;
    }
    if (rdata.length < prefix) return false;
    rdata.copy(this.buf, this.off, 0, prefix);
    this.off += prefix;
    let p = prefix;
    for (let i = 0; i < names; i++) {
      const labels: Labels = [];
      for (;;) {
        if (p >= rdata.length) return false;
        const len = rdata[p];
        if (len === 0) { p++; break; }
        if (len > 63 || p + 1 + len > rdata.length) return false;
        labels.push(rdata.subarray(p + 1, p + 1 + len) as Buffer);
        p += 1 + len;
      }
      this.name(labels);
    }
    rdata.copy(this.buf, this.off, p);
    this.off += rdata.length - p;
    return true;
  }

  mark(): Mark {
    return { off: this.off, counts: [...this.counts], names: this.added.length };
  }

  rollback(m: Mark): void {
    this.off = m.off;
    this.counts = [...m.counts];
    while (this.added.length > m.names) {
      const k = this.added.pop()!;
      this.table.delete(k);
    }
  }

  finish(): Buffer {
    for (let i = 0; i < 4; i++) this.buf.writeUInt16BE(this.counts[i], 4 + i * 2);
    const out = Buffer.from(this.buf.subarray(0, this.off));
    if (this.ownsScratch) scratchInUse = false;
    return out;
  }
}

function suffixKey(labels: Labels): string {
  // A private key format: lengths keep labels unambiguous; lowercase for case-insensitivity.
  let s = '';
  for (const l of labels) s += l.length + ':' + lowerAscii(l) + '|';
  return s;
}

function lowerAscii(b: Buffer): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  }
  return s;
}

/** A header-only reply (FORMERR/NOTIMP/REFUSED when nothing more is known). */
export function headerOnlyReply(id: number, opcode: number, rd: boolean, rcode: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id & 0xffff, 0);
  b.writeUInt16BE(0x8000 | ((opcode & 0xf) << 11) | (rd ? 0x0100 : 0) | (rcode & 0xf), 2);
  return b;
}

/**
 * NOTIMP for an opcode we do not implement, as NSD answers it over UDP and TCP: the query's
 * flags as they came (AA, TC, RD, RA, Z, CD) with QR set and RCODE NOTIMP, but not AD (a
 * server sets it only for data it authenticated, RFC 6840 §5.8), and no question, since
 * its format belongs to the opcode.
 */
export function notImplementedReply(id: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id & 0xffff, 0);
  b.writeUInt16BE(((flags | 0x8000) & 0xffd0) | RCODE.NOTIMP, 2);
  return b;
}

/**
 * FORMERR for a malformed OPT (RFC 6891 §7: the response MUST include an OPT record): the
 * header and our OPT (root, our 1232-octet UDP size, version 0, no options).
 */
export function formerrWithOpt(id: number, opcode: number, rd: boolean): Buffer {
  const b = Buffer.alloc(12 + 11);
  b.writeUInt16BE(id & 0xffff, 0);
  b.writeUInt16BE(0x8000 | ((opcode & 0xf) << 11) | (rd ? 0x0100 : 0) | RCODE.FORMERR, 2);
  b.writeUInt16BE(1, 10);
  b.writeUInt16BE(TYPE.OPT, 13); // root owner at 12, then TYPE OPT
  b.writeUInt16BE(1232, 15);
  return b;
}
