import { spawnSync } from 'node:child_process';
import { fromDeadLetterMessage, type IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import { indexNames, type EventDocument } from '../../schemas';
import { SIMULATED_SOURCES, emitSimulatedTraffic, malformedMessages } from '../../scripts/simulated-traffic';
import { createRedis, scanKeys } from '../../platform';
import { CONSUMER_LOOPS, countEvents, readTopic, testLogger, waitFor, vigilOn, withVigil } from '../support/harness';
import { testProducer } from '../support/produce';

const validPolicy = (id: string): Record<string, unknown> => ({
  id,
  schemaVersion: 1,
  family: 'policy',
  time: new Date().toISOString(),
  source: { service: 'raw-gateway', kind: 'gateway' },
  actor: { userId: 'u-raw', consumerId: 'partner-raw' },
  client: { ip: '81.2.69.142' },
  policy: { kind: 'authn', name: 'basic-auth', outcome: 'fail', reason: 'invalid_credentials', group: 'legacy', resource: { api: 'legacy-v1', method: 'POST', path: '/v1/login' } },
});

describe.each(CONSUMER_LOOPS)('ingest pipeline against the real Kafka and Elasticsearch, $loop', ({ env, ahead }) => {
  const run = withVigil(env);

  it('runs the loop it was configured for', () => {
    expect(run.stack.config.fetch.ahead).toBe(ahead);
  });

  it('indexes every event emitted through the SDK, exactly once, with ECS fields', async () => {
    const emitters = SIMULATED_SOURCES.slice(0, 3).map((source) =>
      createEmitter({ kafka: run.stack.kafka, topics: run.stack.config.topics, source, lingerMs: 10 }),
    );
    const traffic = emitSimulatedTraffic(emitters, 600, { labels: { run: 'sdk' }, seed: 7 });
    await Promise.all(emitters.map((emitter) => emitter.close()));
    expect(emitters.map((emitter) => emitter.stats().delivered).reduce((a, b) => a + b)).toBe(600);

    const query = { term: { 'labels.run': 'sdk' } };
    await waitFor('600 indexed events', async () => (await countEvents(run.stack, query)) >= 600);
    expect(await countEvents(run.stack, query)).toBe(600);
    expect(await countEvents(run.stack, { bool: { filter: [query, { term: { 'vigil.family': 'policy' } }] } })).toBe(traffic.policy);
    expect(await countEvents(run.stack, { bool: { filter: [query, { term: { 'vigil.family': 'invocation' } }] } })).toBe(traffic.invocation);
    expect(await countEvents(run.stack, { bool: { filter: [query, { term: { 'vigil.family': 'device' } }] } })).toBe(traffic.device);

    const located = await run.stack.elasticsearch.search<EventDocument>({
      index: indexNames(run.stack.config.indices.prefix).eventPattern,
      size: 1,
      query: { bool: { filter: [query, { term: { 'source.ip': '81.2.69.0/24' } }, { term: { 'vigil.family': 'invocation' } }] } },
    });
    const document = located.hits.hits[0]?._source;
    expect(document?.source?.geo?.country_iso_code).toBe('GB');
    expect(typeof document?.source?.geo?.location?.lat).toBe('number');
    expect(typeof document?.source?.geo?.location?.lon).toBe('number');
    expect(document?.http?.response?.status_code).toEqual(expect.any(Number));
    expect(document?.vigil.kafka.topic).toBe(run.stack.config.topics.invocation);
    expect(located.hits.hits[0]?._id).toBe(document?.event.id);

    // A request's decisions wait for its invocation 10 minutes plus VIGIL_STATE_GRACE_MS (15 by
    // default), so an invocation read after a stop still finds them.
    const redis = createRedis(run.stack.config, testLogger);
    try {
      const keys = await scanKeys(redis, `${run.stack.config.redis.prefix}:corr:{req:*}`);
      expect(keys.length).toBeGreaterThan(0);
      const ttl = await redis.pttl(keys[0] ?? '');
      expect(ttl).toBeGreaterThan(24 * 60_000);
      expect(ttl).toBeLessThanOrEqual(25 * 60_000);
    } finally {
      await redis.quit();
    }
  });

  it('dead-letters each kind of bad message with its reason and position, and indexes the good ones around it', async () => {
    const bad = malformedMessages(run.stack.config.limits.maxMessageBytes, run.stack.config.limits.maxJsonDepth, validPolicy('evt-dlq-template'));
    const producer = testProducer(run.stack.kafka);
    await producer.connect();
    const goodIds: string[] = [];
    for (const [position, message] of bad.entries()) {
      const key = `dlq-${position}`;
      if (message.topicFamily !== 'policy') {
        await producer.send({ topic: run.stack.config.topics[message.topicFamily], messages: [{ key, value: message.value }], acks: -1 });
        continue;
      }
      // One key keeps the three on one partition, in order: good, bad, good.
      const before = `evt-dlq-good-${position}-a`;
      const after = `evt-dlq-good-${position}-b`;
      goodIds.push(before, after);
      await producer.send({
        topic: run.stack.config.topics.policy,
        messages: [
          { key, value: JSON.stringify(validPolicy(before)) },
          { key, value: message.value },
          { key, value: JSON.stringify(validPolicy(after)) },
        ],
        acks: -1,
      });
    }
    // An empty message too.
    await producer.send({ topic: run.stack.config.topics.device, messages: [{ key: 'dlq-empty', value: null }], acks: -1 });
    await producer.disconnect();

    const records = (await readTopic(run.stack.kafka, run.stack.config.topics.deadLetter, bad.length + 1)).map(fromDeadLetterMessage);
    expect(records.map((record) => record.reasonCode).sort()).toEqual([...bad.map((entry) => entry.reason), 'empty'].sort());
    for (const record of records) {
      expect(record.reason.length).toBeGreaterThan(0);
      expect(Number(record.offset)).toBeGreaterThanOrEqual(0);
      expect([run.stack.config.topics.policy, run.stack.config.topics.invocation, run.stack.config.topics.device]).toContain(record.topic);
    }
    const notJson = records.find((record) => record.reasonCode === 'not_json');
    expect(notJson?.value?.toString()).toBe(bad.find((entry) => entry.reason === 'not_json')?.value);
    const invalid = records.find((record) => record.reasonCode === 'schema_invalid');
    expect(invalid?.reason).toContain('policy.outcome');

    const query = { terms: { 'event.id': goodIds } };
    await waitFor('good events around the bad ones', async () => (await countEvents(run.stack, query)) >= goodIds.length);
    expect(await countEvents(run.stack, query)).toBe(goodIds.length);
  });

  it('indexes raw JSON produced by kcat, a producer that is not the SDK', async () => {
    const lines = [0, 1, 2].map((n) => `kcat-${n}|${JSON.stringify(validPolicy(`evt-kcat-${n}`))}`).join('\n');
    const result = spawnSync('kcat', ['-P', '-b', run.stack.config.kafka.brokers[0] ?? '', '-t', run.stack.config.topics.policy, '-K', '|'], {
      input: `${lines}\n`,
      encoding: 'utf8',
    });
    expect(result.status).toBe(0);
    const query = { prefix: { 'event.id': 'evt-kcat-' } };
    await waitFor('3 kcat events', async () => (await countEvents(run.stack, query)) >= 3);
    expect(await countEvents(run.stack, query)).toBe(3);
  });

  it('creates no duplicate when the same messages are delivered again', async () => {
    const before = await countEvents(run.stack);
    expect(before).toBeGreaterThan(600);
    // A second consumer group replays every topic from the beginning into the same indices.
    const replayConfig = { ...run.stack.config, consumerGroup: `${run.stack.config.consumerGroup}-replay` };
    const second = vigilOn(run.stack, {}, replayConfig);
    const replay = second.pipeline as IngestPipeline;
    await second.start();
    try {
      await waitFor('the replay to reach every indexed event', () => replay.stats().duplicates >= before, 60_000);
      const stats = replay.stats();
      expect(stats.indexed).toBe(0);
      expect(stats.duplicates).toBe(before);
    } finally {
      await second.stop();
    }
    expect(await countEvents(run.stack)).toBe(before);
  });
});
