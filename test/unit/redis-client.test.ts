import type { Cluster } from 'ioredis';
import { createRedis, keepHostname, loadConfig, verifyConnections } from '../../platform';

describe('createRedis on a Redis Cluster', () => {
  // ioredis resolved each seed to an address before the TLS handshake, so a node certificate that
  // names its host (not its address) failed verification.
  it('dials TLS seeds by their hostname, and leaves plain seeds to ioredis\'s lookup', async () => {
    const tls = createRedis(loadConfig({ REDIS_CLUSTER_NODES: 'rediss://127.0.0.1:1' })) as Cluster;
    const plain = createRedis(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:1' })) as Cluster;
    try {
      expect(tls.options.dnsLookup).toBe(keepHostname);
      expect(plain.options.dnsLookup).not.toBe(keepHostname);
      const looked = await new Promise<string>((resolve, reject) => keepHostname('redis-1.cache.internal', (error, address) => (error ? reject(error) : resolve(address))));
      expect(looked).toBe('redis-1.cache.internal');
    } finally {
      tls.disconnect();
      plain.disconnect();
    }
  });
});

describe('createRedis on a Redis Cluster that is away', () => {
  // ioredis holds a cluster's commands until it is ready, without a timeout: with no node
  // answering, the start check's PING (and every chunk's state) waited forever.
  it('fails its commands once it has not been ready for the connect timeout per seed and the command timeout, and the start check says Redis is unreachable', async () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:1,127.0.0.1:2', VIGIL_REDIS_COMMAND_TIMEOUT_MS: '500' });
    const cluster = createRedis(config) as Cluster;
    try {
      const started = Date.now();
      const ping = await cluster.ping().then(
        () => 'answered',
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      expect(ping).toMatch(/^Redis Cluster not ready for 10500 ms \((connecting|reconnecting|close)\)$/);
      expect(Date.now() - started).toBeLessThan(20_000);
      // Until it is ready again, a command fails at once instead of queueing.
      await expect(cluster.get('k')).rejects.toThrow(/not ready|enableOfflineQueue/);
      const unreachable = await verifyConnections(config, { redis: cluster });
      expect(unreachable.map((error) => [error.service, error.retriable, error.message.split(': ')[1]])).toStrictEqual([['redis', true, 'unreachable']]);
    } finally {
      cluster.disconnect();
    }
  }, 30_000);
});
