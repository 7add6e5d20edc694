import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/platform/helpers.ts';
import { readyLine, runServices, writeRunStateSync } from './run-state.ts';

describe("PID 1's run state", () => {
  it("takes a service's ready line, and only that, as how to reach it", () => {
    const line = JSON.stringify({ time: 't', level: 'info', service: 'dns', msg: 'ready', endpoints: { dns: 'udp://0.0.0.0:53' }, health: 'http://127.0.0.1:9102' });
    expect(readyLine('dns', 42, line)).toEqual({ service: 'dns', pid: 42, endpoints: { dns: 'udp://0.0.0.0:53' }, health: 'http://127.0.0.1:9102', logs: 'console' });
    expect(readyLine('dns', 42, '{"msg":"ready"')).toBeUndefined(); // torn
    expect(readyLine('dns', 42, JSON.stringify({ msg: 'ready' }))).toBeUndefined(); // no endpoints
    expect(readyLine('dns', undefined, line)).toBeUndefined(); // no live process
    expect(readyLine('dns', 42, JSON.stringify({ msg: 'config applied', note: '"msg":"ready"' }))).toBeUndefined();
  });

  it('is written whole, as kith status reads it', () => {
    const file = path.join(tempDir('kith-run-state-'), 'status.json');
    const ready = new Map([['dns', { service: 'dns', pid: 42, endpoints: {}, health: 'http://127.0.0.1:9102', logs: 'console' }]]);
    const services = runServices([{ name: 'dns', state: 'running', pid: 42, startedAt: 0, restarts: 1, backoffMs: 500 }], ready);
    writeRunStateSync(file, { pid: 1, started: 'boot', services });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: 1, services: [{ service: 'dns', state: 'ready', pid: 42, restarts: 1, health: 'http://127.0.0.1:9102' }] });
  });
});
