// pako is isomorphic-git's own dependency (no types shipped); native-zlib.ts patches it.
declare module 'pako' {
  const pako: Record<string, unknown>;
  export default pako;
}
