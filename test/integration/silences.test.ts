/**
 * `vigil silences` on the real Redis: made, listed (in force first), ended, and an old ended one
 * dropped.
 */
import { Redis } from 'ioredis';
import { ENDED_SILENCE_KEPT_MS, createSilenceStore } from '../../detectors';
import { runSilences } from '../../scripts/silences';
import { isolatedConfig } from '../support/harness';

describe('vigil silences', () => {
  const config = isolatedConfig();
  const redis = new Redis(config.redis.url);

  afterAll(async () => {
    const keys = await redis.keys(`${config.redis.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('adds a silence, lists it in force before the ended ones, ends it, and drops one ended more than a week ago', async () => {
    const now = Date.parse('2026-12-05T12:00:00.000Z');
    const store = createSilenceStore(redis, config.redis.prefix);
    await store.add({ matchers: { 'client.ip': '198.51.100.9' }, forMs: 3_600_000, comment: 'ended yesterday' }, now - 86_400_000);
    await store.add({ matchers: { 'client.ip': '198.51.100.10' }, forMs: 3_600_000, comment: 'long ago' }, now - ENDED_SILENCE_KEPT_MS - 2 * 3_600_000);
    const context = (out: string[]) => ({ config, redis, now: () => now, out: (line: string) => out.push(line) });

    const added: string[] = [];
    expect(await runSilences(['add', '--match', 'client.ip=203.0.113.7', '--rule', 'credential-stuffing', '--for', '2h', '--comment', 'pen test SEC-12'], context(added))).toBe(0);
    const id = /^silence (\S+): notifications of matching alerts held back until 2026-12-05T14:00:00.000Z$/.exec(added[0] ?? '')?.[1];
    expect(id).toBeDefined();

    const listed: string[] = [];
    expect(await runSilences(['list'], context(listed))).toBe(0);
    expect(listed.map((line) => line.replace(/ {2}[0-9a-f-]{36} {2}/, '  ID  '))).toStrictEqual([
      '1 silences in force, 2 kept (ended ones for 7 days)',
      '  ID  active until 2026-12-05T14:00:00.000Z  client.ip=203.0.113.7, rule credential-stuffing  (pen test SEC-12)',
      '  ID  ended 2026-12-04T13:00:00.000Z  client.ip=198.51.100.9  (ended yesterday)',
    ]);
    // The one ended more than a week ago is gone from Redis, not only from the list.
    expect(Object.values(await redis.hgetall(`${config.redis.prefix}:{alerts}:silences`)).some((text) => text.includes('long ago'))).toBe(false);

    const ended: string[] = [];
    expect(await runSilences(['expire', id ?? ''], context(ended))).toBe(0);
    expect(ended).toStrictEqual([`silence ${id ?? ''} ended: matching alerts are notified again from their next change`]);
    expect(await runSilences(['expire', id ?? ''], context([]))).toBe(1);
    expect(await store.active(now)).toStrictEqual([]);

    // What the store refuses is named, with the usage exit code.
    const errors: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
    try {
      expect(await runSilences(['add', '--match', 'client ip=203.0.113.7', '--for', '1h', '--comment', 'x'], context([]))).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(errors).toStrictEqual(['vigil silences: "client ip" is not a field name: it holds a space or "=" (a field is written as in an alert\'s key, e.g. client.ip)']);
  });

  it('refuses a rule or field the configured rules never put in an alert (a typo would silence nothing), and still silences when the rules cannot be loaded', async () => {
    const now = Date.parse('2026-12-05T12:00:00.000Z');
    const store = createSilenceStore(redis, config.redis.prefix);
    const before = (await store.list(now)).length;
    const errors: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
    try {
      const context = { config, redis, now: () => now, out: () => undefined };
      expect(await runSilences(['add', '--match', 'client.iq=203.0.113.7', '--for', '1h', '--comment', 'x'], context)).toBe(2);
      expect(await runSilences(['add', '--rule', 'credential-stufing', '--for', '1h', '--comment', 'x'], context)).toBe(2);
      expect(await store.list(now)).toHaveLength(before);
      expect(errors[0]).toMatch(/^vigil silences: no alert of the default rule pack has client\.iq in its key or entities; did you mean client\.ip\? /);
      expect(errors[1]).toBe('vigil silences: no rule "credential-stufing" in the default rule pack; did you mean credential-stuffing?: the silence would hold back nothing');

      // A rule path that is not there: the silence is made unchecked, and the warning says why.
      errors.length = 0;
      const broken = { ...config, detection: { ...config.detection, rulesPaths: ['/nonexistent/rules'] } };
      expect(await runSilences(['add', '--match', 'client.iq=203.0.113.7', '--for', '1h', '--comment', 'x'], { ...context, config: broken })).toBe(0);
      expect(errors).toStrictEqual([expect.stringMatching(/^vigil silences: the rules in \/nonexistent\/rules \(VIGIL_RULES_PATH\) could not be loaded \(.*no such file or folder.*\); the silence's rule and fields are not checked$/)]);
      expect(await store.list(now)).toHaveLength(before + 1);
    } finally {
      spy.mockRestore();
    }
  });
});
