import { describe, expect, it } from 'vitest';
import { startPairServer } from './pair-server.ts';
import { PairingServer } from './pairing.ts';

describe('the pairing endpoint', () => {
  it('answers hostile requests with JSON errors and keeps serving', async () => {
    const pairing = new PairingServer({ appliance: 'kith', issue: async () => { throw new Error('not in this test'); } });
    const srv = await startPairServer(pairing, '127.0.0.1', 0);
    const base = `http://127.0.0.1:${srv.port}`;
    const post = (p: string, body: string) => fetch(base + p, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect((await fetch(base + '/pair/start')).status).toBe(404);
    expect((await post('/nope', '{}')).status).toBe(404);
    expect((await post('/pair/start', 'not json')).status).toBe(400);
    expect((await post('/pair/start', '[1,2]')).status).toBe(400);
    expect((await post('/pair/start', JSON.stringify({ sid: 'A'.repeat(24), Ya: '_'.repeat(43), device: 'x' }))).status).toBe(400);
    const big = await post('/pair/start', JSON.stringify({ pad: 'x'.repeat(64 * 1024) })).catch(() => ({ status: 413 }));
    expect(big.status).toBe(413);
    const finish = await post('/pair/finish', JSON.stringify({ sid: 'A'.repeat(24), tag: 'AA', box: 'AA' }));
    expect(finish.status).toBe(404);
    expect(await finish.json()).toMatchObject({ error: expect.stringContaining('start again') });
    // Still serving after all that.
    expect((await post('/pair/start', '{}')).status).toBe(400);
    await srv.close();
  });
});
