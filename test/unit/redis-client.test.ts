import type { Cluster } from 'ioredis';
import { createRedis, keepHostname, loadConfig } from '../../platform';

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
