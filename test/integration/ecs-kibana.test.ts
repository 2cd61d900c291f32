import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Vigil } from '../../app';
import { deleteKeysUnder } from '../../detectors';
import type { IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import { ECS_VERSION, TEMPLATE_VERSION, detectionIndexNames, indexNames } from '../../schemas';
import { ECS, documentPaths, ecsCategorizationProblems, ecsMappingProblems, NOT_ECS } from '../support/ecs';
import { isRecord } from '../support/mapping';
import { isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';

/**
 * Events and detections made by the real pipeline, then found on the real Elasticsearch by the
 * queries Kibana makes: the Users › Authentications view (event.category: authentication,
 * grouped by user.name, counted by event.outcome), a pivot on related.user across Vigil's
 * indices, and the External Alerts rule's query on the detections (event.kind: alert, timed by
 * event.ingested). The documents and the live mappings are checked against ECS as well.
 */
describe('ECS documents through the pipeline, found as Kibana looks for them', () => {
  let stack: Stack;
  let vigil: Vigil;
  let redis: Redis;
  const redisPrefix = `it-${randomBytes(4).toString('hex')}`;
  const user = `u-ecs-${randomBytes(3).toString('hex')}`;
  let all: string;

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_REDIS_PREFIX: redisPrefix, VIGIL_RULES_WATCH: 'false' }));
    all = `${stack.config.indices.prefix}-*`;
    redis = new Redis(stack.config.redis.url);
    vigil = vigilOn(stack, { redis });
    await vigil.start();

    const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'edge-gateway-eu', kind: 'gateway' } });
    const start = Date.now() - 120_000;
    const resource = { api: 'accounts-v1', method: 'POST', path: '/v1/login' } as const;
    for (let n = 0; n < 12; n++) {
      emitter.policy({
        id: `evt-ecs-${user}-fail-${n}`,
        time: new Date(start + n * 5_000).toISOString(),
        actor: { userId: user },
        client: { ip: '81.2.69.142' },
        policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', reason: 'invalid_credentials', group: 'accounts', resource },
      });
    }
    emitter.policy({
      id: `evt-ecs-${user}-pass`,
      time: new Date(start + 70_000).toISOString(),
      actor: { userId: user },
      client: { ip: '81.2.69.142' },
      policy: { kind: 'authn', name: 'verify-password', outcome: 'pass', group: 'accounts', resource },
    });
    emitter.policy({
      id: `evt-ecs-${user}-authz`,
      time: new Date(start + 75_000).toISOString(),
      actor: { userId: user },
      client: { ip: '81.2.69.142' },
      policy: { kind: 'authz', name: 'require-scope', outcome: 'fail', reason: 'insufficient_scope', group: 'accounts', resource: { ...resource, path: '/v1/admin' } },
    });
    emitter.invocation({
      id: `evt-ecs-${user}-call`,
      time: new Date(start + 80_000).toISOString(),
      actor: { userId: user },
      client: { ip: '81.2.69.142', userAgent: 'AcmePay/5.12.0 (iPhone; iOS 18.1)' },
      invocation: { resource: { api: 'accounts-v1', method: 'GET', path: '/v1/me' }, route: '/v1/me', status: 200, latencyMs: 12, bytesOut: 512 },
    });
    await emitter.close();

    const pipeline = vigil.pipeline as IngestPipeline;
    await waitFor('a detection', () => pipeline.stats().detections >= 1, 60_000);
    await waitFor('15 events and a detection indexed', async () => {
      await stack.elasticsearch.indices.refresh({ index: all, allow_no_indices: true });
      // The events counted on their own: a second detection must not stand in for a late event.
      const events = await stack.elasticsearch.count({ index: `${stack.config.indices.prefix}-events-*`, allow_no_indices: true, query: { term: { 'related.user': user } } });
      const detections = await stack.elasticsearch.count({ index: `${stack.config.indices.prefix}-detections-*`, allow_no_indices: true, query: { term: { 'related.user': user } } });
      return events.count >= 15 && detections.count >= 1;
    });
  });

  afterAll(async () => {
    await vigil.stop();
    await deleteKeysUnder(redis, redisPrefix);
    await redis.quit();
    await stack.cleanup();
  });

  it("finds the user's authentications as the Authentications view does: by user.name, category and outcome", async () => {
    const response = await stack.elasticsearch.search({
      index: all,
      size: 0,
      query: { bool: { filter: [{ term: { 'event.category': 'authentication' } }, { term: { 'user.name': user } }, { exists: { field: 'event.outcome' } }] } },
      aggs: { users: { terms: { field: 'user.name' }, aggs: { outcomes: { terms: { field: 'event.outcome' } } } } },
    });
    const users = (response.aggregations?.users as { buckets: { key: string; doc_count: number; outcomes: { buckets: { key: string; doc_count: number }[] } }[] }).buckets;
    expect(users.map((bucket) => [bucket.key, bucket.doc_count])).toStrictEqual([[user, 13]]);
    expect(Object.fromEntries(users[0]?.outcomes.buckets.map((bucket) => [bucket.key, bucket.doc_count]) ?? [])).toStrictEqual({ failure: 12, success: 1 });
    const failures = await stack.elasticsearch.count({
      index: all,
      query: { bool: { filter: [{ term: { 'event.category': 'authentication' } }, { term: { 'event.outcome': 'failure' } }, { term: { 'user.name': user } }] } },
    });
    expect(failures.count).toBe(12);
  });

  it('pivots on related.user across events and detections', async () => {
    const response = await stack.elasticsearch.search<Record<string, unknown>>({ index: all, size: 50, query: { term: { 'related.user': user } } });
    const indices = new Set(response.hits.hits.map((hit) => hit._index.replace(/-\d{4}\.\d{2}\.\d{2}$/, '')));
    const prefix = stack.config.indices.prefix;
    expect([...indices].sort()).toStrictEqual([`${prefix}-detections`, `${prefix}-events-invocation`, `${prefix}-events-policy`]);
    // Every document about the user names the IP too, the takeover's detection included: keyed on
    // the user (account-takeover-sequence v2), it relates the address its final sign-in came from.
    const withoutIp = await stack.elasticsearch.search<{ rule?: { id?: string } }>({
      index: all,
      query: { bool: { filter: [{ term: { 'related.user': user } }], must_not: [{ term: { 'related.ip': '81.2.69.142' } }] } },
    });
    expect(withoutIp.hits.hits.map((hit) => hit._source?.rule?.id)).toEqual([]);
    const takeover = await stack.elasticsearch.search<{ source?: { ip?: string } }>({
      index: detectionIndexNames(stack.config.indices.prefix).pattern,
      query: { bool: { filter: [{ term: { 'rule.id': 'account-takeover-sequence' } }, { term: { 'related.ip': '81.2.69.142' } }, { term: { 'user.id': user } }] } },
    });
    expect(takeover.hits.hits.map((hit) => hit._source?.source?.ip)).toEqual(['81.2.69.142']);
  });

  it("finds the detection with the External Alerts rule's query, with the fields the rule maps", async () => {
    const response = await stack.elasticsearch.search<Record<string, unknown>>({
      index: detectionIndexNames(stack.config.indices.prefix).pattern,
      query: {
        bool: {
          filter: [{ term: { 'event.kind': 'alert' } }, { term: { 'event.module': 'vigil' } }, { range: { 'event.ingested': { gte: 'now-2m' } } }, { term: { 'user.id': user } }],
        },
      },
    });
    // The failures, and the takeover their success completed: both about the user.
    const byRule = new Map(response.hits.hits.map((hit) => [(hit._source as { rule?: { id?: string } } | undefined)?.rule?.id, hit._source ?? {}]));
    expect([...byRule.keys()].sort()).toEqual(['account-takeover-sequence', 'authn-failures-per-user']);
    const detection = byRule.get('authn-failures-per-user') ?? {};
    expect(detection).toMatchObject({
      ecs: { version: ECS_VERSION },
      message: expect.stringContaining(`failed logins for user ${user}`) as unknown,
      event: { kind: 'alert', severity: 47, risk_score: 47 },
      rule: { id: 'authn-failures-per-user' },
      user: { id: user },
      threat: {
        framework: 'MITRE ATT&CK',
        technique: [{ id: 'T1110', name: 'Brute Force', subtechnique: [{ id: 'T1110.001', name: 'Password Guessing' }] }],
      },
      related: { ip: ['81.2.69.142'], user: [user] },
    });
  });

  it('indexes documents and live mappings that ECS accepts', async () => {
    const response = await stack.elasticsearch.search<Record<string, unknown>>({ index: all, size: 50, query: { term: { 'related.user': user } } });
    const documents = response.hits.hits.map((hit) => hit._source ?? {});
    expect(documents.length).toBeGreaterThanOrEqual(16);
    for (const document of documents) {
      expect(ecsCategorizationProblems(document)).toStrictEqual([]);
      expect(documentPaths(document).filter((path) => !NOT_ECS.test(path) && ECS[path] === undefined)).toStrictEqual([]);
    }
    const call = documents.find((document) => isRecord(document.event) && document.event.action === 'api-invocation');
    expect(call).toMatchObject({ observer: { name: 'edge-gateway-eu', type: 'gateway' }, http: { response: { status_code: 200, body: { bytes: 512 } } } });
    // The producer did not know the request body's size: absent, not 0.
    expect(isRecord(call?.http) && isRecord(call.http.request) ? call.http.request : {}).not.toHaveProperty('body');

    const mappings = await stack.elasticsearch.indices.getMapping({ index: `${indexNames(stack.config.indices.prefix).eventPattern},${detectionIndexNames(stack.config.indices.prefix).pattern}` });
    expect(Object.keys(mappings).length).toBeGreaterThanOrEqual(3);
    for (const [index, { mappings: live }] of Object.entries(mappings)) {
      expect([index, ecsMappingProblems((live.properties ?? {}) as Record<string, unknown>)]).toStrictEqual([index, []]);
      expect([index, live._meta]).toStrictEqual([index, { template_version: TEMPLATE_VERSION, ecs_version: ECS_VERSION }]);
    }
  });
});
