/**
 * `vigil adapt` on the real stack: Kong log objects (and an APISIX batch) go to raw topics as
 * the gateways write them; the adapt consumers (built as the CLI builds them) translate them;
 * the real pipeline indexes the events and runs the default rules. From gateway records alone,
 * the per-IP brute force, the per-consumer rate-limit storm and the endpoint flood fire, and
 * producing the same records again adds no document.
 */
import type { Message } from 'kafkajs';
import { createAdapt, defaultAdaptGroup, type Adapt } from '../../app';
import { fromDeadLetterMessage } from '../../ingest';
import { createProducer } from '../../platform';
import { indexNames, type Detection } from '../../schemas';
import { REFUSALS, apisixEntry, kongRecord, type GatewayCall } from '../../scripts/gateway-records';
import { deleteTopics, produceInOrder } from '../support/adapt-stack';
import { countEvents, readTopic, testLogger, waitFor, withVigil } from '../support/harness';
import { withoutRecordDigest } from '../support/adapter-events';

jest.setTimeout(240_000);

const detections: Detection[] = [];
const env = {
  VIGIL_ADAPT_SERVICE: 'edge-kong-it',
  VIGIL_ADAPT_ENVIRONMENT: 'test',
  VIGIL_ADAPT_GROUPS: JSON.stringify({ services: { 'orders-svc': 'orders', 'accounts-svc': 'accounts', 'catalog-svc': 'public' }, routes: { 'apisix-orders': 'orders' } }),
};
const running = withVigil(env, { onDetections: (batch) => detections.push(...batch) });

const now = Date.now();
const at = (secondsAgo: number): Date => new Date(now - secondsAgo * 1000);
const base = (overrides: Partial<GatewayCall>): GatewayCall => ({
  requestId: null,
  time: at(60),
  clientIp: '198.51.100.10',
  method: 'GET',
  uri: '/orders/1',
  status: 200,
  service: 'orders-svc',
  route: { name: 'orders', paths: ['/orders'] },
  ...overrides,
});
const id = (n: number, tag: string): string => `${tag}${n.toString(16).padStart(8, '0')}${'0'.repeat(16)}`;

/** Kong records proving each policy kind, one object per message (kafka-log). */
const outcomes: GatewayCall[] = [
  base({ requestId: id(1, 'aaaaaaaa'), consumer: 'partner-acme', time: at(90) }),
  base({ requestId: id(2, 'aaaaaaaa'), status: 401, responseHeaders: REFUSALS.kongKeyAuth, time: at(89) }),
  base({ requestId: id(3, 'aaaaaaaa'), status: 403, consumer: 'partner-acme', time: at(88) }),
  base({ requestId: id(4, 'aaaaaaaa'), status: 429, consumer: 'partner-acme', responseHeaders: REFUSALS.kongRateLimited, time: at(87) }),
  base({ requestId: id(5, 'aaaaaaaa'), method: 'PROPFIND', time: at(86) }),
];

/** 25 key-auth refusals from one IP in 2 minutes, as one http-log batch. */
const bruteForce = Array.from({ length: 25 }, (_, n) =>
  base({ requestId: id(n, 'bbbbbbbb'), clientIp: '203.0.113.66', method: 'POST', uri: '/accounts/login?apikey=guess', service: 'accounts-svc', route: { name: 'login', paths: ['/accounts/login'] }, status: 401, responseHeaders: REFUSALS.kongKeyAuth, time: at(150 - n * 4) }),
);

/** 60 rate-limit refusals of one consumer in 30 s. */
const storm = Array.from({ length: 60 }, (_, n) =>
  base({ requestId: id(n, 'cccccccc'), consumer: 'partner-flood', clientIp: '192.0.2.77', uri: '/catalog', service: 'catalog-svc', route: { name: 'catalog', paths: ['/catalog'] }, status: 429, responseHeaders: REFUSALS.kongRateLimited, time: at(45 - n * 0.5) }),
);

/**
 * An endpoint's 18-minute baseline (one call every 500 ms from many IPs), then a 10x minute from
 * four IPs, then 8 more minutes of the baseline's traffic: the request-flood-per-endpoint
 * fixture's shape, as Kong records without request ids. A surge minute meets the baseline of the
 * minutes up to six before it, and the flood rule judges a minute complete, once the allowed
 * lateness (5 minutes) has passed it: the traffic after the burst takes the clock there.
 */
