import { EventEmitter } from 'node:events';
import type { Kafka } from 'kafkajs';
import { ConnectionError, loadConfig, verifyConnections, type RedisClient } from '../../platform';

/** A Redis client whose PING fails as ioredis's does (its own wrapper), after an `error` event saying why. */
function failingRedis(cause: Error): RedisClient {
  const client = Object.assign(new EventEmitter(), {
    isCluster: false,
    options: { db: 0 },
    ping: () => {
      client.emit('error', cause);
      return Promise.reject(new Error('Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.'));
    },
  });
  return client as unknown as RedisClient;
}

const kafka = { admin: () => ({ connect: () => Promise.resolve(), describeCluster: () => Promise.resolve({}), disconnect: () => Promise.resolve() }) } as unknown as Kafka;
const config = loadConfig({ REDIS_URL: 'rediss://127.0.0.1:6390' });

describe('verifyConnections: Redis', () => {
  it('stops the start on an untrusted certificate, read from the client\'s error event under ioredis\'s retry wrapper', async () => {
    const certificate = Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const refused = await verifyConnections(config, { kafka, redis: failingRedis(certificate) }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectionError);
    expect((refused as ConnectionError).message).toBe('redis (rediss://127.0.0.1:6390): TLS failed: unable to verify the first certificate');
    expect((refused as ConnectionError).retriable).toBe(false);
  });

  // A rediss:// Redis restarting or failing over resets the handshake: a crash loop if taken for a certificate.
  it.each([
    ['a reset during the handshake', Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), { code: 'ECONNRESET' })],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' })],
  ])('lets the start go on, Redis unreachable, after %s', async (_name, cause) => {
    const unreachable = await verifyConnections(config, { kafka, redis: failingRedis(cause) });
    expect(unreachable.map((error) => [error.service, error.retriable, error.message.split(': ')[1]])).toStrictEqual([['redis', true, 'unreachable']]);
  });

  it('asks only the stores it is given: an intake alone needs neither Elasticsearch nor Redis', async () => {
    await expect(verifyConnections(config, { kafka })).resolves.toStrictEqual([]);
  });
});
