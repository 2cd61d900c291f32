import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { deleteKeysUnder } from '../../detectors';
import type { IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import { countEvents, isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';

/**
 * A loopback TCP proxy in front of the real Redis that can be taken down (every connection is
 * cut, and new ones are refused) and brought back, as a Redis restart or a network cut would.
 */
function startRedisProxy(target: URL): Promise<{ server: Server; url: string; setUp: (up: boolean) => void; refused: () => number }> {
  let up = false;
  let refused = 0;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    if (!up) {
      refused++;
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 6379), target.hostname);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
    };
    open.add(client);
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        url: `redis://127.0.0.1:${port}`,
        setUp: (next) => {
          up = next;
          if (!up) for (const socket of open) socket.destroy();
        },
        refused: () => refused,
      });
    });
  });
}

describe('when rule state (Redis) is unavailable', () => {
  let stack: Stack;
  let proxy: Awaited<ReturnType<typeof startRedisProxy>>;
  const redisPrefix = `it-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_REDIS_PREFIX: redisPrefix, VIGIL_RULES_WATCH: 'false' }));
    proxy = await startRedisProxy(new URL(stack.config.redis.url));
  });

  afterAll(async () => {
    const redis = new Redis(stack.config.redis.url);
    await deleteKeysUnder(redis, redisPrefix);
    await redis.quit();
    await stack.cleanup();
    await new Promise((done) => proxy.server.close(done));
  });

  it('pauses the partition while it is down, then indexes every event once and still fires the detection', async () => {
    // Events are indexed while the rules run, so an attempt that fails on Redis may already have
    // indexed them: the redone chunk must find them as duplicates, not lose or double them.
    const throughProxy = { ...stack.config, redis: { ...stack.config.redis, url: proxy.url } };
    // Vigil opens (and closes) its own Redis client, through the proxy.
    const vigil = vigilOn(stack, {}, throughProxy);
    const pipeline = vigil.pipeline as IngestPipeline;
    await vigil.start();
    try {
      const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'outage-test', kind: 'gateway' } });
      const start = Date.now() - 120_000;
      for (let n = 0; n < 12; n++) {
        emitter.policy({
          id: `evt-outage-${n}`,
          time: new Date(start + n * 5_000).toISOString(),
          actor: { userId: 'u-outage' },
          client: { ip: '81.2.69.142' },
          policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', reason: 'invalid_credentials', group: 'accounts', resource: { api: 'accounts-v1', method: 'POST', path: '/v1/login' } },
        });
      }
      await emitter.close();

      await waitFor('the partition paused on the Redis outage', () => pipeline.stats().pauses >= 1, 60_000);
      expect(pipeline.stats().detections).toBe(0);
      expect(proxy.refused()).toBeGreaterThan(0);

      proxy.setUp(true);
      await waitFor('the detection, once Redis is back', () => pipeline.stats().detections >= 1, 60_000);
      await waitFor('all 12 events counted', () => pipeline.stats().indexed + pipeline.stats().duplicates >= 12, 30_000);
      const stats = pipeline.stats();
      expect(stats.detectionsByRule['authn-failures-per-user']).toBe(1);
      expect(stats.deadLettered).toBe(0);
      expect(await countEvents(stack)).toBe(12);
    } finally {
      await vigil.stop();
    }
  });
});
