import type { Kafka, Producer } from 'kafkajs';
import { createVigil } from '../../app';
import { createEmitter } from '../../ingest/sdk';
import { countEvents, isolatedConfig, openStack, testLogger, waitFor, type Stack } from '../support/harness';

/** The real Kafka client, but the `failAt`-th producer it makes refuses to connect. */
function kafkaFailingProducer(kafka: Kafka, failAt: number): Kafka {
  let made = 0;
  return new Proxy(kafka, {
    get(target, property, receiver) {
      if (property !== 'producer') return Reflect.get(target, property, receiver) as unknown;
      return (...args: Parameters<Kafka['producer']>): Producer => {
        const producer = target.producer(...args);
        made++;
        if (made === failAt) producer.connect = () => Promise.reject(new Error('connection refused (test)'));
        return producer;
      };
    },
  });
}

describe('createVigil, the composition root', () => {
  let stack: Stack;

  beforeAll(() => {
    stack = openStack(isolatedConfig());
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  it('runs the pipeline and the alerter together, then stops both and closes what it opened', async () => {
    const vigil = createVigil(stack.config, { logger: testLogger, kafka: stack.kafka, elasticsearch: stack.elasticsearch });
    // Every part reports on the one instrumentation bus, so benchmarks and metrics need no patches.
    const seen = new Map<string, number>();
    const count = (name: string) => () => seen.set(name, (seen.get(name) ?? 0) + 1);
    vigil.instrumentation.on('runner.chunk', count('runner.chunk'));
    vigil.instrumentation.on('state.round_trip', count('state.round_trip'));
    vigil.instrumentation.on('detectors.batch', count('detectors.batch'));
    const stages: string[] = [];
    vigil.instrumentation.on('pipeline.stage', ({ stage, eventIds }) => stages.push(`${stage}:${eventIds.join(',')}`));
    await vigil.start();
    try {
      const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'composition-test', kind: 'service' } });
      emitter.invocation({ id: 'evt-composition-1', actor: { consumerId: 'app-1' }, invocation: { resource: { api: 'orders-v1', method: 'GET', path: '/v1/orders' }, route: '/v1/orders', status: 200, latencyMs: 3 } });
      await emitter.close();
      await waitFor('the event indexed', async () => (await countEvents(stack)) >= 1);
      expect(vigil.stats().ingest?.indexed).toBe(1);
      expect(vigil.stats().alerter).toBeDefined();
      expect(stages).toEqual(expect.arrayContaining(['decode:', 'correlate:evt-composition-1', 'index:evt-composition-1', 'detect:evt-composition-1']));
      expect(seen.get('runner.chunk')).toBeGreaterThanOrEqual(1);
      expect(seen.get('detectors.batch')).toBeGreaterThanOrEqual(1);
      expect(seen.get('state.round_trip')).toBeGreaterThanOrEqual(1);
    } finally {
      await vigil.stop();
    }
    await waitFor('the Redis client Vigil opened to close', () => vigil.redis?.status === 'end', 5000);
    await vigil.stop(); // idempotent
  });

  it('fails the start naming Elasticsearch and its setting when it is unreachable, without the request in the message', async () => {
    const away = isolatedConfig({ ELASTICSEARCH_URL: 'http://127.0.0.1:1' });
    const vigil = createVigil(away, { logger: testLogger, kafka: stack.kafka });
    const failure = await vigil.start().then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toMatch(/^elasticsearch: unreachable, so Vigil's index templates could not be installed \(.*ECONNREFUSED.*\); check ELASTICSEARCH_URL and that Elasticsearch is up$/);
    expect(failure?.message.length).toBeLessThan(300);
    await waitFor('the Redis client Vigil opened to close', () => vigil.redis?.status === 'end', 5000);
  });

  it('stops what had started when a later part fails to start, and rethrows', async () => {
    // Producers in start order: the pipeline's dead letters and detections (1), the notifier's (2).
    const vigil = createVigil(stack.config, { logger: testLogger, kafka: kafkaFailingProducer(stack.kafka, 2), elasticsearch: stack.elasticsearch });
    await expect(vigil.start()).rejects.toThrow('connection refused (test)');
    // The pipeline had joined its group; it left it, and the Redis client Vigil opened is closed.
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.describeGroups([stack.config.consumerGroup]);
      expect(groups[0]?.members).toEqual([]);
    } finally {
      await admin.disconnect();
    }
    await waitFor('the Redis client Vigil opened to close', () => vigil.redis?.status === 'end', 5000);
    await expect(vigil.start()).rejects.toThrow('Vigil cannot start: it is stopped');
  });
});
