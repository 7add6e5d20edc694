// The `siphash` package (jedisct1/siphash-js) ships no types: the part we use.
declare module 'siphash' {
  /** SipHash-2-4 of `m` under `key` (four little-endian 32-bit words): the 64-bit result as high and low halves. */
  export function hash(key: Uint32Array | number[], m: Uint8Array | string): { h: number; l: number };
}
