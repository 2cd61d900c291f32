import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { deleteKeysUnder } from '../../detectors';
import type { IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import type { Vigil } from '../../app';
import { detectionIndexNames, detectionSchema, indexNames } from '../../schemas';
import { isolatedConfig, openStack, readTopic, vigilOn, waitFor, type Stack } from '../support/harness';

describe('detections end to end: Kafka → pipeline with rules → Elasticsearch and the detections topic', () => {
  let stack: Stack;
  let vigil: Vigil;
  let pipeline: IngestPipeline;
  let redis: Redis;
  const redisPrefix = `it-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_REDIS_PREFIX: redisPrefix, VIGIL_RULES_WATCH: 'false' }));
    redis = new Redis(stack.config.redis.url);
    vigil = vigilOn(stack, { redis });
    pipeline = vigil.pipeline as IngestPipeline;
    await vigil.start();
  });

  afterAll(async () => {
    await vigil.stop();
    await deleteKeysUnder(redis, redisPrefix);
    await redis.quit();
    await stack.cleanup();
  });

  it('turns a brute-force burst and a JSON bomb into detections with their evidence', async () => {
    const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'edge-gateway-eu', kind: 'gateway' } });
    const start = Date.now() - 120_000;
    const resource = { api: 'accounts-v1', method: 'POST', path: '/v1/login' } as const;
    for (let n = 0; n < 12; n++) {
      emitter.policy({
        id: `evt-brute-${n}`,
        time: new Date(start + n * 5_000).toISOString(),
        actor: { userId: 'u-e2e', consumerId: 'app-mobile-ios' },
        client: { ip: '81.2.69.142' },
        policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', reason: 'invalid_credentials', group: 'accounts', resource },
      });
    }
    emitter.policy({
      id: 'evt-json-bomb',
      actor: { consumerId: 'partner-globex' },
      client: { ip: '8.8.8.8' },
      policy: { kind: 'json_threat', name: 'json-threat-protection', outcome: 'fail', reason: 'container_depth_exceeded', group: 'payments', resource: { api: 'payments-v2', method: 'POST', path: '/v2/payments' } },
    });
    await emitter.close();

    await waitFor('two detections', () => pipeline.stats().detections >= 2, 60_000);
    const pattern = detectionIndexNames(stack.config.indices.prefix).pattern;
    await waitFor('two detection documents', async () => {
      await stack.elasticsearch.indices.refresh({ index: pattern, allow_no_indices: true });
      const { count } = await stack.elasticsearch.count({ index: pattern, allow_no_indices: true });
      return count >= 2;
    });
    const { hits } = await stack.elasticsearch.search<Record<string, unknown>>({ index: pattern, size: 10, sort: [{ 'rule.id': 'asc' }] });
    const documents = hits.hits.map((hit) => hit._source as { rule: { id: string }; message: string; vigil: { detection: Record<string, unknown> }; event: { id: string } });
    expect(documents.map((document) => document.rule.id)).toEqual(['authn-failures-per-user', 'json-threat-violation']);

    const brute = documents[0];
    expect(brute?.message).toBe('10 failed logins for user u-e2e from 1 IP in 45s; threshold 10 in 5m.');
    expect(brute?.vigil.detection).toMatchObject({
      key: { 'actor.userId': 'u-e2e' },
      observed_value: 10,
      threshold: 10,
      distinct_field: 'client.ip',
      distinct_values: ['81.2.69.142'],
      event_ids: Array.from({ length: 10 }, (_, n) => `evt-brute-${n}`),
    });
    expect(hits.hits.map((hit) => hit._id)).toEqual(documents.map((document) => document.event.id));

    const published = await readTopic(stack.kafka, stack.config.topics.detections, 2);
    const onTopic = published.map((message) => detectionSchema.parse(JSON.parse(message.value?.toString() ?? '{}')));
    expect(onTopic.map((detection) => detection.ruleId).sort()).toEqual(['authn-failures-per-user', 'json-threat-violation']);
    expect(pipeline.stats().detectionsByRule).toEqual({ 'authn-failures-per-user': 1, 'json-threat-violation': 1 });
  });

  it('indexes a too-late event marked vigil.late, and still evaluates it by match rules (issue 15)', async () => {
    const lateBefore = vigil.stats().ingest?.engine?.late ?? 0;
    const threatsBefore = pipeline.stats().detectionsByRule['json-threat-violation'] ?? 0;
    const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'edge-gateway-eu', kind: 'gateway' } });
    const resource = { api: 'payments-v2', method: 'POST', path: '/v2/payments' } as const;
    // One user, so one partition: the first event moves its clock to now, the second is 20
    // minutes behind it, past the allowed lateness (5 minutes).
    const threat = (id: string, time: number, ip: string): unknown =>
      emitter.policy({
        id,
        time: new Date(time).toISOString(),
        actor: { userId: 'u-late', consumerId: 'partner-globex' },
        client: { ip },
        policy: { kind: 'json_threat', name: 'json-threat-protection', outcome: 'fail', reason: 'container_depth_exceeded', group: 'payments', resource },
      });
    threat('evt-late-now', Date.now(), '8.8.4.4');
    threat('evt-late-old', Date.now() - 20 * 60_000, '1.1.1.1');
    await emitter.close();

    await waitFor('both threats detected', () => (pipeline.stats().detectionsByRule['json-threat-violation'] ?? 0) >= threatsBefore + 2, 60_000);
    expect((vigil.stats().ingest?.engine?.late ?? 0) - lateBefore).toBe(1);

    const events = indexNames(stack.config.indices.prefix).eventPattern;
    await stack.elasticsearch.indices.refresh({ index: events });
    const { hits } = await stack.elasticsearch.search<{ event: { id: string }; vigil: { late?: boolean } }>({
      index: events,
      query: { terms: { 'event.id': ['evt-late-now', 'evt-late-old'] } },
      sort: [{ 'event.id': 'asc' }],
    });
    expect(hits.hits.map((hit) => [hit._source?.event.id, hit._source?.vigil.late])).toEqual([
      ['evt-late-now', undefined],
      ['evt-late-old', true],
    ]);
    // Searchable: the field is mapped.
    const { count } = await stack.elasticsearch.count({ index: events, query: { bool: { filter: [{ term: { 'vigil.late': true } }, { term: { 'user.id': 'u-late' } }] } } });
    expect(count).toBe(1);

    const pattern = detectionIndexNames(stack.config.indices.prefix).pattern;
    await waitFor('the late event\'s detection indexed', async () => {
      await stack.elasticsearch.indices.refresh({ index: pattern, allow_no_indices: true });
      const found = await stack.elasticsearch.count({ index: pattern, query: { term: { 'vigil.detection.event_ids': 'evt-late-old' } } });
      return found.count === 1;
    });
  });
});
