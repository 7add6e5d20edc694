/**
 * Types for the parts of mailauth used below its public API (services/mail/dkim.ts signs
 * with mailauth's DkimSigner but finishes asynchronously). Pinned by package-lock.json.
 */
declare module 'mailauth/lib/dkim/dkim-signer.js' {
  export const DkimSigner: unknown;
}
declare module 'mailauth/lib/dkim/header/index.js' {
  export function generateCanonicalizedHeader(type: string, lines: unknown, opts: Record<string, unknown>): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> & { b?: string } };
}
declare module 'mailauth/lib/tools.js' {
  export function getSigningHeaderLines(parsed: unknown[], fieldNames: string): unknown;
  export function formatSignatureHeaderLine(type: string, opts: Record<string, unknown>, fold: boolean): string;
}
