import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Correlator, deleteKeysUnder, identityOf } from '../../detectors';
import { correlationDocument, enrich, type Enrichment, type IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import type { Vigil } from '../../app';
import { Instrumentation, sleep } from '../../platform';
import { eventSchema, indexNames, type EventDocument, type PolicyEvent, type VigilEvent } from '../../schemas';
import { countEvents, isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';

/**
 * Correlation (detectors/correlation.ts) on the real Redis: the request view (policy decisions
 * filed for their invocation), the bounded wait for decisions still in flight, the session's
 * device; then end to end through the ingest pipeline into Elasticsearch.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const source = { service: 'edge-gateway-eu', kind: 'gateway' } as const;
const resource = { api: 'accounts-v1', method: 'POST', path: '/v1/login' } as const;

/** Deletes every key under a prefix (SCAN, never KEYS). */
const deleteKeys = deleteKeysUnder;

let sequence = 0;
const nextId = (family: string): string => `evt-${family}-${randomBytes(4).toString('hex')}-${++sequence}`;
const iso = (time: number): string => new Date(time).toISOString();

function policyEvent(requestId: string, kind: PolicyEvent['policy']['kind'], outcome: 'pass' | 'fail', time = Date.now()): VigilEvent {
  return eventSchema.parse({
    id: nextId('policy'),
    schemaVersion: 1,
    family: 'policy',
    time: iso(time),
    source,
    correlation: { requestId },
    policy: { kind, name: `check-${kind}`, outcome, group: 'accounts', resource },
  });
}

function invocationEvent(options: { requestId?: string; userId?: string; sessionId?: string; time?: number }): VigilEvent {
  return eventSchema.parse({
    id: nextId('invocation'),
    schemaVersion: 1,
    family: 'invocation',
    time: iso(options.time ?? Date.now()),
    source,
    correlation: {
      ...(options.requestId ? { requestId: options.requestId } : {}),
      ...(options.sessionId ? { sessionId: options.sessionId } : {}),
    },
    actor: options.userId ? { userId: options.userId } : { consumerId: 'app-1' },
    invocation: { resource, route: '/v1/login', status: 200, latencyMs: 12 },
  });
}

function deviceEvent(options: { userId: string; sessionId?: string; deviceId: string; time: number; country?: string }): VigilEvent {
  return eventSchema.parse({
    id: nextId('device'),
    schemaVersion: 1,
    family: 'device',
    time: iso(options.time),
    source,
    correlation: options.sessionId ? { sessionId: options.sessionId } : {},
    actor: { userId: options.userId },
    device: {
      deviceId: options.deviceId,
      type: 'mobile',
      action: 'login',
      ...(options.country ? { geo: { lat: 48.8566, lon: 2.3522, country: options.country } } : {}),
    },
  });
}

/** An event as the pipeline hands it to the correlator (no geoip lookups: only producer geo). */
const item = (event: VigilEvent): { event: VigilEvent; enrichment: Enrichment } => ({ event, enrichment: enrich(event, () => undefined) });

describe('Correlator on the real Redis', () => {
  let redis: Redis;
  let prefix: string;

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    await redis.quit();
  });

  beforeEach(() => {
    prefix = `it-${randomBytes(4).toString('hex')}`;
  });

  afterEach(async () => {
    await deleteKeys(redis, prefix);
  });

  it('gives an invocation the policy decisions filed earlier for its request', async () => {
    const correlator = new Correlator({ redis, prefix });
    const policies = await correlator.correlate([item(policyEvent('r-1', 'authn', 'pass')), item(policyEvent('r-1', 'authz', 'fail'))]);
    expect(policies).toEqual([undefined, undefined]);

    const [invocation] = await correlator.correlate([item(invocationEvent({ requestId: 'r-1' }))]);
    expect(invocation).toEqual({ request: { policies: { authn: 'pass', authz: 'fail' }, failedPolicies: ['authz'] } });
    // One round trip per call, and it did not wait: the decisions were there.
    expect(correlator.stats).toEqual({ waited: 0, unmatched: 0, roundTrips: 2 });
  });

  it('keeps requests apart and does not let a later pass hide a fail', async () => {
    const correlator = new Correlator({ redis, prefix });
    await correlator.correlate([item(policyEvent('r-a', 'authn', 'fail')), item(policyEvent('r-b', 'authn', 'pass'))]);
    await correlator.correlate([item(policyEvent('r-a', 'authn', 'pass'))]); // a retried check that passed
    const [a, b] = await correlator.correlate([item(invocationEvent({ requestId: 'r-a' })), item(invocationEvent({ requestId: 'r-b' }))]);
    expect(a).toEqual({ request: { policies: { authn: 'fail' }, failedPolicies: ['authn'] } });
    expect(b).toEqual({ request: { policies: { authn: 'pass' }, failedPolicies: [] } });
  });

  // A request id is often the client's own X-Request-Id. Signed in as itself under id R, a client
  // sent a spray naming the victim under R: each per-username rate-limit rejection read R's pass
  // and proved the victim, whose location and first-seen history the spray then wrote.
  it('names the user a request\'s authentication pass proved, and nobody once passes under one id name two users', async () => {
    const correlator = new Correlator({ redis, prefix });
    const named = (requestId: string, kind: PolicyEvent['policy']['kind'], outcome: 'pass' | 'fail', userId: string): VigilEvent =>
      eventSchema.parse({ ...policyEvent(requestId, kind, outcome), actor: { userId } });
    const [, ownLimit, sprayLimit] = await correlator.correlate([
      item(named('r-reused', 'authn', 'pass', 'attacker')),
      item(named('r-reused', 'rate_limit', 'pass', 'attacker')),
      item(named('r-reused', 'rate_limit', 'fail', 'victim')),
    ]);
    expect(ownLimit?.request?.authnUser).toBe('attacker');
    expect(identityOf(named('r-reused', 'rate_limit', 'pass', 'attacker'), ownLimit)).toBe('proven');
    expect(sprayLimit?.request).toEqual({ policies: { authn: 'pass', rate_limit: 'fail' }, failedPolicies: ['rate_limit'], authnUser: 'attacker' });
    expect(identityOf(named('r-reused', 'rate_limit', 'fail', 'victim'), sprayLimit)).toBe('claimed');

    await correlator.correlate([item(named('r-reused', 'authn', 'pass', 'victim'))]);
    const [later] = await correlator.correlate([item(named('r-reused', 'rate_limit', 'fail', 'victim'))]);
    expect(later?.request?.authnUser).toBeUndefined();
    expect(identityOf(named('r-reused', 'rate_limit', 'fail', 'victim'), later)).toBe('claimed');
  });

  it('waits, within waitMs, for decisions that arrive after their invocation', async () => {
    const other = new Redis(REDIS_URL);
    try {
      const waitMs = 500;
      const reader = new Correlator({ redis, prefix, waitMs });
      const writer = new Correlator({ redis: other, prefix, waitMs }); // another instance, on the policy topic
      const started = Date.now();
      const pending = reader.correlate([item(invocationEvent({ requestId: 'r-late', time: started }))]);
      await sleep(100);
      await writer.correlate([item(policyEvent('r-late', 'authn', 'fail', Date.now()))]);
      const [invocation] = await pending;
      const elapsed = Date.now() - started;

      expect(invocation).toEqual({ request: { policies: { authn: 'fail' }, failedPolicies: ['authn'] } });
      expect(reader.stats).toEqual({ waited: 1, unmatched: 0, roundTrips: 2 });
      // Held until about the event's time + waitMs, never much longer.
      expect(elapsed).toBeGreaterThanOrEqual(waitMs - 100);
      expect(elapsed).toBeLessThan(waitMs + 300);
    } finally {
      await other.quit();
    }
  });

  it('waits once and counts the invocation unmatched when no decision arrives', async () => {
    const correlator = new Correlator({ redis, prefix, waitMs: 200 });
    const [invocation] = await correlator.correlate([item(invocationEvent({ requestId: 'r-none' }))]);
    expect(invocation).toBeUndefined();
    expect(correlator.stats).toEqual({ waited: 1, unmatched: 1, roundTrips: 2 });
  });

  it('does not hold an invocation older than waitMs', async () => {
    const waitMs = 2000;
    const correlator = new Correlator({ redis, prefix, waitMs });
    const started = performance.now();
    const [invocation] = await correlator.correlate([item(invocationEvent({ requestId: 'r-old', time: Date.now() - 10_000 }))]);
    const elapsed = performance.now() - started;
    expect(invocation).toBeUndefined();
    expect(elapsed).toBeLessThan(waitMs / 4);
    expect(correlator.stats).toEqual({ waited: 0, unmatched: 1, roundTrips: 1 });
  });

  it('holds an invocation exactly waitMs old no longer, and one a millisecond younger at most a millisecond', async () => {
    const now = Date.now();
    const correlator = new Correlator({ redis, prefix, waitMs: 1000, now: () => now });
    const [edge] = await correlator.correlate([item(invocationEvent({ requestId: 'r-edge', time: now - 1000 }))]);
    expect(edge).toBeUndefined();
    expect(correlator.stats).toEqual({ waited: 0, unmatched: 1, roundTrips: 1 });
    const started = performance.now();
    await correlator.correlate([item(invocationEvent({ requestId: 'r-inside', time: now - 999 }))]);
    expect(performance.now() - started).toBeLessThan(250);
    expect(correlator.stats).toEqual({ waited: 1, unmatched: 2, roundTrips: 3 });
  });

  it("gives a request the session's device, its age and the user's device count", async () => {
    const correlator = new Correlator({ redis, prefix });
    const seen = Date.now() - 60_000;
    expect(await correlator.correlate([item(deviceEvent({ userId: 'u-1', sessionId: 's-1', deviceId: 'd-1', time: seen }))])).toEqual([undefined]);

    const at = Date.now();
    const [first] = await correlator.correlate([item(invocationEvent({ userId: 'u-1', sessionId: 's-1', time: at }))]);
    expect(first).toEqual({ device: { deviceId: 'd-1', deviceAgeMs: at - seen, knownDevices: 1, fromSession: true } });

    // A second device, newer, in another session: the user now has two.
    await correlator.correlate([item(deviceEvent({ userId: 'u-1', sessionId: 's-2', deviceId: 'd-2', time: seen + 30_000, country: 'FR' }))]);
    const [inSession, noSession, otherUser] = await correlator.correlate([
      item(invocationEvent({ userId: 'u-1', sessionId: 's-1', time: at })),
      item(invocationEvent({ userId: 'u-1', time: at })),
      item(invocationEvent({ userId: 'u-2', sessionId: 's-1', time: at })),
    ]);
    expect(inSession).toEqual({ device: { deviceId: 'd-1', deviceAgeMs: at - seen, knownDevices: 2, fromSession: true } });
    // Without a session: the user's last device.
    expect(noSession).toEqual({ device: { deviceId: 'd-2', deviceAgeMs: at - seen - 30_000, country: 'FR', knownDevices: 2, fromSession: false } });
    expect(otherUser).toBeUndefined();
  });

  it('gives an invocation both its request and its device, and every key it writes expires', async () => {
    const correlator = new Correlator({ redis, prefix, requestMemoryMs: 30_000, deviceMemoryMs: 60_000 });
    const seen = Date.now() - 5000;
    await correlator.correlate([
      item(policyEvent('r-both', 'rate_limit', 'fail')),
      item(deviceEvent({ userId: 'u-both', sessionId: 's-both', deviceId: 'd-both', time: seen })),
    ]);
    const at = Date.now();
    const [invocation] = await correlator.correlate([item(invocationEvent({ requestId: 'r-both', userId: 'u-both', sessionId: 's-both', time: at }))]);
    expect(invocation).toEqual({
      request: { policies: { rate_limit: 'fail' }, failedPolicies: ['rate_limit'] },
      device: { deviceId: 'd-both', deviceAgeMs: at - seen, knownDevices: 1, fromSession: true },
    });
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    // The request's hash, and the user's last device, devices and session.
    expect(keys).toHaveLength(4);
    for (const key of keys) {
      const remaining = await redis.pttl(key);
      const limit = key.includes('{req:') ? 30_000 : 60_000;
      expect({ key, positive: remaining > 0, withinTtl: remaining <= limit }).toEqual({ key, positive: true, withinTtl: true });
    }
  });

  it('sends one batch command per script, and a mixed list gives what calls one by one, in order, gave', async () => {
    const events = new Instrumentation();
    const commands: number[] = [];
    events.on('state.round_trip', ({ commands: count }) => commands.push(count));
    const correlator = new Correlator({ redis, prefix, events });
    const at = Date.now();
    // A policy chunk of 300 events: 300 noteRequest and 300 readContext calls, in two commands
    // per 256 items (one call each before).
    const policies = Array.from({ length: 300 }, (_unused, n) => item(eventSchema.parse({ ...policyEvent(`r-${n % 40}`, 'authn', n % 3 === 0 ? 'fail' : 'pass', at), actor: { userId: `u-${n % 7}` } })));
    await correlator.correlate(policies);
    expect(commands).toEqual([4]);
    // Mixed families in one list (as a replay may give): a device, then an invocation of its
    // user, then a newer device, then another invocation; a decision, its read, a later fail,
    // a read again. Each read sees exactly the writes listed before it.
    const mixed = await correlator.correlate([
      item(deviceEvent({ userId: 'u-mix', sessionId: 's-mix', deviceId: 'd-1', time: at - 2000 })),
      item(invocationEvent({ userId: 'u-mix', sessionId: 's-mix', time: at })),
      item(deviceEvent({ userId: 'u-mix', sessionId: 's-mix', deviceId: 'd-2', time: at - 1000 })),
      item(invocationEvent({ userId: 'u-mix', sessionId: 's-mix', time: at })),
      item(policyEvent('r-mix', 'authn', 'pass', at)),
      item(invocationEvent({ requestId: 'r-mix', time: at })),
      item(policyEvent('r-mix', 'authz', 'fail', at)),
      item(invocationEvent({ requestId: 'r-mix', time: at })),
    ]);
    expect(mixed).toEqual([
      undefined,
      { device: { deviceId: 'd-1', deviceAgeMs: 2000, knownDevices: 1, fromSession: true } },
      undefined,
      { device: { deviceId: 'd-2', deviceAgeMs: 1000, knownDevices: 2, fromSession: true } },
      undefined,
      { request: { policies: { authn: 'pass' }, failedPolicies: [] } },
      undefined,
      { request: { policies: { authn: 'pass', authz: 'fail' }, failedPolicies: ['authz'] } },
    ]);
  });

  it('correlationDocument: the indexed shape of what correlation found', () => {
    expect(correlationDocument(undefined)).toBeUndefined();
    expect(correlationDocument({ request: { policies: { authn: 'pass', authz: 'fail' }, failedPolicies: ['authz'] } })).toEqual({
      policies: { authn: 'pass', authz: 'fail' },
      failed_policies: ['authz'],
    });
    expect(correlationDocument({ device: { deviceId: 'd-1', deviceAgeMs: 0, country: 'FR', knownDevices: 1, fromSession: true } })).toEqual({
      device_id: 'd-1',
      device_age_ms: 0,
      country: 'FR',
      known_devices: 1,
      from_session: true,
    });
    // What is unknown is left out, not written as null.
    expect(correlationDocument({ device: { knownDevices: 0, fromSession: false } })).toEqual({ known_devices: 0, from_session: false });
    expect(
      correlationDocument({
        request: { policies: { rate_limit: 'fail' }, failedPolicies: ['rate_limit'] },
        device: { deviceId: 'd-2', deviceAgeMs: 5000, knownDevices: 3, fromSession: false },
      }),
    ).toEqual({
      policies: { rate_limit: 'fail' },
      failed_policies: ['rate_limit'],
      device_id: 'd-2',
      device_age_ms: 5000,
      known_devices: 3,
      from_session: false,
    });
  });
});

