import { Redis } from 'ioredis';
import type { Vigil } from '../../app';
import { ensureTopics, installTemplates } from '../../platform';
import { alertSchema, type Alert, type AlertChange } from '../../schemas';
import { createGroupStore, createNotifier, deleteKeysUnder, groupKeys, parseDestinations, unconfiguredWaiting, type Notifier, type NotifierOptions } from '../../detectors';
import { startAlertReceiver, type Received } from '../../scripts/alert-receiver';
import { sampleDetection } from '../support/detections';
import { isolatedConfig, openStack, testLogger, vigilOn, waitFor, type Stack } from '../support/harness';
import { testProducer } from '../support/produce';

const SECRET = 'grouping-webhook-secret-0123456789';

function alert(revision: number, overrides: Partial<Alert> = {}): Alert {
  return alertSchema.parse({
    id: 'al-grouping-1',
    status: 'open',
    severity: 'high',
    groupKey: 'actor.userId=u-9',
    key: { 'actor.userId': 'u-9' },
    title: 'Brute force on u-9',
    reason: `${revision * 10} failed logins for u-9`,
    rules: ['brute-force'],
    ruleNames: ['Brute force'],
    tags: ['T1110'],
    count: revision * 10,
    suppressed: 0,
    firstSeen: '2026-03-01T10:00:00.000Z',
    lastSeen: '2026-03-01T10:01:00.000Z',
    detections: ['d-1'],
    revision,
    ...overrides,
  });
}

const opened = (): AlertChange => ({ kind: 'opened', alert: alert(1) });
const escalated = (revision: number): AlertChange => ({ kind: 'escalated', alert: alert(revision) });
const resolved = (revision: number): AlertChange => ({ kind: 'resolved', alert: alert(revision, { status: 'resolved', resolvedAt: '2026-03-01T10:30:00.000Z' }) });

/** What each destination got: the webhook's event types (with the alert revision), the change in Slack's one-liners, PagerDuty's actions. */
function summary(received: readonly Received[]): Record<string, string[]> {
  const out: Record<string, string[]> = { '/webhook': [], '/slack': [], '/pagerduty': [] };
  for (const item of received) {
    const json = item.json as { type?: string; alert?: { revision: number }; event_action?: string; text?: string };
    if (item.path === '/webhook') out['/webhook']?.push(`${json.type}@${json.alert?.revision}`);
    else if (item.path === '/pagerduty') out['/pagerduty']?.push(String(json.event_action));
    else out[item.path]?.push(/\| (\w+)$/.exec(String(json.text))?.[1] ?? 'unreadable');
  }
  return out;
}

