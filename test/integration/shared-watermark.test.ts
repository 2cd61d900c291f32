import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { SharedWatermark } from '../../platform';
import { testLogger } from '../support/harness';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * The instances' shared event-time watermark on the real Redis: each reads the lowest of the
 * others, never its own; an instance that stopped, or stopped writing, holds nobody back.
 */
describe('the shared event-time watermark', () => {
  let redis: Redis;
  const key = `it-${randomUUID().slice(0, 8)}:align:group`;

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    await redis.del(key);
    await redis.quit();
  });

  it('gives each instance the lowest of the others, forgets a stopped or silent one, and says when it changed', async () => {
    const locals = { a: 1_000, b: 2_000, c: -Infinity };
    const changes = { a: 0, b: 0 };
    const clock = { now: 1_000_000 };
    const member = (name: 'a' | 'b'): SharedWatermark =>
      new SharedWatermark({ store: redis, key, member: name, local: () => locals[name], onChange: () => changes[name]++, ttlMs: 5_000, now: () => clock.now, logger: testLogger });
    const a = member('a');
    const b = member('b');
    // Before any other instance wrote, nothing holds an instance back.
    expect(a.low()).toBe(Infinity);
    await a.sync();
    await b.sync();
    await a.sync();
    expect([a.low(), b.low()]).toStrictEqual([2_000, 1_000]);
    expect(changes).toStrictEqual({ a: 1, b: 1 });
    // A third instance that has not seen its partitions yet holds everybody back (-Infinity).
    const c = new SharedWatermark({ store: redis, key, member: 'c', local: () => locals.c, onChange: () => undefined, ttlMs: 5_000, now: () => clock.now });
    await c.sync();
    await a.sync();
    expect(a.low()).toBe(-Infinity);
    // c stops writing: past the TTL its field no longer counts, and is removed.
    clock.now += 6_000;
    await b.sync();
    await a.sync();
    expect(a.low()).toBe(2_000);
    expect(Object.keys(await redis.hgetall(key)).sort()).toStrictEqual(['a', 'b']);
    // b moves on, then stops: its field goes with it.
    locals.b = 3_500;
    await b.sync();
    await a.sync();
    expect(a.low()).toBe(3_500);
    await b.stop();
    await a.sync();
    expect(a.low()).toBe(Infinity);
    expect(changes.a).toBe(5);
    await a.stop();
    expect(await redis.exists(key)).toBe(0);
  });

  it('does not hold up a shutdown when Redis does not answer', async () => {
    // A real client with no Redis behind it: its commands wait in the offline queue, retried.
    const away = new Redis('redis://127.0.0.1:1', { retryStrategy: () => 200, maxRetriesPerRequest: null });
    away.on('error', () => undefined);
    const watermark = new SharedWatermark({ store: away, key, member: 'away', local: () => 0, onChange: () => undefined, logger: testLogger });
    try {
      void watermark.sync();
      const began = Date.now();
      await watermark.stop();
      const took = Date.now() - began;
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(5_000);
    } finally {
      away.disconnect();
    }
  });
});