function flood(): { baseline: GatewayCall[]; burst: GatewayCall[]; after: GatewayCall[] } {
  // On a minute boundary: the surge rule's buckets are whole clock minutes, and a burst minute
  // that straddled two of them would be two half bursts (5x each), below the rule's 10x.
  const start = Math.floor(now / 60_000) * 60_000 - 28 * 60_000;
  const order = (time: number, clientIp: string, n: number): GatewayCall => base({ time: new Date(time), clientIp, uri: `/orders/${n}`, route: { name: 'order', paths: ['/orders'] } });
  const steady = (n: number, from: number): GatewayCall => order(from + n * 500, `198.51.${100 + (n % 50)}.${1 + (n % 200)}`, n);
  return {
    baseline: Array.from({ length: 2160 }, (_, n) => steady(n, start)),
    burst: Array.from({ length: 1200 }, (_, n) => order(start + 18 * 60_000 + n * 50, `203.0.113.${10 + (n % 4)}`, n)),
    after: Array.from({ length: 960 }, (_, n) => steady(n, start + 19 * 60_000)),
  };
}

/** An http-log batch per `size` records. */
function batches(calls: GatewayCall[], size: number, build = kongRecord): Message[] {
  const messages: Message[] = [];
  for (let start = 0; start < calls.length; start += size) messages.push({ key: 'kong-node-1', value: JSON.stringify(calls.slice(start, start + size).map(build)) });
  return messages;
}

