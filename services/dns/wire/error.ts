/**
 * The one error every wire reader throws on malformed input (RFC 1035 §4.1): callers turn
 * it into FORMERR (or a drop, for a message whose header cannot be read).
 */
export class WireError extends Error {
  override name = 'WireError';
}