describe('correlation end to end: Kafka → pipeline with a correlator → Elasticsearch', () => {
  let stack: Stack;
  let vigil: Vigil;
  let pipeline: IngestPipeline;
  let redis: Redis;
  let prefix: string;

  beforeAll(async () => {
    // Invocations and their policy decisions travel on different topics: allow the bounded wait.
    stack = openStack(isolatedConfig({ VIGIL_CORRELATION_WAIT_MS: '250' }));
    prefix = stack.config.redis.prefix;
    redis = new Redis(stack.config.redis.url);
    vigil = vigilOn(stack, { redis });
    pipeline = vigil.pipeline as IngestPipeline;
    await vigil.start();
  });

  afterAll(async () => {
    await vigil.stop();
    await deleteKeys(redis, prefix);
    await redis.quit();
    await stack.cleanup();
  });

  it('indexes invocations with their request\'s policy decisions and their session\'s device', async () => {
    const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source, lingerMs: 10 });
    const ids = { authn: 'evt-e2e-policy-authn', authz: 'evt-e2e-policy-authz', device: 'evt-e2e-device', request: 'evt-e2e-invocation-request', session: 'evt-e2e-invocation-session' };
    try {
      // The partners first, indexed (so correlated), then the invocations: no race with the wait window.
      const requestId = 'r-e2e-1';
      emitter.policy({ id: ids.authn, correlation: { requestId }, policy: { kind: 'authn', name: 'verify-api-key', outcome: 'pass', group: 'accounts', resource } });
      emitter.policy({ id: ids.authz, correlation: { requestId }, policy: { kind: 'authz', name: 'check-scope', outcome: 'fail', group: 'accounts', resource } });
      emitter.device({
        id: ids.device,
        actor: { userId: 'u-e2e' },
        correlation: { sessionId: 's-e2e' },
        device: { deviceId: 'd-e2e', type: 'mobile', action: 'login', geo: { lat: 48.8566, lon: 2.3522, country: 'FR', city: 'Paris' } },
      });
      await emitter.flush();
      await waitFor('the policy and device events', async () => (await countEvents(stack, { terms: { 'event.id': [ids.authn, ids.authz, ids.device] } })) >= 3);

      emitter.invocation({ id: ids.request, correlation: { requestId }, actor: { consumerId: 'app-e2e' }, invocation: { resource, route: '/v1/login', status: 403, latencyMs: 8 } });
      emitter.invocation({ id: ids.session, correlation: { sessionId: 's-e2e' }, actor: { userId: 'u-e2e' }, invocation: { resource, route: '/v1/login', status: 200, latencyMs: 9 } });
    } finally {
      await emitter.close();
    }
    await waitFor('the two invocations', async () => (await countEvents(stack, { terms: { 'event.id': [ids.request, ids.session] } })) >= 2);

    const { hits } = await stack.elasticsearch.search<EventDocument>({
      index: indexNames(stack.config.indices.prefix).eventPattern,
      size: 10,
      query: { terms: { 'event.id': [ids.request, ids.session] } },
    });
    const byId = new Map(hits.hits.map((hit) => [hit._id, hit._source?.vigil.correlation]));
    expect(byId.get(ids.request)).toEqual({ policies: { authn: 'pass', authz: 'fail' }, failed_policies: ['authz'] });
    expect(byId.get(ids.session)).toEqual({ device_id: 'd-e2e', device_age_ms: expect.any(Number) as number, country: 'FR', known_devices: 1, from_session: true });

    // The mapping makes the fields searchable, and nothing was refused.
    expect(await countEvents(stack, { term: { 'vigil.correlation.failed_policies': 'authz' } })).toBe(1);
    expect(await countEvents(stack, { term: { 'vigil.correlation.policies.authn': 'pass' } })).toBe(1);
    expect(await countEvents(stack, { bool: { filter: [{ term: { 'vigil.correlation.device_id': 'd-e2e' } }, { term: { 'vigil.correlation.known_devices': 1 } }] } })).toBe(1);
    expect(pipeline.stats().deadLettered).toBe(0);
  });
});
