/**
 * When to try a message again, and what a reply means (RFC 5321 §4.2.1, §4.5.4.1):
 * 2xx delivered, 4xx and connection failures retried with exponential back-off, 5xx (or a
 * message older than the expiry) bounced to the sender. Pure functions.
 */

export type Outcome = { kind: 'ok'; response: string } | { kind: 'temp' | 'perm'; code?: number; enhanced?: string; response: string };

/** Delay before attempt `attempts + 1`: initial × 2^(attempts-1), capped, ±10% jitter. */
export function retryDelayMs(attempts: number, initialSeconds: number, maxSeconds: number, random = Math.random): number {
  const base = Math.min(maxSeconds, initialSeconds * 2 ** Math.max(0, attempts - 1)) * 1000;
  return Math.round(base * (0.9 + 0.2 * random()));
}

/** An SMTP reply ('550 5.1.1 no such user') as an outcome. */
export function outcomeOf(code: number | undefined, response: string): Outcome {
  const enhanced = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(response)?.[1];
  if (code !== undefined && code >= 200 && code < 300) return { kind: 'ok', response };
  if (code !== undefined && code >= 500 && code < 600) return { kind: 'perm', code, ...(enhanced ? { enhanced } : {}), response };
  return { kind: 'temp', ...(code !== undefined ? { code } : {}), ...(enhanced ? { enhanced } : {}), response };
}

export function expired(received: number, now: number, expireSeconds: number): boolean {
  return now - received >= expireSeconds * 1000;
}