describe('notification grouping against real Redis and a real receiver', () => {
  let receiver: Awaited<ReturnType<typeof startAlertReceiver>>;
  let redis: Redis;
  let prefix: string;
  const running: Notifier[] = [];

  const destinations = (groupIntervalMs: number) =>
    parseDestinations(
      JSON.stringify([
        { name: 'hook', type: 'webhook', url: `${receiver.url}/webhook`, secret: SECRET, groupWaitMs: 500, groupIntervalMs },
        { name: 'chat', type: 'slack', url: `${receiver.url}/slack`, groupWaitMs: 500, groupIntervalMs },
        { name: 'pager', type: 'pagerduty', url: `${receiver.url}/pagerduty`, routingKey: 'routing-key-grouping-000000', groupWaitMs: 500, groupIntervalMs },
      ]),
    );

  /** A notifier instance on the shared Redis store (as one process of several). */
  function instance(groupIntervalMs: number, extra: Partial<NotifierOptions> = {}): Notifier {
    const notifier = createNotifier({
      destinations: destinations(groupIntervalMs),
      deadLetterTopic: 'unused',
      logger: testLogger,
      initialDelayMs: 20,
      maxDelayMs: 100,
      grouping: { store: createGroupStore(redis, prefix), pollEveryMs: 50 },
      ...extra,
    });
    running.push(notifier);
    return notifier;
  }

  beforeAll(async () => {
    receiver = await startAlertReceiver(SECRET);
  });

  beforeEach(() => {
    receiver.received.length = 0;
    const config = isolatedConfig();
    prefix = config.redis.prefix;
    redis = new Redis(config.redis.url);
  });

  afterEach(async () => {
    for (const notifier of running.splice(0)) await notifier.stop(0);
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  });

  afterAll(async () => {
    await receiver.close();
  });

  it('sends opened + 5 escalations in quick succession + resolved as at most 3 notifications per destination', async () => {
    const notifier = instance(300_000);
    notifier.notify(opened());
    for (let revision = 2; revision <= 6; revision += 1) notifier.notify(escalated(revision));
    // The group wait passes: one opened, with the latest state, per destination.
    await waitFor('the opening at the three destinations', () => receiver.received.length >= 3, 30_000);
    notifier.notify(resolved(7));
    await waitFor('the resolve at the three destinations', () => receiver.received.length >= 6, 30_000);
    await notifier.drain();

    expect(summary(receiver.received)).toEqual({
      '/webhook': ['vigil.alert.opened@6', 'vigil.alert.resolved@7'],
      '/slack': ['opened', 'resolved'],
      '/pagerduty': ['trigger', 'resolve'],
    });
    expect(receiver.received.filter((item) => item.path === '/webhook').every((item) => item.signature === 'valid')).toBe(true);
    expect(notifier.outboxStats().grouped).toBe(3 * 5);
    // Nothing is left due: the incident is finished at every destination.
    for (const name of ['hook', 'chat', 'pager']) expect(await redis.zcard(groupKeys(prefix, name).due)).toBe(0);
  });

  it('keeps the timing across a restart and among several instances: escalations held by the group interval go once, as one', async () => {
    const first = instance(2000);
    first.notify(opened());
    await waitFor('the opening at the three destinations', () => receiver.received.length >= 3, 30_000);
    for (let revision = 2; revision <= 6; revision += 1) first.notify(escalated(revision));
    await first.drain();
    // The escalations wait for the group interval in Redis; the instance that noted them stops.
    await first.stop(1000);
    expect(receiver.received).toHaveLength(3);

    // Two new instances: each notification goes once, from one of them.
    const [second, third] = [instance(2000), instance(2000)];
    await waitFor('the grouped escalation at the three destinations', () => receiver.received.length >= 6, 30_000);
    third.notify(resolved(7));
    await waitFor('the resolve at the three destinations', () => receiver.received.length >= 9, 30_000);
    await Promise.all([second.drain(), third.drain()]);
    await new Promise((done) => setTimeout(done, 300));

    expect(summary(receiver.received)).toEqual({
      '/webhook': ['vigil.alert.opened@1', 'vigil.alert.escalated@6', 'vigil.alert.resolved@7'],
      '/slack': ['opened', 'escalated', 'resolved'],
      '/pagerduty': ['trigger', 'trigger', 'resolve'],
    });
    const ids = receiver.received.filter((item) => item.path === '/webhook').map((item) => item.headers['x-vigil-delivery']);
    expect(new Set(ids).size).toBe(3);
  });

  it('finds the incidents waiting at a destination that was renamed: nobody would send them', async () => {
    const first = instance(60_000);
    first.notify(opened());
    await waitFor('the opening at the three destinations', () => receiver.received.length >= 3, 30_000);
    first.notify(escalated(2));
    await first.drain();
    await first.stop(1000);
    // The escalation waits for the group interval at each destination; then "hook" is renamed.
    const store = createGroupStore(redis, prefix);
    expect(await unconfiguredWaiting(store, destinations(60_000))).toEqual({});
    const renamed = destinations(60_000).map((destination) => (destination.name === 'hook' ? { ...destination, name: 'oncall-hook' } : destination));
    expect(await unconfiguredWaiting(store, renamed)).toEqual({ hook: 1 });
  });

  it('sends again, with the same delivery id, what an instance took and never confirmed (it died) once its lease ends', async () => {
    const attempted: string[] = [];
    // The first instance's webhook attempts hang, as in a process frozen mid-send.
    const hanging = ((_url: string | URL | Request, init?: RequestInit) => {
      attempted.push(new Headers(init?.headers).get('x-vigil-delivery') ?? '');
      return new Promise<Response>(() => undefined);
    }) as typeof fetch;
    const frozen = createNotifier({
      destinations: destinations(300_000).filter((destination) => destination.name === 'hook').map((destination) => ({ ...destination, timeoutMs: 120_000 })),
      deadLetterTopic: 'unused',
      logger: testLogger,
      fetchImpl: hanging,
      grouping: { store: createGroupStore(redis, prefix), pollEveryMs: 50, leaseMs: 1500 },
    });
    frozen.notify(opened());
    await waitFor('the frozen attempt', () => attempted.length >= 1, 30_000);
    // It dies mid-send: no more polling, and the lease it holds is never given back. (Left polling,
    // it could take the lease again each time it ran out, and hang on it again.)
    frozen.abandon();

    const survivor = instance(300_000, { grouping: { store: createGroupStore(redis, prefix), pollEveryMs: 50, leaseMs: 1500 } });
    await waitFor('the opening sent by the survivor', () => receiver.received.some((item) => item.path === '/webhook'), 30_000);
    await survivor.drain();
    expect(attempted).toHaveLength(1);

    const webhooks = receiver.received.filter((item) => item.path === '/webhook');
    expect(webhooks).toHaveLength(1);
    expect(webhooks[0]?.headers['x-vigil-delivery']).toBe(attempted[0]);
  });
});

