// The `siphash` package (jedisct1/siphash-js) ships no types: the part we use. It is
// CommonJS (`module.exports = { hash, ... }`), so Node's ESM loader gives it as the
// default export only.
declare module 'siphash' {
  const SipHash: {
    /** SipHash-2-4 of `m` under `key` (four little-endian 32-bit words): the 64-bit result as high and low halves. */
    hash(key: Uint32Array | number[], m: Uint8Array | string): { h: number; l: number };
  };
  export default SipHash;
}
