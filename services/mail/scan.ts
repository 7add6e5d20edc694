/**
 * A pass over the message as it streams in (pure, chunk by chunk): bare LF line ends
 * become CRLF (RFC 5322 §2.3 allows no bare LF; normalised as Postfix does, so the stored
 * message, its DKIM hash and what is relayed agree), the header section is held to a
 * size limit (552 5.3.4), and 8-bit bytes are refused unless the client declared
 * BODY=8BITMIME or SMTPUTF8 (RFC 6152 §3: 554 5.6.0).
 */

export interface ScanError {
  code: number;
  text: string;
}

export class MessageScanner {
  error: ScanError | undefined;
  saw8bit = false;
  private inHeader = true;
  private headerBytes = 0;
  /** Last bytes seen (to find CRLFCRLF and CR LF across chunk edges). */
  private tail = 0; // rolling 32-bit window of the last 4 bytes
  private lastWasCR = false;
  private atStart = true;

  private readonly limits: { headerBytes: number; eightBitAllowed: boolean };

  constructor(limits: { headerBytes: number; eightBitAllowed: boolean }) {
    this.limits = limits;
  }

  /** The chunk as it should be stored (bare LF → CRLF). */
  push(chunk: Buffer): Buffer {
    if (this.error) return Buffer.alloc(0);
    let extra = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 0x0a && !(i > 0 ? chunk[i - 1] === 0x0d : this.lastWasCR)) extra++;
      if (b >= 0x80 && !this.saw8bit) {
        this.saw8bit = true;
        if (!this.limits.eightBitAllowed) {
          this.error = { code: 554, text: '5.6.0 Message has 8-bit data but BODY=8BITMIME (or SMTPUTF8) was not declared' };
          return Buffer.alloc(0);
        }
      }
    }
    let out = chunk;
    if (extra > 0) {
      out = Buffer.allocUnsafe(chunk.length + extra);
      let j = 0;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        if (b === 0x0a && !(i > 0 ? chunk[i - 1] === 0x0d : this.lastWasCR)) out[j++] = 0x0d;
        out[j++] = b;
      }
    }
    this.lastWasCR = chunk.length > 0 ? chunk[chunk.length - 1] === 0x0d : this.lastWasCR;
    if (this.inHeader) {
      const before = this.inHeader;
      for (let i = 0; i < out.length; i++) {
        const b = out[i]!;
        this.headerBytes++;
        this.tail = ((this.tail << 8) | b) >>> 0;
        // An empty first line: no header section at all.
        if ((this.tail === 0x0d0a0d0a) || (this.atStart && this.headerBytes === 2 && (this.tail & 0xffff) === 0x0d0a)) {
          this.inHeader = false;
          break;
        }
      }
      this.atStart = false;
      if (before && this.headerBytes > this.limits.headerBytes) {
        this.error = { code: 552, text: `5.3.4 Message header section too big: the limit is ${this.limits.headerBytes} bytes` };
        return Buffer.alloc(0);
      }
    }
    return out;
  }

  /** End of data: nothing is held back, so nothing to add. */
  end(): Buffer {
    return Buffer.alloc(0);
  }
}
