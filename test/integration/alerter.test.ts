import { Redis } from 'ioredis';
import { createAlerter, type Alerter } from '../../detectors';
import { ensureTopics, installTemplates } from '../../platform';
import { alertIndexNames, type AlertChange, type Detection } from '../../schemas';
import { isolatedConfig, openStack, testLogger, waitFor, type Stack } from '../support/harness';

const detection = (n: number, overrides: Partial<Detection> = {}): Detection => ({
  id: `det-it-${String(n).padStart(4, '0')}`,
  ruleId: 'request-flood-per-endpoint',
  ruleVersion: 1,
  ruleName: 'Request flood on an endpoint from few sources',
  ruleType: 'surge',
  severity: 'medium',
  tags: ['T1498', 'dos'],
  reasonCode: 'surge_requests',
  reason: `flood number ${n}`,
  key: { 'invocation.resource.api': 'accounts-v1', 'invocation.route': '/v1/login' },
  observedValue: 1000,
  threshold: 160,
  window: { start: '2026-03-02T09:00:00.000Z', end: '2026-03-02T09:00:30.000Z', durationMs: 30_000 },
  eventIds: [`evt-${n}`],
  time: '2026-03-02T09:00:30.000Z',
  detectedAt: new Date().toISOString(),
  degraded: false,
  ...overrides,
});

describe('the alerter on the real Kafka, Redis and Elasticsearch', () => {
  let stack: Stack;
  let redis: Redis;
  let alerter: Alerter;
  const changes: AlertChange[] = [];

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_ALERT_SUPPRESS_MS: '60000', VIGIL_ALERT_RESOLVE_AFTER_MS: '2500' }));
    redis = new Redis(stack.config.redis.url);
    await ensureTopics(stack.kafka, stack.config);
    await installTemplates(stack.elasticsearch, stack.config);
    alerter = createAlerter({
      config: stack.config,
      kafka: stack.kafka,
      redis,
      elasticsearch: stack.elasticsearch,
      // The sink is the notifier's interface: record what on-call would be sent.
      sink: { accept: (accepted) => Promise.resolve(void changes.push(...accepted)) },
      logger: testLogger,
      sweepEveryMs: 250,
    });
    await alerter.start();
  });

  afterAll(async () => {
    await alerter.stop();
    const keys = await redis.keys(`${stack.config.redis.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await stack.cleanup();
  });

  it('groups a burst of detections on one endpoint into one alert, escalates it, and resolves it when quiet', async () => {
    const producer = stack.kafka.producer();
    await producer.connect();
    const burst = [
      ...Array.from({ length: 8 }, (_, n) => detection(n)),
      // Other rules on the same endpoint join the same incident.
      detection(100, { ruleId: 'error-surge-per-endpoint', ruleName: 'Server error surge on an endpoint', severity: 'high', tags: ['T1499'] }),
      detection(101, { ruleId: 'distributed-flood-per-endpoint', ruleName: 'Distributed flood on an endpoint', tags: ['T1498'] }),
      ...Array.from({ length: 4 }, (_, n) => detection(8 + n)),
    ];
    // A redelivered detection must not count twice.
    const messages = [...burst, burst[0] as Detection].map((item) => ({ key: item.ruleId, value: JSON.stringify(item) }));
    await producer.send({ topic: stack.config.topics.detections, messages, acks: -1 });
    await producer.disconnect();

    await waitFor('every detection folded in', () => alerter.stats().detections >= messages.length, 30_000);
    expect(alerter.stats()).toMatchObject({ opened: 1, duplicates: 1, invalid: 0 });
    const notified = changes.map((change) => `${change.kind}:${change.alert.severity}`);
    // One notification when it opened, then one per escalation: each new rule joining (error
    // surge, distributed flood) and each severity step (count 10); the other 10 are suppressed.
    expect(notified[0]).toBe('opened:medium');
    expect(notified.slice(1).every((entry) => entry.startsWith('escalated:'))).toBe(true);
    expect(notified.length).toBeLessThanOrEqual(4);

    const index = alertIndexNames(stack.config.indices.prefix).index;
    await waitFor('the alert document', async () => {
      await stack.elasticsearch.indices.refresh({ index, ignore_unavailable: true });
      const { count } = await stack.elasticsearch.count({ index, ignore_unavailable: true });
      return count === 1;
    });
    const opened = changes[0]?.alert;
    const document = await stack.elasticsearch.get<Record<string, { alert: Record<string, unknown> }>>({ index, id: opened?.id ?? '' });
    expect(document._source?.vigil?.alert).toMatchObject({ count: burst.length, group_key: 'invocation.resource.api=accounts-v1,invocation.route=/v1/login' });
    expect(document._source?.kibana?.alert).toMatchObject({ status: 'active', severity: changes.at(-1)?.alert.severity });

    await waitFor('the resolution', () => changes.some((change) => change.kind === 'resolved'), 15_000);
    const resolved = changes.find((change) => change.kind === 'resolved')?.alert;
    expect(resolved).toMatchObject({ id: opened?.id, status: 'resolved', count: burst.length });
    expect(resolved?.rules.sort()).toEqual(['distributed-flood-per-endpoint', 'error-surge-per-endpoint', 'request-flood-per-endpoint']);
    await waitFor('the resolved document', async () => {
      const current = await stack.elasticsearch.get<Record<string, { alert: Record<string, unknown> }>>({ index, id: opened?.id ?? '' });
      return current._source?.kibana?.alert?.status === 'recovered';
    });
  });
});
