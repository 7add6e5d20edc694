import { describe, expect, it } from 'vitest';
import { loadCalendarConfig } from './config.ts';
import calendarConfig from './config.ts';

const source = (files: Record<string, string>) => ({ read: async (p: string) => files[p], list: async () => [] });

describe('calendar config', () => {
  it('the defaults validate: one owner user signing in with the access token', async () => {
    const r = await loadCalendarConfig(source(calendarConfig.defaults));
    expect(r.ok && r.value.users.kith).toEqual({ password: 'owner-token' });
  });
  it('names file, line and field for each problem', async () => {
    const r = await loadCalendarConfig(source({ 'calendar/calendar.yaml': 'users:\n  kith:\n    password: hunter2\n  Bad!: {passwordHash: x}\nshares:\n  - {owner: kith, collection: c, with: nobody, access: read}\nlimits: {maxBodyBytes: 10}\n' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.issues.map((i) => `${i.line}:${i.field}:${i.message}`).join('\n');
    expect(text).toMatch(/^3:users\.kith\.password:/m);
    expect(text).toMatch(/^4:users\.Bad!/m);
    expect(text).toMatch(/^7:limits\.maxBodyBytes:/m);
  });
  it('cross-checks shares against users', async () => {
    const r = await loadCalendarConfig(source({ 'calendar/calendar.yaml': 'users:\n  kith: {password: owner-token}\nshares:\n  - {owner: kith, collection: c, with: nobody, access: read}\n' }));
    expect(!r.ok && r.issues[0]).toMatchObject({ field: 'shares.0.with' });
  });
});