describe('vigil adapt --format kong (and apisix) on the real stack', () => {
  let kong: Adapt;
  let apisix: Adapt;
  let kongTopic: string;
  let apisixTopic: string;
  let kongMessages: Message[];
  const unmapped = kongRecord(base({ requestId: id(9, 'dddddddd'), status: 401, service: 'unknown-svc', route: { name: 'x' } }));

  beforeAll(async () => {
    kongTopic = `${running.stack.config.indices.prefix}.raw-kong`;
    apisixTopic = `${running.stack.config.indices.prefix}.raw-apisix`;
    // Serving health and metrics, as the CLI starts it (on a free port).
    kong = createAdapt(running.stack.config, { format: 'kong', topic: kongTopic, kafka: running.stack.kafka, logger: testLogger, http: { host: '127.0.0.1', port: 0 } });
    apisix = createAdapt({ ...running.stack.config, adapt: { ...running.stack.config.adapt, consumerGroup: `${running.stack.config.consumerGroup}-apisix` } }, { format: 'apisix', topic: apisixTopic, kafka: running.stack.kafka, logger: testLogger });
    await kong.start();
    await apisix.start();
    // In time order, as a gateway writes them. The endpoint's baseline minutes are indexed
    // before the rest is produced, as the demo's history is: the surge rule learns a baseline
    // bucket by bucket, and the pipeline's partitions would otherwise reach the burst minute
    // while another still holds baseline minutes.
    const { baseline, burst, after } = flood();
    const baselineMessages = batches(baseline, 200);
    kongMessages = [
      ...baselineMessages,
      ...batches(burst, 200),
      ...batches(after, 200),
      ...outcomes.map((call) => ({ key: 'kong-node-1', value: JSON.stringify(kongRecord(call)) })),
      ...batches(bruteForce, 25),
      ...batches(storm, 20),
      { key: 'kong-node-1', value: JSON.stringify([unmapped, kongRecord(base({ requestId: id(10, 'dddddddd') }))]) },
      { key: 'kong-node-1', value: 'GET /orders HTTP/1.1' },
    ];
    const producer = createProducer(running.stack.kafka);
    await producer.connect();
    await produceInOrder(producer, kongTopic, baselineMessages);
    await waitFor('the baseline to be indexed', () => (running.vigil.stats().ingest?.indexed ?? 0) >= baseline.length, 120_000);
    await produceInOrder(producer, kongTopic, kongMessages.slice(baselineMessages.length));
    // The APISIX records (a minute old) go out once every Kong record is adapted: both adapt
    // consumers write the same invocation partitions, and an APISIX event written between the
    // Kong adapter's sends of the burst (then 8 minutes old) put those partitions 7 minutes out of
    // event-time order, beyond the allowed lateness (5 minutes): the rest of the burst was late
    // for the stateful rules and the flood missed (issue 15; docs/event-time.md, several producers in one partition).
    await waitFor('the Kong records to be adapted', () => kong.stats().messages >= kongMessages.length, 120_000);
    await producer.send({
      topic: apisixTopic,
      acks: -1,
      messages: batches(
        [
          base({ requestId: 'apisix-1', route: { name: 'apisix-orders' }, consumer: 'jack' }),
          base({ requestId: 'apisix-2', route: { name: 'apisix-orders' }, status: 401, responseHeaders: REFUSALS.apisixKeyAuth }),
          base({ requestId: 'apisix-3', route: { name: 'apisix-orders' }, status: 503, consumer: 'jack', responseHeaders: REFUSALS.apisixLimitCount }),
        ],
        1000,
        apisixEntry,
      ),
    });
    await producer.disconnect();
  });

  afterAll(async () => {
    await kong?.stop();
    await apisix?.stop();
    await deleteTopics(running.stack, [kongTopic, apisixTopic]);
  });

  // Kong: 5 outcomes (4 invocations + 6 policy events, PROPFIND skipped), 25 × 2, 60 × 3
  // (invocation, the consumer's authn pass, the rate limit), 2640, and 1 of the mixed batch.
  const expectedKong = 4 + 6 + 25 * 2 + 60 * 3 + 2160 + 1200 + 960 + 1;
  const expectedApisix = 3 + 1 + 1 + 2;

  it('indexes every event the records prove, and dead-letters what it cannot map', async () => {
    await waitFor('the adapted events to be indexed', async () => (await countEvents(running.stack)) >= expectedKong + expectedApisix, 180_000);
    expect(await countEvents(running.stack)).toBe(expectedKong + expectedApisix);
    expect(kong.stats()).toMatchObject({
      messages: kongMessages.length,
      events: expectedKong,
      skippedByReason: { method_unsupported: 1 },
      rejectedByReason: { adapter_unmapped: 1, adapter_unparseable: 1 },
      deadLettered: 2,
    });
    const letters = (await readTopic(running.stack.kafka, running.stack.config.topics.deadLetter, 2)).map((message) => fromDeadLetterMessage(message));
    expect(letters.map((letter) => [letter.reasonCode, letter.topic, letter.reason]).sort()).toEqual([
      ['adapter_unmapped', kongTopic, 'record 0: no group for route "x", service "unknown-svc", api (none), tags (none) and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS'],
      ['adapter_unparseable', kongTopic, expect.stringMatching(/^not a kong message: not valid JSON/) as unknown],
    ]);
    // The dead letter holds the raw message as Kong wrote it, ready to redrive once mapped.
    expect(letters.find((letter) => letter.reasonCode === 'adapter_unmapped')?.value?.toString()).toContain('"unknown-svc"');

    // The same counts on its /metrics, and /readyz ready without Elasticsearch or Redis (it uses neither).
    const address = kong.httpAddress();
    expect(address).toBeDefined();
    const base = `http://127.0.0.1:${address?.port ?? 0}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { kafka: { ok: true }, elasticsearch: { skipped: 'not used by this process' }, redis: { skipped: 'not used by this process' }, consumers: { ok: true } } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const sample = (series: string): number | undefined => {
      const line = metrics.split('\n').find((candidate) => candidate.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(sample('vigil_adapt_messages_total')).toBe(kongMessages.length);
    expect((['policy', 'invocation', 'device'] as const).reduce((sum, family) => sum + (sample(`vigil_adapt_events_total{family="${family}"}`) ?? 0), 0)).toBe(expectedKong);
    expect(sample('vigil_adapt_records_refused_total{reason="adapter_unmapped"}')).toBe(1);
    expect(sample('vigil_adapt_records_refused_total{reason="adapter_unparseable"}')).toBe(1);
    expect(sample('vigil_adapt_records_skipped_total{reason="method_unsupported"}')).toBe(1);
    expect(sample(`vigil_consumer_up{component="adapt",group="${running.stack.config.adapt.consumerGroup ?? defaultAdaptGroup('kong', kongTopic)}"}`)).toBe(1);
  });

  it('gives each policy event its outcome, name, auth context and derivation', async () => {
    const pattern = indexNames(running.stack.config.indices.prefix).eventPattern;
    // The policy events of these requests, found by request id; an id also carries its record's digest.
    const requestIds = [...[1, 2, 3, 4].map((n) => id(n, 'aaaaaaaa')), 'apisix-2', 'apisix-3'];
    const found = await running.stack.elasticsearch.search<{ vigil: { policy: Record<string, string> }; event: { reason?: string }; labels: Record<string, string>; source: unknown }>({
      index: pattern,
      size: 50,
      query: { bool: { filter: [{ terms: { 'http.request.id': requestIds } }, { exists: { field: 'vigil.policy.kind' } }] } },
    });
    const byId: Record<string, unknown> = Object.fromEntries(
      // The policy's reason is ECS's event.reason (vigil.policy.reason, its copy, is no longer written).
      found.hits.hits.map((hit): [string, unknown] => [
        withoutRecordDigest(hit._id ?? ''),
        { ...hit._source?.vigil.policy, reason: hit._source?.event.reason, derived: hit._source?.labels.derived },
      ]),
    );
    expect(byId).toEqual({
      [`kong:${id(1, 'aaaaaaaa')}:authn`]: { kind: 'authn', name: 'kong-auth', outcome: 'pass', reason: 'consumer_authenticated', derived: undefined },
      [`kong:${id(2, 'aaaaaaaa')}:authn`]: { kind: 'authn', name: 'kong-key-auth', outcome: 'fail', reason: 'invalid_or_missing_credentials', auth_context: 'api_key', derived: undefined },
      [`kong:${id(3, 'aaaaaaaa')}:authn`]: { kind: 'authn', name: 'kong-auth', outcome: 'pass', reason: 'consumer_authenticated', derived: undefined },
      [`kong:${id(3, 'aaaaaaaa')}:authz`]: { kind: 'authz', name: 'kong-acl', outcome: 'fail', reason: 'consumer_not_allowed', derived: 'status' },
      [`kong:${id(4, 'aaaaaaaa')}:authn`]: { kind: 'authn', name: 'kong-auth', outcome: 'pass', reason: 'consumer_authenticated', derived: undefined },
      [`kong:${id(4, 'aaaaaaaa')}:rate_limit`]: { kind: 'rate_limit', name: 'kong-rate-limiting', outcome: 'fail', reason: 'limit_exceeded', derived: undefined },
      'apisix:apisix-2:authn': { kind: 'authn', name: 'apisix-key-auth', outcome: 'fail', reason: 'invalid_or_missing_credentials', auth_context: 'api_key', derived: undefined },
      'apisix:apisix-3:authn': { kind: 'authn', name: 'apisix-auth', outcome: 'pass', reason: 'consumer_authenticated', derived: undefined },
      'apisix:apisix-3:rate_limit': { kind: 'rate_limit', name: 'apisix-limit-count', outcome: 'fail', reason: 'limit_exceeded', derived: undefined },
    });
  });

  it('fires the per-IP brute force, the per-consumer rate-limit storm and the endpoint flood from gateway records alone', async () => {
    const fired = (rule: string, key: string, value: string): boolean => detections.some((detection) => detection.ruleId === rule && detection.key[key] === value);
    const all = (): boolean =>
      fired('authn-failures-per-ip', 'client.ip', '203.0.113.66') && fired('rate-limit-storm-per-consumer', 'actor.consumerId', 'partner-flood') && fired('request-flood-per-endpoint', 'invocation.route', '/orders');
    // On a timeout, the assertion below says which fired and which did not.
    await waitFor('the three detections', all, 60_000).catch(() => undefined);
    expect({
      bruteForce: fired('authn-failures-per-ip', 'client.ip', '203.0.113.66'),
      storm: fired('rate-limit-storm-per-consumer', 'actor.consumerId', 'partner-flood'),
      flood: fired('request-flood-per-endpoint', 'invocation.route', '/orders'),
      firedRules: [...new Set(detections.map((detection) => detection.ruleId))].sort(),
    }).toEqual({ bruteForce: true, storm: true, flood: true, firedRules: expect.anything() as unknown });
    expect(detections.find((detection) => detection.ruleId === 'request-flood-per-endpoint')?.key).toEqual({ 'invocation.resource.api': 'orders-svc', 'invocation.route': '/orders' });
  });

  it('adds no document when the same records are produced again', async () => {
    const before = await countEvents(running.stack);
    const duplicatesBefore = running.vigil.stats().ingest?.duplicates ?? 0;
    const producer = createProducer(running.stack.kafka);
    await producer.connect();
    await produceInOrder(producer, kongTopic, kongMessages);
    await producer.disconnect();
    await waitFor('the replayed records to reach the pipeline', () => (running.vigil.stats().ingest?.duplicates ?? 0) - duplicatesBefore >= expectedKong, 180_000);
    expect(kong.stats().messages).toBe(2 * kongMessages.length);
    expect(await countEvents(running.stack)).toBe(before);
    expect((running.vigil.stats().ingest?.duplicates ?? 0) - duplicatesBefore).toBe(expectedKong);
  });
});
