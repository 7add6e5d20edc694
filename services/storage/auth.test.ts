import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { tokenAuthenticator } from './auth.ts';

const req = (authorization?: string) => ({ headers: authorization ? { authorization } : {} }) as IncomingMessage;
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('token authentication', () => {
  const auth = tokenAuthenticator('s3cret-token-s3cret-token-s3cret');
  it('accepts the token as a Basic password (any user) or a Bearer token', () => {
    expect(auth(req(basic('kith', 's3cret-token-s3cret-token-s3cret')))).toEqual({ name: 'owner', via: 'token' });
    expect(auth(req('Bearer s3cret-token-s3cret-token-s3cret'))).toEqual({ name: 'owner', via: 'token' });
  });
  it('refuses anonymous, wrong and malformed credentials', () => {
    for (const h of [undefined, basic('kith', 'nope'), 'Bearer', 'Basic !!!', 'Digest abc', basic('s3cret-token-s3cret-token-s3cret', ''), 'x'.repeat(10000)]) {
      expect(auth(req(h))).toBeUndefined();
    }
  });
});
