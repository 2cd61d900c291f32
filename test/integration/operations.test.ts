/**
 * Operations against the real stack: the health and metrics endpoints, consumer supervision
 * (recovery from a crash, failure past the restart budget) and a graceful stop that loses and
 * redoes nothing.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Client } from '@elastic/elasticsearch';
import { AssignerProtocol, KafkaJSNotImplemented, type Consumer, type PartitionAssigner } from 'kafkajs';
import { createEmitter } from '../../ingest/sdk';
import { ConsumerFailedError, ensureTopics } from '../../platform';
import { countEvents, isolatedConfig, messagesOn, openStack, vigilOn, waitFor, type Stack } from '../support/harness';

async function emit(stack: Stack, count: number, prefix: string): Promise<void> {
  const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'operations-test', kind: 'service' } });
  for (let index = 0; index < count; index++) {
    emitter.invocation({
      id: `evt-${prefix}-${index}`,
      actor: { consumerId: `app-${index % 7}` },
      invocation: { resource: { api: 'orders-v1', method: 'GET', path: '/v1/orders' }, route: '/v1/orders', status: 200, latencyMs: 3 },
    });
  }
  await emitter.close();
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** The value of one sample line of a Prometheus text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * A member that speaks only an assignment protocol Vigil doesn't: while it holds the group, the
 * broker refuses Vigil's consumer (INCONSISTENT_GROUP_PROTOCOL, not retriable), so kafkajs stops it.
 */
const rogueAssigner: PartitionAssigner = () => ({
  name: 'RogueAssigner',
  version: 1,
  protocol: ({ topics }) => ({ name: 'RogueAssigner', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) }),
  assign: ({ members }) =>
    Promise.resolve(
      members.map(({ memberId }) => ({ memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: {}, userData: Buffer.alloc(0) }) })),
    ),
});