describe('notification grouping in the running alerting path (alerter → outbox → notifier)', () => {
  let receiver: Awaited<ReturnType<typeof startAlertReceiver>>;
  let stack: Stack;
  let redis: Redis;
  let vigil: Vigil | undefined;

  beforeAll(async () => {
    receiver = await startAlertReceiver(SECRET);
    stack = openStack(
      isolatedConfig({
        VIGIL_ALERT_RESOLVE_AFTER_MS: '2000',
        VIGIL_ALERT_DESTINATIONS: JSON.stringify([
          { name: 'webhook', type: 'webhook', url: `${receiver.url}/webhook`, secret: SECRET, groupWaitMs: 1000 },
          { name: 'slack', type: 'slack', url: `${receiver.url}/slack`, groupWaitMs: 1000 },
          { name: 'pagerduty', type: 'pagerduty', url: `${receiver.url}/pagerduty`, routingKey: 'routing-key-grouping-e2e-0000', groupWaitMs: 1000 },
        ]),
      }),
    );
    redis = new Redis(stack.config.redis.url);
    await ensureTopics(stack.kafka, stack.config);
    await installTemplates(stack.elasticsearch, stack.config);
  });

  afterAll(async () => {
    await vigil?.stop();
    await deleteKeysUnder(redis, stack.config.redis.prefix);
    await redis.quit();
    await receiver.close();
    await stack.cleanup();
  });

  it('an incident opened, escalated 5 times in quick succession and resolved reaches each destination at most 3 times', async () => {
    const changes: AlertChange[] = [];
    vigil = vigilOn(stack, { roles: ['alerting'], redis, http: false, sweepEveryMs: 250, onAlertChange: (change) => changes.push(change) });
    await vigil.start();
    const producer = testProducer(stack.kafka);
    await producer.connect();
    // Six rules on one user: the first opens the alert, each of the next five joins it (an escalation).
    for (const [n, rule] of ['rule-a', 'rule-b', 'rule-c', 'rule-d', 'rule-e', 'rule-f'].entries()) {
      const item = { ...sampleDetection(n, 'grouping'), id: `det-grouping-${rule}`, ruleId: rule, ruleName: rule };
      await producer.send({ topic: stack.config.topics.detections, messages: [{ key: 'u-grouping', value: JSON.stringify(item) }], acks: -1 });
    }
    await producer.disconnect();
    await waitFor('the resolve at the three destinations', () => summaryOf(receiver.received).filter((kind) => /resolved?(@\d+)?$/.test(kind)).length >= 3, 60_000);
    await (vigil.notifier as Notifier).drain();

    // Opened, an escalation per rule that joined (the six rules, and the user's combined risk
    // crossing its threshold when risk-based alerting adds it), resolved.
    const kinds = changes.map((change) => change.kind);
    expect({ first: kinds[0], last: kinds.at(-1), escalations: kinds.slice(1, -1).filter((kind) => kind === 'escalated').length }).toEqual({
      first: 'opened',
      last: 'resolved',
      escalations: kinds.length - 2,
    });
    expect(kinds.length - 2).toBeGreaterThanOrEqual(5);
    const per = summary(receiver.received);
    for (const [path, kinds] of Object.entries(per)) {
      expect({ path, atMost3: kinds.length <= 3, atLeast2: kinds.length >= 2 }).toEqual({ path, atMost3: true, atLeast2: true });
    }
    expect(per['/webhook']?.[0]).toMatch(/^vigil\.alert\.opened@/);
    expect(per['/webhook']?.at(-1)).toBe(`vigil.alert.resolved@${changes.at(-1)?.alert.revision ?? 0}`);
    expect(per['/pagerduty']?.[0]).toBe('trigger');
    expect(per['/pagerduty']?.at(-1)).toBe('resolve');
    expect(await vigil.metrics.metrics()).toMatch(/^vigil_notifications_grouped_total [1-9]\d*$/m);
  });
});

/** Every notification's kind, whatever the destination. */
function summaryOf(received: readonly Received[]): string[] {
  return Object.values(summary(received)).flat();
}
