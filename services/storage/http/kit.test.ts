/** The HTTP kit over a real socket: middleware order, errors to responses, body limits, authentication. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import { authenticate, bodyLimit, catchErrors, compose, HttpError, principalOf, readBody, renderJson, sendJson, type Middleware } from './kit.ts';
import { ConflictError } from '../store/errors.ts';

let server: http.Server;
let base: string;
const order: string[] = [];
const errors: unknown[] = [];

beforeAll(async () => {
  const trace = (name: string): Middleware => async (_c, next) => {
    order.push(`${name}>`);
    await next();
    order.push(`<${name}`);
  };
  const handle = compose(
    catchErrors(renderJson, (err) => errors.push(err)),
    trace('a'),
    authenticate((req) => (req.headers.authorization === 'Bearer t' ? { name: 'owner' } : undefined)),
    bodyLimit(() => 16, 'test.yaml: maxBody', (req) => req.url === '/own-limit'),
    trace('b'),
    async ({ req, res }) => {
      if (req.url === '/conflict') throw new ConflictError('a'.repeat(40), null);
      if (req.url === '/bug') throw new TypeError('oops');
      if (req.url === '/teapot') throw new HttpError(418, 'teapot', 'short and stout', { 'x-why': 'tea' });
      const body = await readBody(req);
      sendJson(res, 200, { who: principalOf<{ name: string }>(req)?.name, body: body.toString() });
    },
  );
  server = http.createServer((req, res) => void handle({ req, res }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const auth = { authorization: 'Bearer t' };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const body = async (r: Response) => (await r.json()) as any;

describe('the HTTP kit', () => {
  it('runs middleware in order, around the handler, and passes the principal along', async () => {
    const r = await fetch(`${base}/x`, { method: 'POST', headers: auth, body: 'hello' });
    expect(await body(r)).toEqual({ who: 'owner', body: 'hello' });
    expect(order).toEqual(['a>', 'b>', '<b', '<a']);
  });

  it('refuses anonymous requests with 401 and a Basic challenge', async () => {
    const r = await fetch(`${base}/x`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expect((await body(r)).error).toBe('unauthorized');
  });

  it('refuses a body over the limit, by Content-Length or while it streams, naming the limit', async () => {
    const big = await fetch(`${base}/x`, { method: 'POST', headers: auth, body: 'x'.repeat(17) });
    expect(big.status).toBe(413);
    expect(await body(big)).toMatchObject({ error: 'too-large', limit: 'test.yaml: maxBody', max: 16 });
    const streamed = await fetch(`${base}/x`, {
      method: 'POST',
      headers: auth,
      body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('x'.repeat(10))); c.enqueue(new TextEncoder().encode('y'.repeat(10))); c.close(); } }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await body(streamed)).message).toMatch(/over the limit test\.yaml: maxBody = 16 bytes/);
    // A handler that answers oversize bodies itself is not cut short by Content-Length; readBody still stops it.
    const own = await fetch(`${base}/own-limit`, { method: 'POST', headers: auth, body: 'x'.repeat(17) });
    expect((await body(own)).message).toMatch(/the body is 17 bytes, over the limit test\.yaml: maxBody = 16/);
  });

  it('turns errors into responses: HttpError as it says, store errors by their status, bugs 500 and logged', async () => {
    const tea = await fetch(`${base}/teapot`, { headers: auth });
    expect([tea.status, tea.headers.get('x-why'), (await body(tea)).error]).toEqual([418, 'tea', 'teapot']);
    const c = await fetch(`${base}/conflict`, { headers: auth });
    expect(c.status).toBe(409);
    expect(await body(c)).toMatchObject({ error: 'conflict', expected: 'a'.repeat(40), actual: null });
    const bug = await fetch(`${base}/bug`, { headers: auth });
    expect([bug.status, (await body(bug)).error]).toEqual([500, 'internal']);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/oops/);
  });
});