describe('operations', () => {
  let stack: Stack;

  beforeEach(() => {
    stack = openStack(isolatedConfig({ VIGIL_BULK_MAX_DOCS: '50' }));
  });

  afterEach(async () => {
    await stack.cleanup();
  });

  it('serves /healthz, /readyz and /metrics, whose counters follow the events', async () => {
    const vigil = vigilOn(stack, { http: { host: '127.0.0.1', port: 0 } });
    await vigil.start();
    try {
      const address = vigil.httpAddress();
      if (!address) throw new Error('no HTTP address');
      const base = `http://${address.host}:${address.port}`;
      expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
      await waitFor('the consumer to join its group', () => vigil.consumers().every((status) => status.state === 'running'));
      const ready = await get(`${base}/readyz`);
      expect(JSON.parse(ready.body)).toEqual({ ready: true, checks: { started: { ok: true }, kafka: { ok: true }, elasticsearch: { ok: true }, redis: { ok: true }, consumers: { ok: true } } });
      expect(ready.status).toBe(200);

      await emit(stack, 20, 'metrics');
      // The emitter delivers at least once: a request it retried can have written an event twice.
      // Every message on the topic is consumed; each event is indexed once, its copies counted as duplicates.
      const onTopic = await messagesOn(stack.kafka, stack.config.topics.invocation);
      expect(onTopic).toBeGreaterThanOrEqual(20);
      await waitFor('20 events indexed', async () => (await countEvents(stack)) >= 20);
      await waitFor(`the ${onTopic} messages on the topic consumed`, () => (vigil.stats().ingest?.consumed ?? 0) >= onTopic);
      const metrics = await get(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await countEvents(stack)).toBe(20);
      expect(sample(metrics.body, 'vigil_events_indexed_total')).toBe(20);
      expect(sample(metrics.body, `vigil_messages_consumed_total{component="ingest",topic="${stack.config.topics.invocation}"}`)).toBe(onTopic);
      expect(sample(metrics.body, 'vigil_events_duplicate_total')).toBe(onTopic - 20);
      expect(sample(metrics.body, 'vigil_consumer_up{component="ingest",group="' + stack.config.consumerGroup + '"}')).toBe(1);
      expect(sample(metrics.body, 'vigil_consumer_state{component="ingest",group="' + stack.config.consumerGroup + '",state="running"}')).toBe(1);
      // One series per consumer, whatever its state: an alert's `for:` on `== 0` holds while it cycles.
      expect(metrics.body).not.toMatch(/^vigil_consumer_up\{[^}]*state=/m);
      expect(metrics.body).toContain('vigil_pipeline_stage_duration_seconds_count{stage="index"}');
      expect(metrics.body).toContain('vigil_state_round_trips_total{operation="rule state",reached="true"}');
      // Per rule: the invocations reach the request-flood rule of the default pack (a surge rule
      // evaluates one tally per endpoint and batch, not one per event).
      expect(sample(metrics.body, 'vigil_rule_evaluations_by_rule_total{rule="request-flood-per-endpoint",outcome="evaluated"}')).toBeGreaterThanOrEqual(1);
      expect(metrics.body).toMatch(new RegExp(`vigil_consumer_lag\\{component="ingest",topic="${stack.config.topics.invocation.replace(/\./g, '\\.')}",partition="\\d"\\} 0`));
      // Behind the committed offsets, asked of Kafka: every partition of the invocations topic the
      // consumer holds, and none behind once all is consumed and committed.
      await waitFor('the committed lag at 0', async () => {
        const lines = (await get(`${base}/metrics`)).body.split('\n').filter((line) => line.startsWith(`vigil_consumer_committed_lag{component="ingest",group="${stack.config.consumerGroup}",topic="${stack.config.topics.invocation}"`));
        return lines.length === stack.config.topics.partitions && lines.every((line) => line.endsWith(' 0'));
      });
      expect((await get(`${base}/nowhere`)).status).toBe(404);
    } finally {
      await vigil.stop();
    }
  });

  // What takes work in stops first (docs/operations.md, Shutdown): the ingest stopped last,
  // fetching through the notifier's drain.
  it('stops the ingest pipeline first, then the alerter, then the notifier', async () => {
    const vigil = vigilOn(stack, { roles: ['ingest', 'alerting'] });
    await vigil.start();
    try {
      await waitFor('the consumers to join their groups', () => vigil.consumers().every((status) => status.state === 'running'));
    } finally {
      const order: string[] = [];
      const record = <T extends { stop: (...args: never[]) => Promise<unknown> }>(part: T | undefined, name: string): void => {
        if (part === undefined) throw new Error(`no ${name} to stop`);
        const stop = part.stop.bind(part);
        part.stop = ((...args: never[]) => {
          order.push(name);
          return stop(...args);
        });
      };
      record(vigil.pipeline, 'ingest');
      record(vigil.alerter, 'alerter');
      record(vigil.notifier, 'notifier');
      await vigil.stop();
      // In the order each was first told to stop (the outbox consumer's stop drains the notifier too).
      expect([...new Set(order)]).toStrictEqual(['ingest', 'alerter', 'notifier']);
    }
  });

  // A liveness probe found nothing to ask while the start waited on a store (45 s against a Kafka
  // that refused), and /readyz said ready before the consumers existed.
  it('answers /healthz, and /readyz with 503 "starting", while the start waits for an Elasticsearch that never answers', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const elasticsearch = new Client({ node: `http://127.0.0.1:${port}`, requestTimeout: 4000, maxRetries: 0 });
    const vigil = vigilOn(stack, { http: { host: '127.0.0.1', port: 0 }, elasticsearch });
    const starting = vigil.start();
    starting.catch(() => undefined);
    try {
      await waitFor('the health server', () => vigil.httpAddress() !== undefined, 10_000);
      const address = vigil.httpAddress();
      const base = `http://${address?.host ?? ''}:${address?.port ?? 0}`;
      expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
      const ready = await get(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ ready: false, checks: { started: { ok: false, error: expect.stringMatching(/^starting/) as unknown }, kafka: { ok: true } } });
    } finally {
      // Elasticsearch "goes away": its connections close, and the start fails on it.
      silent.close();
      for (const socket of sockets) socket.destroy();
      await starting.catch(() => undefined);
      await vigil.stop().catch(() => undefined);
      await elasticsearch.close();
    }
  });

  // An intake writes to Kafka only: answering 503 when Elasticsearch or Redis was away took a
  // working intake out of its load balancer.
  it('checks only the stores a process uses: an intake alone is ready with Elasticsearch and Redis away', async () => {
    const config = isolatedConfig({ VIGIL_INTAKE_TOKEN: 'intake-token-of-at-least-24-chars', REDIS_URL: 'redis://127.0.0.1:1' });
    const intakeStack = openStack(config);
    const elasticsearch = new Client({ node: 'http://127.0.0.1:1', requestTimeout: 1000, maxRetries: 0 });
    const vigil = vigilOn(intakeStack, { roles: ['intake'], http: { host: '127.0.0.1', port: 0 }, intakeHttp: { host: '127.0.0.1', port: 0 }, elasticsearch }, config);
    await vigil.start();
    try {
      const address = vigil.httpAddress();
      const ready = await get(`http://${address?.host ?? ''}:${address?.port ?? 0}/readyz`);
      expect(JSON.parse(ready.body)).toEqual({
        ready: true,
        checks: { started: { ok: true }, kafka: { ok: true }, elasticsearch: { ok: true, skipped: 'not used by this process' }, redis: { ok: true, skipped: 'not used by this process' }, consumers: { ok: true } },
      });
      expect(ready.status).toBe(200);
    } finally {
      await vigil.stop();
      await elasticsearch.close();
      await intakeStack.cleanup();
    }
  });

  it('restarts the consumer after a handler error escapes and kafkajs stops it for good, and loses nothing', async () => {
    let throws = 1;
    const vigil = vigilOn(stack, {
      supervision: { backoff: { initialDelayMs: 10, maxDelayMs: 20 } },
      // The clock is read first thing in each chunk: a handler error kafkajs does not retry.
      clock: () => {
        if (throws-- > 0) throw new (KafkaJSNotImplemented as unknown as new (message: string) => Error)('LZ4 compression not implemented (test)');
        return new Date();
      },
    });
    const states: string[] = [];
    const errors: string[] = [];
    vigil.instrumentation.on('consumer.state', ({ state, error }) => {
      states.push(state);
      if (state === 'restarting' && error instanceof Error) errors.push(error.message);
    });
    await vigil.start();
    try {
      await emit(stack, 30, 'recover');
      await waitFor('30 events indexed', async () => (await countEvents(stack)) >= 30);
      // The first restart is for the escaped error. A restart can meet a connection kafkajs is
      // still closing ("write after end") and restart once more: recovered all the same.
      expect(vigil.consumers()).toEqual([expect.objectContaining({ component: 'ingest', state: 'running' })]);
      expect(errors[0]).toBe('LZ4 compression not implemented (test)');
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors.length).toBeLessThanOrEqual(3);
      expect(states.slice(0, 3)).toEqual(['starting', 'running', 'restarting']);
      expect(states.at(-1)).toBe('running');
      expect(vigil.stats().ingest?.indexed).toBe(30);
    } finally {
      await vigil.stop();
    }
  });

  it('fails past the restart budget: vigil.failure names the consumer, /readyz answers 503', async () => {
    await ensureTopics(stack.kafka, stack.config);
    const rogue: Consumer = stack.kafka.consumer({ groupId: stack.config.consumerGroup, partitionAssigners: [rogueAssigner] });
    const joined = new Promise<void>((resolve) => rogue.on(rogue.events.GROUP_JOIN, () => resolve()));
    await rogue.connect();
    await rogue.subscribe({ topic: stack.config.topics.policy });
    await rogue.run({ eachMessage: () => Promise.resolve() });
    await joined;
    const vigil = vigilOn(stack, { http: { host: '127.0.0.1', port: 0 }, supervision: { maxRestarts: 2, backoff: { initialDelayMs: 10, maxDelayMs: 20 } } });
    try {
      await vigil.start();
      const failure = await vigil.failure;
      expect(failure).toBeInstanceOf(ConsumerFailedError);
      expect(failure.message).toMatch(/^the ingest consumer \(group it-[0-9a-f]+-ingest\) was given up after 3 crashes within its restart window: .*protocol/i);
      const address = vigil.httpAddress();
      if (!address) throw new Error('no HTTP address');
      const ready = await get(`http://${address.host}:${address.port}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ ready: false, checks: { kafka: { ok: true }, consumers: { ok: false, error: expect.stringMatching(/^ingest consumer is failed: /) as unknown } } });
    } finally {
      await vigil.stop();
      await rogue.disconnect();
    }
  });

  it('stops gracefully mid-stream: the chunks in hand are committed, nothing is lost and nothing redone', async () => {
    const total = 2000;
    await ensureTopics(stack.kafka, stack.config);
    await emit(stack, total, 'stop');
    // At least once: the topic may hold an event twice, each copy consumed once and indexed once between them.
    const onTopic = await messagesOn(stack.kafka, stack.config.topics.invocation);
    expect(onTopic).toBeGreaterThanOrEqual(total);
    const first = vigilOn(stack);
    let chunks = 0;
    let stopping: Promise<void> | undefined;
    // Stop from inside the stream: the fifth chunk is committed, more are in flight or to come.
    first.instrumentation.on('runner.chunk', () => {
      if (++chunks === 5) stopping = first.stop();
    });
    await first.start();
    await waitFor('the first instance to stop', () => stopping !== undefined);
    await stopping;
    const consumedFirst = first.stats().ingest?.consumed ?? 0;
    expect(consumedFirst).toBeGreaterThan(0);
    expect(consumedFirst).toBeLessThan(onTopic);

    const second = vigilOn(stack);
    await second.start();
    try {
      await waitFor(`${total} events indexed`, async () => (await countEvents(stack)) >= total);
      await waitFor('the second instance to count the rest', () => (second.stats().ingest?.consumed ?? 0) >= onTopic - consumedFirst);
      // Nothing redone: between them the two consumed each message once. Each instance indexed or
      // recognised as a copy what it consumed, and the copies are exactly those the topic holds.
      const [firstStats, secondStats] = [first.stats().ingest, second.stats().ingest];
      expect(secondStats?.consumed).toBe(onTopic - consumedFirst);
      expect((firstStats?.indexed ?? 0) + (firstStats?.duplicates ?? 0)).toBe(consumedFirst);
      expect((secondStats?.indexed ?? 0) + (secondStats?.duplicates ?? 0)).toBe(onTopic - consumedFirst);
      expect((firstStats?.indexed ?? 0) + (secondStats?.indexed ?? 0)).toBe(total);
      expect((firstStats?.duplicates ?? 0) + (secondStats?.duplicates ?? 0)).toBe(onTopic - total);
      expect(await countEvents(stack)).toBe(total);
    } finally {
      await second.stop();
    }
  });
});
