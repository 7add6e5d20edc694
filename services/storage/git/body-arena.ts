/**
 * Copies of many small bodies kept for a while (a push's commits and trees, for its
 * connectivity check), packed into a few large chunks.
 *
 * Why copy: Node hands out Buffers under 32 KiB as slices of shared 64 KiB pool slabs
 * (Buffer.allocUnsafe, so every delta result of index-pack), and one live slice keeps its
 * whole slab. A push resolves its trees between thousands of blob results that die at once,
 * so the ~10,000 trees bench/storage keeps (635 bytes on average) pinned slabs full of
 * garbage: external memory that survived every GC, and with the memory governor
 * collecting at 1.25× what is live, more peak (issue 16). A kept body that owns its own
 * allocation (a zlib output) costs a malloc header and a backing-store record each.
 */

/** Chunk size: large enough that the per-chunk cost vanishes, small enough that the unused tail of the last one is negligible. */
const CHUNK = 256 << 10;
/** Bodies at least this large get their own copy (a chunk would waste more than it saves). */
const OWN = CHUNK >> 2;

export class BodyArena {
  private chunk = Buffer.alloc(0);
  private used = 0;
  /** Bytes of copies handed out. */
  bytes = 0;

  /** A copy of `body` that pins nothing else (a view into an arena chunk, or its own allocation when large). */
  add(body: Buffer): Buffer {
    this.bytes += body.length;
    if (body.length >= OWN) return Buffer.from(body);
    if (this.used + body.length > this.chunk.length) {
      // Buffer.allocUnsafeSlow: never a pool slice (the point of this class); every byte is written before it is read.
      this.chunk = Buffer.allocUnsafeSlow(CHUNK);
      this.used = 0;
    }
    const copy = this.chunk.subarray(this.used, this.used + body.length);
    body.copy(copy);
    this.used += body.length;
    return copy;
  }
}
