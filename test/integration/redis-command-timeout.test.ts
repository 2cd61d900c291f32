/**
 * A Redis that accepts the connection and stops answering (paused, its packets dropped) held the
 * rules' and the alerter's commands for as long as TCP took to give up: no pause of the partition,
 * no warning, a shutdown past its deadline. `VIGIL_REDIS_COMMAND_TIMEOUT_MS` fails such a command,
 * as the partition runner expects of an outage. The real Redis is made to stop answering with
 * `CLIENT PAUSE`.
 */
import { Redis } from 'ioredis';
import { createRedis, loadConfig, type RedisClient } from '../../platform';
import { roundTrip } from '../../detectors/state/round-trip';
import { defineScripts } from '../../detectors/state/scripts';

jest.setTimeout(30_000);

describe('a Redis that stops answering', () => {
  let admin: Redis;
  let redis: RedisClient;

  beforeAll(async () => {
    const config = loadConfig({ ...process.env, VIGIL_REDIS_COMMAND_TIMEOUT_MS: '400' });
    admin = new Redis(config.redis.url);
    redis = createRedis(config);
    defineScripts(redis);
    await redis.ping();
  });

  afterAll(async () => {
    await admin.call('CLIENT', 'UNPAUSE');
    admin.disconnect();
    redis.disconnect();
  });

  it('fails a command after VIGIL_REDIS_COMMAND_TIMEOUT_MS, as an unavailable store the runner retries, and works once it answers again', async () => {
    await admin.call('CLIENT', 'PAUSE', '2500', 'ALL');
    const started = Date.now();
    const outcome = await roundTrip(redis, [{ script: 'readRequest', items: [{ keys: ['it-timeout:{r}:request', 'it-timeout:{r}:request:authn-user'], args: [] }] }], { operation: 'correlation' }).then(
      () => 'answered',
      (error: unknown) => error,
    );
    const waited = Date.now() - started;
    expect(outcome).toMatchObject({ name: 'StoreUnavailableError', retriable: true });
    expect(String((outcome as Error).message)).toMatch(/timed out/i);
    // Within the timeout (and well before the pause ends), not when Redis answers again.
    expect(waited).toBeLessThan(2000);
    await admin.call('CLIENT', 'UNPAUSE');
    expect(await redis.ping()).toBe('PONG');
  });
});
