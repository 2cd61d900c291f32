import { Redis } from 'ioredis';
import { UNSENT_GRACE_MS, alertKeys, createAlerter, createSilenceStore, type Alerter, type AlerterOptions } from '../../detectors';
import { createAlertStore, type AlertFold } from '../../detectors/alerting/alert-store';
import { ensureTopics, installTemplates } from '../../platform';
import { alertIndexNames, detectionIndexNames, type AlertChange, type Detection } from '../../schemas';
import { isolatedConfig, openStack, testLogger, waitFor, type Stack } from '../support/harness';
import { testProducer } from '../support/produce';
import { callScript } from '../support/redis';

const MINUTE = 60_000;
const ENDPOINT = { 'invocation.resource.api': 'accounts-v1', 'invocation.route': '/v1/login' };
const SCOPE = { api: 'accounts-v1', route: '/v1/login' };

/** A detection at event time `at` (ms), by default a flood on the login endpoint. */
const detection = (id: string, at: number, overrides: Partial<Detection> = {}): Detection => ({
  id: `det-it-${id}`,
  ruleId: 'request-flood-per-endpoint',
  ruleVersion: 1,
  ruleName: 'Request flood on an endpoint from few sources',
  ruleType: 'surge',
  severity: 'medium',
  tags: ['T1498', 'dos'],
  reasonCode: 'surge_requests',
  reason: `flood ${id}`,
  key: ENDPOINT,
  observedValue: 1000,
  threshold: 160,
  window: { start: new Date(Math.floor(at / MINUTE) * MINUTE).toISOString(), end: new Date(Math.floor(at / MINUTE) * MINUTE + MINUTE).toISOString(), durationMs: MINUTE },
  eventIds: [`evt-${id}`],
  time: new Date(at).toISOString(),
  detectedAt: new Date().toISOString(),
  degraded: false,
  scope: SCOPE,
  ...overrides,
});

/** A per-IP detection on the login endpoint. */
const perIp = (id: string, at: number, ip: string, ruleId = 'credential-stuffing'): Detection =>
  detection(id, at, {
    ruleId,
    ruleName: ruleId === 'credential-stuffing' ? 'Credential stuffing from one IP' : 'Repeated authentication failures from one IP',
    ruleType: 'cardinality',
    severity: 'high',
    tags: ['T1110.004', 'authentication'],
    reasonCode: 'distinct_reached',
    reason: `stuffing from ${ip}`,
    key: { 'client.ip': ip },
    window: { start: new Date(at - 10 * MINUTE).toISOString(), end: new Date(at).toISOString(), durationMs: 10 * MINUTE },
  });

/** One detection as the alerter hands it to the alert store: a credential-stuffing detection of `group` by default. */
function foldItem(detectionId: string, group: string, time: number, orderTime: number, newId: string, ruleId = 'credential-stuffing'): AlertFold {
  return {
    detectionId,
    group,
    time,
    orderTime,
    windowStart: time - 60_000,
    newId,
    title: `${ruleId}: ${group}`,
    ruleId,
    ruleName: ruleId,
    severityRank: 3,
    tags: [],
    key: { group },
    reason: ruleId,
    explains: false,
    explainedBy: [],
    campaign: { group: `campaign:${ruleId}`, newId: `${newId}-campaign`, title: 'campaign', key: { 'rule.id': ruleId } },
  };
}

interface Running {
  stack: Stack;
  redis: Redis;
  alerter: Alerter;
  changes: AlertChange[];
  stop(): Promise<void>;
}

/** An alerter on its own topics, Redis prefix and indices. */
async function runAlerter(env: Record<string, string>, extra: Partial<AlerterOptions> = {}): Promise<Running> {
  const stack = openStack(isolatedConfig(env));
  const redis = new Redis(stack.config.redis.url);
  await ensureTopics(stack.kafka, stack.config);
  await installTemplates(stack.elasticsearch, stack.config);
  const changes: AlertChange[] = [];
  const alerter = createAlerter({
    config: stack.config,
    kafka: stack.kafka,
    redis,
    elasticsearch: stack.elasticsearch,
    // The sink is the notifier's interface: record what on-call would be sent.
    sink: { accept: (accepted) => Promise.resolve(void changes.push(...accepted)) },
    logger: testLogger,
    sweepEveryMs: 250,
    ...extra,
  });
  return {
    stack,
    redis,
    alerter,
    changes,
    async stop() {
      await alerter.stop();
      const keys = await redis.keys(`${stack.config.redis.prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
      await stack.cleanup();
    },
  };
}

async function produce(stack: Stack, detections: readonly Detection[]): Promise<void> {
  const producer = testProducer(stack.kafka);
  await producer.connect();
  // Keyed as the ingest pipeline keys them (rule and key): spread over the topic's partitions.
  const messages = detections.map((item) => ({ key: `${item.ruleId}|${Object.values(item.key).join(',')}`, value: JSON.stringify(item) }));
  await producer.send({ topic: stack.config.topics.detections, messages, acks: -1 });
  await producer.disconnect();
}

/** Produces detections to the partitions `partitionOf` their index names. */
async function produceTo(stack: Stack, detections: readonly Detection[], partitionOf: (index: number) => number): Promise<void> {
  const producer = testProducer(stack.kafka);
  await producer.connect();
  const messages = detections.map((item, index) => ({ partition: partitionOf(index), key: item.id, value: JSON.stringify(item) }));
  await producer.send({ topic: stack.config.topics.detections, messages, acks: -1 });
  await producer.disconnect();
}

/** The alert documents, keyed by id: what an analyst sees of each incident. */
async function alertDocuments(stack: Stack): Promise<Map<string, Record<string, unknown>>> {
  const index = alertIndexNames(stack.config.indices.prefix).index;
  await stack.elasticsearch.indices.refresh({ index, ignore_unavailable: true });
  const response = await stack.elasticsearch.search<{ kibana: { alert: Record<string, unknown> }; vigil: { alert: Record<string, unknown> } }>({
    index,
    size: 1000,
    ignore_unavailable: true,
  });
  const found = new Map<string, Record<string, unknown>>();
  for (const hit of response.hits.hits) {
    const source = hit._source;
    if (!source || hit._id === undefined) continue;
    found.set(hit._id, {
      group: source.vigil.alert.group_key,
      count: source.vigil.alert.count,
      rules: source.vigil.alert.rules,
      status: source.kibana.alert.status,
      start: source.kibana.alert.start,
      lastDetected: source.kibana.alert.last_detected,
      end: source.kibana.alert.end,
      evidence: source.vigil.alert.evidence,
      campaign: source.vigil.alert.campaign,
      entities: source.vigil.alert.entities,
      silencedBy: source.kibana.alert.maintenance_window_ids,
    });
  }
  return found;
}

/** The alert documents once two reads in a row agree (alerts reach the index after the fold). */
async function settledDocuments(stack: Stack): Promise<Map<string, Record<string, unknown>>> {
  let previous = '';
  let documents = new Map<string, Record<string, unknown>>();
  await waitFor('the alert documents to settle', async () => {
    documents = await alertDocuments(stack);
    const now = JSON.stringify([...documents].sort(([a], [b]) => a.localeCompare(b)));
    const same = now === previous && documents.size > 0;
    previous = now;
    return same;
  });
  return documents;
}

describe('the alerter on the real Kafka, Redis and Elasticsearch', () => {
  it('groups a burst of detections on one endpoint into one alert, escalates it, and resolves it when quiet', async () => {
    const running = await runAlerter({ VIGIL_ALERT_RESOLVE_AFTER_MS: '2500' });
    const { stack, alerter, changes } = running;
    try {
      await alerter.start();
      const at = Date.now();
      const burst = [
        ...Array.from({ length: 8 }, (_, n) => detection(`det-${n}`, at + n)),
        // Other rules on the same endpoint join the same incident.
        detection('det-100', at + 20, { ruleId: 'error-surge-per-endpoint', ruleName: 'Server error surge on an endpoint', severity: 'high', tags: ['T1499'] }),
        detection('det-101', at + 21, { ruleId: 'distributed-flood-per-endpoint', ruleName: 'Distributed flood on an endpoint', tags: ['T1498'] }),
        ...Array.from({ length: 4 }, (_, n) => detection(`det-${8 + n}`, at + 30 + n)),
      ];
      // A redelivered detection must not count twice.
      await produce(stack, [...burst, burst[0] as Detection]);

      await waitFor('every detection folded in', () => alerter.stats().folded >= burst.length && alerter.stats().detections >= burst.length + 1, 30_000);
      // The redelivered copy is held once (the same JSON): it never counts twice.
      expect(alerter.stats()).toMatchObject({ detections: burst.length + 1, opened: 1, invalid: 0 });
      const notified = changes.map((change) => `${change.kind}:${change.alert.severity}`);
      // One notification when it opened, then one per escalation: each new rule joining (error
      // surge, distributed flood) and each severity step (count 10); the other 10 are suppressed.
      // (Which detection opens it depends on which partition the alerter read first, when they
      // arrive more than the allowed lateness apart; the incident is the same.)
      expect(notified[0]).toMatch(/^opened:/);
      expect(notified.slice(1).every((entry) => entry.startsWith('escalated:'))).toBe(true);
      expect(notified.length).toBeLessThanOrEqual(4);

      const opened = changes[0]?.alert;

      // No detection arrives any more: the wall-clock fallback resolves it, at its event-time end.
      await waitFor('the resolution', () => changes.some((change) => change.kind === 'resolved'), 15_000);
      const resolved = changes.find((change) => change.kind === 'resolved')?.alert;
      // Times are event times: the first and the latest detection's, and the end of the quiet period after it.
      expect(resolved).toMatchObject({
        id: opened?.id,
        status: 'resolved',
        count: burst.length,
        firstSeen: new Date(at).toISOString(),
        lastSeen: new Date(at + 33).toISOString(),
        resolvedAt: new Date(at + 33 + 2500).toISOString(),
      });
      expect(resolved?.rules.sort()).toEqual(['distributed-flood-per-endpoint', 'error-surge-per-endpoint', 'request-flood-per-endpoint']);
      await waitFor('the resolved document', async () => (await alertDocuments(stack)).get(opened?.id ?? '')?.status === 'recovered');
      expect((await alertDocuments(stack)).get(opened?.id ?? '')).toMatchObject({ count: burst.length, group: 'invocation.resource.api=accounts-v1,invocation.route=/v1/login' });
    } finally {
      await running.stop();
    }
  });

  it('holds back the notifications of alerts a silence matches, still opening, indexing and resolving them, and notifies again once it ended', async () => {
    const running = await runAlerter({ VIGIL_ALERT_RESOLVE_AFTER_MS: '2500' });
    const { stack, alerter, changes, redis } = running;
    try {
      const silences = createSilenceStore(redis, stack.config.redis.prefix);
      const silence = await silences.add({ matchers: { 'client.ip': '203.0.113.50' }, forMs: 3_600_000, comment: 'pen test' }, Date.now());
      // One that ended an hour ago: it silences nothing.
      await silences.add({ matchers: { 'client.ip': '203.0.113.52' }, forMs: 3_600_000, comment: 'last week' }, Date.now() - 2 * 3_600_000);
      await alerter.start();
      const at = Date.now();
      await produce(stack, [perIp('s-50', at, '203.0.113.50'), perIp('s-51', at + 1, '203.0.113.51'), perIp('s-52', at + 2, '203.0.113.52')]);
      await waitFor('the three alerts resolved', () => changes.filter((change) => change.kind === 'resolved').length >= 3, 30_000);
      const about = (ip: string): string[] => changes.filter((change) => change.alert.key['client.ip'] === ip).map((change) => `${change.kind}${change.late ? ':late' : ''}`);
      // Silenced: no opened; its resolve is handed over marked late, so it goes only where the
      // incident was announced (nowhere, here).
      expect(about('203.0.113.50')).toStrictEqual(['resolved:late']);
      expect(about('203.0.113.51')).toStrictEqual(['opened', 'resolved']);
      expect(about('203.0.113.52')).toStrictEqual(['opened', 'resolved']);
      expect(alerter.stats().silenced).toBe(1);
      // Still an incident for analysts: opened, indexed and resolved like the others.
      const silencedAlert = changes.find((change) => change.alert.key['client.ip'] === '203.0.113.50')?.alert;
      await waitFor('its resolved document', async () => (await alertDocuments(stack)).get(silencedAlert?.id ?? '')?.status === 'recovered');
      // Its document says which silence held it back (Kibana's maintenance_window_ids); the others' say none.
      const documents = await alertDocuments(stack);
      expect(documents.get(silencedAlert?.id ?? '')?.silencedBy).toStrictEqual([silence.id]);
      const others = changes.filter((change) => change.alert.key['client.ip'] !== '203.0.113.50').map((change) => change.alert.id);
      for (const id of others) expect(documents.get(id)?.silencedBy).toBeUndefined();

      // Ended: the next incident of that address pages again.
      expect(await silences.expire(silence.id, Date.now())).toBe(true);
      expect(await silences.expire(silence.id, Date.now())).toBe(false);
      await produce(stack, [perIp('s-50-again', Date.now(), '203.0.113.50')]);
      await waitFor('the new incident notified', () => about('203.0.113.50').includes('opened'), 15_000);
      expect(alerter.stats().silenced).toBe(1);
    } finally {
      await running.stop();
    }
  });

  // Alertmanager notifies a firing alert when its silence ends; here an incident opened during a
  // silence was never paged unless it escalated.
  it('notifies an open alert a silence held back once the silence ends, once, and forgets it', async () => {
    const running = await runAlerter({ VIGIL_ALERT_RESOLVE_AFTER_MS: '600000' });
    const { stack, alerter, changes, redis } = running;
    try {
      const silences = createSilenceStore(redis, stack.config.redis.prefix);
      const silence = await silences.add({ matchers: { 'client.ip': '203.0.113.60' }, forMs: 3_600_000, comment: 'incident handled' }, Date.now());
      await alerter.start();
      await produce(stack, [perIp('h-60', Date.now(), '203.0.113.60')]);
      await waitFor('the opening held back', () => alerter.stats().silenced >= 1, 15_000);
      const about = (): string[] => changes.filter((change) => change.alert.key['client.ip'] === '203.0.113.60').map((change) => change.kind);
      const held = `${stack.config.redis.prefix}:{alerts}:held-by-silence`;
      await alerter.sweep();
      expect(about()).toStrictEqual([]);
      expect(Object.keys(await redis.hgetall(held))).toHaveLength(1);

      expect(await silences.expire(silence.id, Date.now())).toBe(true);
      // Silences that can't be read release nothing (it would end every silence for good): held still.
      const silencesKey = `${stack.config.redis.prefix}:{alerts}:silences`;
      const kept = await redis.hgetall(silencesKey);
      await redis.del(silencesKey);
      await redis.set(silencesKey, 'not a hash');
      await alerter.sweep();
      expect(about()).toStrictEqual([]);
      expect(Object.keys(await redis.hgetall(held))).toHaveLength(1);
      await redis.del(silencesKey);
      await redis.hset(silencesKey, kept);
      await alerter.sweep();
      expect(about()).toStrictEqual(['opened']);
      const [released] = changes.filter((change) => change.alert.key['client.ip'] === '203.0.113.60');
      expect(released?.alert).toMatchObject({ status: 'open', silencedBy: [silence.id] });
      expect(released?.alert.reason).toMatch(/203\.0\.113\.60/);
      // Once: the next sweeps send nothing more, and the index is empty.
      await alerter.sweep();
      await alerter.sweep();
      expect(about()).toStrictEqual(['opened']);
      expect(await redis.exists(held)).toBe(0);
    } finally {
      await running.stop();
    }
  });

  // The hold was recorded after the change was marked sent, and a failure to record it only logged:
  // one Redis error then, and an incident opened during a silence was never paged when it ended.
  it('keeps a silenced opening unsent when its hold cannot be recorded, records it on the next try, and notifies it when the silence ends', async () => {
    // The wall clock, moved past the grace after which a sweep writes what an attempt left unsent.
    let ahead = 0;
    const running = await runAlerter({ VIGIL_ALERT_RESOLVE_AFTER_MS: '600000' }, { now: () => Date.now() + ahead });
    const { stack, alerter, changes, redis } = running;
    try {
      const silences = createSilenceStore(redis, stack.config.redis.prefix);
      const silence = await silences.add({ matchers: { 'client.ip': '203.0.113.62' }, forMs: 3_600_000, comment: 'pen test' }, Date.now());
      const held = `${stack.config.redis.prefix}:{alerts}:held-by-silence`;
      // Recording a hold fails while the index is not a hash (WRONGTYPE), as it would on a Redis error.
      await redis.set(held, 'not a hash');
      await alerter.start();
      await produce(stack, [perIp('m-62', Date.now(), '203.0.113.62')]);
      await waitFor('the alert opened', () => alerter.stats().opened >= 1, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const about = (): string[] => changes.filter((change) => change.alert.key['client.ip'] === '203.0.113.62').map((change) => change.kind);
      expect(about()).toStrictEqual([]);
      // Not counted as held back while the hold is not recorded.
      expect(alerter.stats().silenced).toBe(0);
      await redis.del(held);
      ahead = UNSENT_GRACE_MS + 1000;
      await waitFor('the hold recorded on a later try', async () => Object.keys(await redis.hgetall(held)).length === 1, 20_000);
      expect(alerter.stats().silenced).toBe(1);
      expect(await silences.expire(silence.id, Date.now())).toBe(true);
      await alerter.sweep();
      expect(about()).toStrictEqual(['opened']);
    } finally {
      await running.stop();
    }
  });

  // A held alert was taken off the index to be notified: a process that died before handing the
  // notification over lost it for good, and a release cleared a hold recorded meanwhile.
  it('notifies a held alert whose claimer died before handing it over once the claim ends, and a release keeps a hold recorded meanwhile', async () => {
    const running = await runAlerter({ VIGIL_ALERT_RESOLVE_AFTER_MS: '600000' });
    const { stack, alerter, changes, redis } = running;
    try {
      const prefix = stack.config.redis.prefix;
      const silences = createSilenceStore(redis, prefix);
      const silence = await silences.add({ matchers: { 'client.ip': '203.0.113.61' }, forMs: 3_600_000, comment: 'incident handled' }, Date.now());
      await alerter.start();
      await produce(stack, [perIp('c-61', Date.now(), '203.0.113.61')]);
      await waitFor('the opening held back', () => alerter.stats().silenced >= 1, 15_000);
      const about = (): string[] => changes.filter((change) => change.alert.key['client.ip'] === '203.0.113.61').map((change) => change.kind);
      const { heldBySilence, heldClaims } = alertKeys(prefix);
      const [[alertId = '', group = ''] = []] = Object.entries(await redis.hgetall(heldBySilence));

      // Another instance read the hold (the opening, hold 1) and is releasing it; meanwhile an
      // escalation is held too (hold 2). Its clear of hold 1 must leave hold 2.
      const store = createAlertStore({ redis, prefix, ttlMs: 600_000, maxDetections: 10, resolvedReason: 'quiet', quietMs: 600_000, latenessMs: 500, stormMax: 0, stormWindowMs: 0 });
      const [read] = await store.heldAlerts();
      expect(read?.held).toMatchObject({ kind: 'opened', seq: '1' });
      await store.markSilenced([{ alert: { id: alertId, groupKey: group }, silences: [silence.id], held: { kind: 'escalated', reason: 'a later escalation' } }]);
      await store.clearHeld([{ alertId, group, seq: read?.held?.seq ?? '' }]);
      const [kept] = await store.heldAlerts();
      expect(kept).toMatchObject({ alertId, held: { kind: 'opened', seq: '2' } });

      // The silence ends, and an instance claims the alert (a claim of 1.5 s) and dies.
      expect(await silences.expire(silence.id, Date.now())).toBe(true);
      expect(await callScript(redis, 'alertHeldClaim', [heldBySilence, heldClaims], [1500, 600_000, alertId])).toEqual([alertId]);
      const claimedAt = Date.now();
      await alerter.sweep();
      expect(about()).toStrictEqual([]);
      // Once its claim has ended, a sweep takes it again and notifies it, once.
      await waitFor('the released opening', () => about().includes('opened'), 15_000);
      expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(1400);
      await alerter.sweep();
      await alerter.sweep();
      expect(about()).toStrictEqual(['opened']);
      expect(await redis.exists(heldBySilence)).toBe(0);
      expect(await redis.hexists(heldClaims, alertId)).toBe(0);
    } finally {
      await running.stop();
    }
  });

  // The release's own clear (deliver, once the opening went out) named no hold: one recorded while
  // the notification was on its way was erased with it.
  it('keeps a hold recorded while a released opening is being notified, and notifies it in turn', async () => {
    const sent: AlertChange[] = [];
    let interleave: (() => Promise<void>) | undefined;
    const running = await runAlerter(
      { VIGIL_ALERT_RESOLVE_AFTER_MS: '600000' },
      {
        sink: {
          accept: async (accepted) => {
            sent.push(...accepted);
            // While the release's notification is handed over, another instance holds an escalation.
            const during = interleave;
            interleave = undefined;
            if (during && accepted.some((change) => change.kind === 'opened')) await during();
          },
        },
      },
    );
    const { stack, alerter, redis } = running;
    try {
      const prefix = stack.config.redis.prefix;
      const silences = createSilenceStore(redis, prefix);
      const silence = await silences.add({ matchers: { 'client.ip': '203.0.113.62' }, forMs: 3_600_000, comment: 'maintenance' }, Date.now());
      await alerter.start();
      await produce(stack, [perIp('k-62', Date.now(), '203.0.113.62')]);
      await waitFor('the opening held back', () => alerter.stats().silenced >= 1, 15_000);
      const openings = (): number => sent.filter((change) => change.kind === 'opened' && change.alert.key['client.ip'] === '203.0.113.62').length;
      const [[alertId = '', group = ''] = []] = Object.entries(await redis.hgetall(alertKeys(prefix).heldBySilence));
      const store = createAlertStore({ redis, prefix, ttlMs: 600_000, maxDetections: 10, resolvedReason: 'quiet', quietMs: 600_000, latenessMs: 500, stormMax: 0, stormWindowMs: 0 });
      interleave = async () => {
        await store.markSilenced([{ alert: { id: alertId, groupKey: group }, silences: [silence.id], held: { kind: 'escalated', reason: 'held while the opening went out' } }]);
      };
      expect(await silences.expire(silence.id, Date.now())).toBe(true);
      await waitFor('the released opening', () => openings() >= 1, 15_000);
      expect(interleave).toBeUndefined();
      // The hold recorded meanwhile survived the release's clear: a later sweep notifies it.
      await waitFor('the hold recorded meanwhile notified', () => openings() >= 2, 15_000);
      await alerter.sweep();
      expect(await redis.exists(alertKeys(prefix).heldBySilence)).toBe(0);
    } finally {
      await running.stop();
    }
  });

  // A stalled pipeline produces no detections: the wall-clock fallback resolved the incident, and
  // the detections of the catch-up opened a second alert that paged again.
  it('holds the wall-clock fallback while the ingest group has unread events older than the lateness, and resolves once it has read them', async () => {
    const running = await runAlerter({ VIGIL_ALERT_RESOLVE_AFTER_MS: '1500' });
    const { stack, alerter, changes } = running;
    const admin = stack.kafka.admin();
    try {
      await admin.connect();
      // Events written a minute ago, that the ingest group has committed none of: it is stalled.
      const producer = testProducer(stack.kafka);
      await producer.connect();
      const written = String(Date.now() - MINUTE);
      await producer.send({ topic: stack.config.topics.policy, acks: -1, messages: [0, 1].flatMap((partition) => [{ partition, value: '{}', timestamp: written }, { partition, value: '{}', timestamp: written }]) });
      await producer.disconnect();
      await admin.setOffsets({ groupId: stack.config.consumerGroup, topic: stack.config.topics.policy, partitions: [0, 1].map((partition) => ({ partition, offset: '0' })) });

      await alerter.start();
      await produce(stack, [detection('stalled', Date.now())]);
      await waitFor('the alert opened', () => changes.some((change) => change.kind === 'opened'), 15_000);
      // Quiet (1.5 s) and lateness (0.5 s) pass many times over: held, not resolved.
      await waitFor('the fallback held', () => alerter.stats().heldBehind >= 3, 15_000);
      await new Promise((done) => setTimeout(done, 3000));
      expect(changes.map((change) => change.kind)).toEqual(['opened']);

      // The ingest group catches up: nothing more came for the incident, so the wall clock resolves it.
      await admin.setOffsets({ groupId: stack.config.consumerGroup, topic: stack.config.topics.policy, partitions: [0, 1].map((partition) => ({ partition, offset: '2' })) });
      await waitFor('the resolution', () => changes.some((change) => change.kind === 'resolved'), 15_000);
      expect(changes.map((change) => change.kind)).toEqual(['opened', 'resolved']);
    } finally {
      await admin.disconnect();
      await running.stop();
    }
  });

  // A stall longer than the alert keys' TTL: no fold renewed them, the open alert's keys expired
  // while the fallback held it, and it was never resolved (its page stayed open for good).
  it('keeps an alert the wall-clock fallback holds open past its keys\' TTL, and resolves it once allowed', async () => {
    const redis = new Redis(isolatedConfig({}).redis.url);
    const prefix = `vigil-it-held-ttl-${Date.now()}`;
    try {
      const store = createAlertStore({ redis, prefix, ttlMs: 2000, maxDetections: 10, resolvedReason: 'quiet', quietMs: 1000, latenessMs: 500, stormMax: 0, stormWindowMs: 0 });
      const at = Date.now();
      const group = 'client.ip=203.0.113.90';
      const [reply] = await store.fold([foldItem('det-held-ttl', group, at, at, 'alert-held-ttl')], at);
      expect(reply).toMatchObject({ ok: true, kind: 'opened' });
      // The pipeline is behind for longer than the TTL: every sweep holds the fallback.
      const held = async (): Promise<boolean> => Promise.resolve(false);
      const until = Date.now() + 3500;
      while (Date.now() < until) {
        expect(await store.settle(Date.now() + 10_000, held)).toStrictEqual([]);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(await redis.hget(alertKeys(prefix).alert(group), 'status')).toBe('open');
      // Caught up: the fallback resolves it, at its event-time end.
      const resolved = await store.settle(Date.now() + 10_000, () => Promise.resolve(true));
      expect(resolved.map(({ alert, how }) => [alert.id, alert.status, how])).toStrictEqual([['alert-held-ttl', 'resolved', 'wall']]);
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });

  // Every new link renewed the links hash's TTL, and no link was ever removed: under steady
  // traffic Redis kept every entity ever linked, for good.
  it('forgets an entity link once its alert has expired, and keeps the links of a live one', async () => {
    const redis = new Redis(isolatedConfig({}).redis.url);
    const prefix = `vigil-it-links-${Date.now()}`;
    const keys = alertKeys(prefix);
    try {
      const short = createAlertStore({ redis, prefix, ttlMs: 1000, maxDetections: 10, resolvedReason: 'quiet', quietMs: 600_000, latenessMs: 500, stormMax: 0, stormWindowMs: 0 });
      const at = Date.now();
      const gone = { ...foldItem('det-link-gone', 'client.ip=203.0.113.91', at, at, 'alert-link-gone', 'takeover'), named: ['actor.userId=victim-gone'] };
      expect((await short.fold([gone], at))[0]).toMatchObject({ ok: true, kind: 'opened' });
      expect(await redis.hkeys(keys.links)).toStrictEqual(['actor.userId=victim-gone']);
      // Another incident's link renews the links hash, as steady traffic does.
      const store = createAlertStore({ redis, prefix, ttlMs: 600_000, maxDetections: 10, resolvedReason: 'quiet', quietMs: 600_000, latenessMs: 500, stormMax: 0, stormWindowMs: 0 });
      const live = { ...foldItem('det-link-live', 'client.ip=203.0.113.92', at, at, 'alert-link-live', 'takeover'), named: ['actor.userId=victim-live'] };
      expect((await store.fold([live], at))[0]).toMatchObject({ ok: true, kind: 'opened' });
      // The first alert's keys expire (a day after resolving, by default); the hash holds its link on.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(await redis.exists(keys.alert('client.ip=203.0.113.91'))).toBe(0);
      expect((await redis.hkeys(keys.links)).sort()).toStrictEqual(['actor.userId=victim-gone', 'actor.userId=victim-live']);
      expect(await store.pruneLinks(100)).toStrictEqual({ scanned: 2, deleted: 1, passEnded: true });
      expect(await redis.hkeys(keys.links)).toStrictEqual(['actor.userId=victim-live']);
      // The live link is still followed: the victim's next detection joins the incident.
      const next = { ...foldItem('det-link-next', 'actor.userId=victim-live', at + 1000, at + 1000, 'alert-link-next', 'takeover') };
      expect((await store.fold([next], at + 1000))[0]).toMatchObject({ ok: true, alert: { id: 'alert-link-live' } });
    } finally {
      const found = await redis.keys(`${prefix}:*`);
      if (found.length > 0) await redis.del(...found);
      await redis.quit();
    }
  });

  // A surge detection folds at its judgedAt (its bucket's end plus the rules' allowed lateness);
  // the quiet period ran from its event time, so with a quiet period shorter than that lateness
  // the fold clock had passed it already: the alert resolved in the sweep after it opened, and
  // each minute of the surge opened and resolved another.
  it('runs the quiet period of an alert from its latest detection as folded (a surge judged after its time), not its event time', async () => {
    const redis = new Redis(isolatedConfig({}).redis.url);
    const prefix = `vigil-it-judged-quiet-${Date.now()}`;
    try {
      const quietMs = 300_000;
      const store = createAlertStore({ redis, prefix, ttlMs: 600_000, maxDetections: 10, resolvedReason: 'quiet', quietMs, latenessMs: 0, stormMax: 0, stormWindowMs: 0 });
      const group = 'invocation.resource.api=accounts-v1,invocation.route=/v1/login';
      const minute = Math.floor(Date.now() / MINUTE) * MINUTE - 60 * MINUTE;
      const judged = 6 * MINUTE;
      const surge = (n: number): AlertFold => foldItem(`det-judged-${n}`, group, minute + n * MINUTE, minute + n * MINUTE + judged, 'alert-judged-quiet', 'error-surge-per-endpoint');
      // Two minutes of the surge, each folded and swept: one incident, open.
      expect((await store.fold([surge(0)], Date.now()))[0]).toMatchObject({ ok: true, kind: 'opened' });
      expect(await store.settle(Date.now())).toStrictEqual([]);
      expect((await store.fold([surge(1)], Date.now()))[0]).toMatchObject({ ok: true, kind: 'updated' });
      expect(await store.settle(Date.now())).toStrictEqual([]);
      // Another group's detection moves the fold clock a quiet period past the last minute as folded: resolved.
      await store.fold([foldItem('det-judged-tick', 'client.ip=203.0.113.91', minute + 13 * MINUTE, minute + 13 * MINUTE + 1, 'alert-judged-tick')], Date.now());
      const resolved = await store.settle(Date.now());
      expect(resolved.map(({ alert, how }) => [alert.id, alert.count, alert.status, how])).toStrictEqual([['alert-judged-quiet', 2, 'resolved', 'event']]);
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });

  it('a held detection it cannot read (not JSON, or another schema) is dropped and counted, and the ones behind it still fold', async () => {
    const running = await runAlerter({ VIGIL_ALERT_RESOLVE_AFTER_MS: '60000' });
    const { stack, alerter, redis } = running;
    try {
      const at = Date.now();
      const held = alertKeys(stack.config.redis.prefix).held;
      // Oldest first: release hands these out before any real detection.
      await redis.zadd(held, at - 2 * MINUTE, '{"id":"det-torn", "ruleId":', at - 2 * MINUTE + 1, JSON.stringify({ id: 'det-old-shape', severity: 'loud' }));
      await alerter.start();
      await produce(stack, [detection('readable', at)]);
      await waitFor('the readable detection folded', () => alerter.stats().folded >= 1 && alerter.stats().opened === 1, 30_000);
      expect(alerter.stats()).toMatchObject({ invalid: 2, opened: 1 });
      // Forgotten with the release they came in, once it is folded.
      await waitFor('the release forgotten', async () => (await redis.zcard(held)) === 0, 10_000);
    } finally {
      await running.stop();
    }
  });

  describe('on event time', () => {
    // Event-time settings: a 5-minute quiet period, 2 minutes of lateness. No wall-clock fallback
    // can fire while a test runs (it needs 2 minutes without a detection).
    const env = { VIGIL_ALERT_RESOLVE_AFTER_MS: '300000', VIGIL_ALERT_LATENESS_MS: '120000' };
    const start = Math.floor(Date.now() / MINUTE) * MINUTE - 80 * MINUTE;

    /**
     * An hour of detections, in event-time order: credential stuffing from three IPs at minute 10,
     * a flood on the login endpoint at minutes 10-12 and another at 50-52 (two incidents 40
     * minutes apart), a user's failures at minute 30, and a last detection at minute 70 that
     * moves the watermark past them all.
     */
    function anHour(): Detection[] {
      const hour: Detection[] = [];
      for (const [n, ip] of ['198.51.100.1', '198.51.100.2', '198.51.100.3'].entries()) {
        for (let k = 0; k < 3; k++) hour.push(perIp(`stuff-${n}-${k}`, start + 8 * MINUTE + n * 1000 + k * 20_000, ip, 'authn-failures-per-ip'));
      }
      for (let k = 0; k < 6; k++) hour.push(detection(`flood-a-${k}`, start + 10 * MINUTE + k * 25_000));
      hour.push(detection('surge-a', start + 11 * MINUTE + 5000, { ruleId: 'error-surge-per-endpoint', ruleName: 'Server error surge on an endpoint', severity: 'high' }));
      for (let k = 0; k < 4; k++) {
        hour.push(
          detection(`user-${k}`, start + 30 * MINUTE + k * 30_000, {
            ruleId: 'authn-failures-per-user',
            ruleName: 'Repeated authentication failures for one user',
            key: { 'actor.userId': 'u-17' },
            scope: { api: 'accounts-v1', route: '/v1/profile' },
          }),
        );
      }
      for (let k = 0; k < 6; k++) hour.push(detection(`flood-b-${k}`, start + 50 * MINUTE + k * 25_000));
      hour.push(detection('tick', start + 70 * MINUTE, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-1' }, scope: undefined }));
      return hour.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    }

    /** Waits until everything but the last detection (which the watermark has not passed) is folded. */
    async function foldedAll(running: Running, total: number): Promise<void> {
      const held = alertKeys(running.stack.config.redis.prefix).held;
      await waitFor('every detection but the last folded', async () => running.alerter.stats().folded >= total - 1 && (await running.redis.zcard(held)) === 1, 60_000);
    }

    it('gives the same alerts for an hour read as a backlog and the same hour paced, two incidents 40 minutes apart on one endpoint among them', async () => {
      const hour = anHour();
      // The backlog: produced before the alerter starts, read as fast as it goes.
      const backlog = await runAlerter(env);
      let backlogAlerts: Map<string, Record<string, unknown>>;
      try {
        await produce(backlog.stack, hour);
        await backlog.alerter.start();
        await foldedAll(backlog, hour.length);
        backlogAlerts = await settledDocuments(backlog.stack);
        expect(backlog.alerter.stats()).toMatchObject({ late: 0, invalid: 0 });
      } finally {
        await backlog.stop();
      }
      // Paced: the alerter runs first, and the hour arrives in eight parts, each folded before the next.
      const paced = await runAlerter(env);
      let pacedAlerts: Map<string, Record<string, unknown>>;
      try {
        await paced.alerter.start();
        const parts = 8;
        const size = Math.ceil(hour.length / parts);
        for (let part = 0; part < parts; part++) {
          await produce(paced.stack, hour.slice(part * size, (part + 1) * size));
          const sent = Math.min(hour.length, (part + 1) * size);
          await waitFor(`part ${part + 1} read`, () => paced.alerter.stats().detections >= sent, 30_000);
        }
        await foldedAll(paced, hour.length);
        pacedAlerts = await settledDocuments(paced.stack);
      } finally {
        await paced.stop();
      }

      const summary = (alerts: Map<string, Record<string, unknown>>): Record<string, unknown>[] =>
        [...alerts].map(([id, alert]): Record<string, unknown> => ({ id, ...alert })).sort((a, b) => String(a.start).localeCompare(String(b.start)) || String(a.id).localeCompare(String(b.id)));
      expect(summary(pacedAlerts)).toEqual(summary(backlogAlerts));

      const endpoint = summary(backlogAlerts).filter((alert) => alert.group === 'invocation.resource.api=accounts-v1,invocation.route=/v1/login');
      // Two floods 40 minutes apart on one endpoint: two incidents, each resolved a quiet period after its last detection.
      expect(endpoint).toHaveLength(2);
      expect(endpoint[0]).toMatchObject({
        count: 7,
        status: 'recovered',
        start: new Date(start + 10 * MINUTE).toISOString(),
        end: new Date(start + 10 * MINUTE + 125_000 + 5 * MINUTE).toISOString(),
      });
      expect(endpoint[1]).toMatchObject({ count: 6, status: 'recovered', start: new Date(start + 50 * MINUTE).toISOString() });
      // The per-IP failures at minute 8 came before the flood's window: alerts of their own. The
      // user's failures are on another endpoint: an alert of their own. The last detection waits
      // for the watermark (2 minutes of event time past it), so it has no alert yet.
      expect(summary(backlogAlerts).map((alert) => alert.group)).toEqual([
        'client.ip=198.51.100.1',
        'client.ip=198.51.100.2',
        'client.ip=198.51.100.3',
        'invocation.resource.api=accounts-v1,invocation.route=/v1/login',
        'actor.userId=u-17',
        'invocation.resource.api=accounts-v1,invocation.route=/v1/login',
      ]);
      // The watermark (minute 68) is past every quiet period: all resolved, in event time.
      expect(summary(backlogAlerts).filter((alert) => alert.status === 'active')).toEqual([]);
    });

    // The alerter or the pipeline fell behind by more than the paging window: what was paged before
    // must still be closed, and nothing of the old backlog announced now.
    it('hands the notifier only the resolves of incidents older than the paging window, each marked late', async () => {
      const hour = anHour();
      const running = await runAlerter({ ...env, VIGIL_ALERT_PAGE_WITHIN_MS: '60000' });
      try {
        await produce(running.stack, hour);
        await running.alerter.start();
        await foldedAll(running, hour.length);
        // The six incidents of the backlog test above, all resolved by the watermark.
        await waitFor('the six resolves handed over', () => running.changes.length >= 6, 30_000);
        const stats = running.alerter.stats();
        expect(running.changes.map((change) => `${change.kind}:${String(change.late)}`)).toEqual(Array.from({ length: 6 }, () => 'resolved:true'));
        expect(stats).toMatchObject({ resolved: 6, opened: 6 });
        // Their openings and escalations were recorded, not handed over.
        expect(stats.unpaged).toBeGreaterThanOrEqual(6);
      } finally {
        await running.stop();
      }
    });

    it("keeps an open incident open when a detection stamped an hour ahead arrives (a producer's clock running fast), and counts it", async () => {
      const running = await runAlerter(env);
      try {
        await running.alerter.start();
        const at = Date.now();
        // An incident on the login endpoint 2.5 minutes ago, and a detection a second ago that
        // moves the watermark (2 minutes of lateness) past it: opened, 2.5 minutes into its 5-minute quiet period.
        const incident = Array.from({ length: 4 }, (_, n) => detection(`now-${n}`, at - 150_000 + n * 1000));
        const tick = detection('tick-now', at - 1000, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-1' }, scope: undefined });
        await produce(running.stack, [...incident, tick]);
        await waitFor('the incident opened', () => running.changes.some((change) => change.kind === 'opened'), 30_000);
        // One detection an hour ahead of when it was made: taken a minute after it.
        const ahead = detection('ahead', at + 3_600_000, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-9' }, scope: undefined });
        await produce(running.stack, [ahead]);
        await waitFor('the detection ahead read', () => running.alerter.stats().detections >= 6, 30_000);
        await running.alerter.sweep();
        await running.alerter.sweep();
        // Taken as it was stamped, it moved the watermark an hour on: the incident resolved.
        expect(running.changes.map((change) => change.kind)).toEqual(['opened']);
        expect(running.alerter.stats()).toMatchObject({ aheadOfClock: 1, resolved: 0, late: 0 });
      } finally {
        await running.stop();
      }
    });

    it('gives the same alerts, none late, when one partition of the detections topic is read long after the other', async () => {
      // The hour alternates between the topic's two partitions, so each holds detections from
      // its start to its end: whichever is read late has detections an hour behind the other's.
      const hour = anHour();
      const partitionOf = (index: number): number => index % 2;
      const summary = (alerts: Map<string, Record<string, unknown>>): Record<string, unknown>[] =>
        [...alerts].map(([id, alert]) => ({ id, group: alert.group, count: alert.count, rules: alert.rules, status: alert.status, start: alert.start, end: alert.end })).sort((a, b) => a.id.localeCompare(b.id));

      // Interleaved: both partitions read together, as fast as they go.
      const together = await runAlerter(env);
      let togetherAlerts: Map<string, Record<string, unknown>>;
      try {
        await produceTo(together.stack, hour, partitionOf);
        await together.alerter.start();
        await foldedAll(together, hour.length);
        togetherAlerts = await settledDocuments(together.stack);
        expect(together.alerter.stats()).toMatchObject({ late: 0, invalid: 0 });
      } finally {
        await together.stop();
      }

      // One partition delayed: another member of the alerter's group holds it, paused, while the
      // alerter reads the other one to its end and sweeps for longer than the idle time (5 s);
      // then that member leaves, and the alerter gets the partition's whole backlog.
      const delayed = await runAlerter(env);
      const holder = delayed.stack.kafka.consumer({ groupId: delayed.stack.config.alerting.group, allowAutoTopicCreation: false });
      let delayedAlerts: Map<string, Record<string, unknown>>;
      try {
        await produceTo(delayed.stack, hour, partitionOf);
        const topic = delayed.stack.config.topics.detections;
        let holding = false;
        await holder.connect();
        await holder.subscribe({ topic, fromBeginning: true });
        await holder.run({
          autoCommit: false,
          eachBatch: (payload) => {
            holding = true;
            // Never handled, never committed: the partition waits for the next member.
            payload.pause();
            return Promise.resolve();
          },
        });
        await waitFor('the other member to hold the detections topic', () => holding, 60_000);
        await delayed.alerter.start();
        // The alerter reads the partition the group gave it: half the hour (one more or less).
        await waitFor('the alerter to read its partition', () => delayed.alerter.stats().detections >= Math.floor(hour.length / 2), 60_000);
        const sweptBefore = delayed.alerter.stats().detections;
        await new Promise((resolve) => setTimeout(resolve, 8000));
        await delayed.alerter.sweep();
        // Only the alerter's own partition was read meanwhile.
        expect(delayed.alerter.stats().detections).toBe(sweptBefore);
        expect(sweptBefore).toBeLessThan(hour.length);
        await holder.disconnect();
        await foldedAll(delayed, hour.length);
        delayedAlerts = await settledDocuments(delayed.stack);
        expect(delayed.alerter.stats()).toMatchObject({ detections: hour.length, late: 0, invalid: 0 });
      } finally {
        await holder.disconnect().catch(() => undefined);
        await delayed.stop();
      }

      expect(summary(delayedAlerts)).toEqual(summary(togetherAlerts));
      // The two incidents on the login endpoint, the three IPs' and the user's: six alerts.
      expect(summary(togetherAlerts).map((alert) => alert.group).sort()).toEqual(
        [
          'actor.userId=u-17',
          'client.ip=198.51.100.1',
          'client.ip=198.51.100.2',
          'client.ip=198.51.100.3',
          'invocation.resource.api=accounts-v1,invocation.route=/v1/login',
          'invocation.resource.api=accounts-v1,invocation.route=/v1/login',
        ].sort(),
      );
    });

    it('rolls a distributed login flood up into one alert: 800 per-IP detections absorbed, whatever order they arrive in', async () => {
      const running = await runAlerter(env);
      try {
        await running.alerter.start();
        const at = start + 20 * MINUTE;
        const ips = Array.from({ length: 800 }, (_, n) => `203.0.${Math.floor(n / 200)}.${n % 200}`);
        // The per-IP detections come first on the topic, the flood that explains them after.
        const detections = [
          ...ips.map((ip, n) => perIp(`ip-${n}`, at + 5000 + (n % 50) * 1000, ip)),
          ...ips.slice(0, 12).map((ip, n) => perIp(`fail-${n}`, at + 6000 + n * 1000, ip, 'authn-failures-per-ip')),
          detection('flood-1', at + 40_000, { ruleId: 'distributed-flood-per-endpoint', ruleName: 'Distributed flood on an endpoint', severity: 'high' }),
          detection('flood-2', at + 100_000, { ruleId: 'distributed-flood-per-endpoint', ruleName: 'Distributed flood on an endpoint', severity: 'high' }),
          detection('tick', at + 10 * MINUTE, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-1' }, scope: undefined }),
        ];
        await produce(running.stack, detections);
        await foldedAll(running, detections.length);
        const alerts = [...(await settledDocuments(running.stack)).values()].filter((alert) => alert.group !== 'actor.consumerId=c-1');
        expect(alerts.length).toBeLessThanOrEqual(2);
        expect(alerts).toHaveLength(1);
        expect(alerts[0]).toMatchObject({
          group: 'invocation.resource.api=accounts-v1,invocation.route=/v1/login',
          count: 2,
          evidence: {
            total: 812,
            entities: 800,
            rules: [
              { rule: 'credential-stuffing', count: 800 },
              { rule: 'authn-failures-per-ip', count: 12 },
            ],
            summary: 'Absorbed 812 detections (credential-stuffing 800, authn-failures-per-ip 12) from 800 IPs.',
          },
        });
        expect((alerts[0]?.evidence as { top: unknown[] }).top).toHaveLength(10);
        expect(running.alerter.stats()).toMatchObject({ absorbed: 812, opened: 1 });
        // On-call heard of one incident: opened (the tick's alert is the other opening).
        expect(running.changes.filter((change) => change.kind === 'opened' && change.alert.groupKey !== 'actor.consumerId=c-1')).toHaveLength(1);
      } finally {
        await running.stop();
      }
    });

    it('folds a rule past the storm guard into one campaign alert that lists its keys', async () => {
      const running = await runAlerter({ ...env, VIGIL_ALERT_STORM_MAX: '3', VIGIL_ALERT_STORM_WINDOW_MS: '600000' });
      try {
        await running.alerter.start();
        const at = start + 30 * MINUTE;
        // Credential stuffing from 20 IPs, on an endpoint no flood explains.
        const detections = [
          ...Array.from({ length: 20 }, (_, n) => ({ ...perIp(`s-${n}`, at + n * 2000, `192.0.2.${n}`), scope: { api: 'shop', route: '/login' } })),
          detection('tick', at + 10 * MINUTE, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-1' }, scope: undefined }),
        ];
        await produce(running.stack, detections);
        await foldedAll(running, detections.length);
        const alerts = [...(await settledDocuments(running.stack)).values()].filter((alert) => alert.group !== 'actor.consumerId=c-1');
        // Three alerts of their own, then one campaign for the other 17.
        expect(alerts).toHaveLength(4);
        const campaign = alerts.find((alert) => alert.campaign === true);
        expect(campaign).toMatchObject({ group: 'campaign:rule=credential-stuffing', count: 17, evidence: { total: 17, entities: 17 } });
        expect((campaign?.evidence as { summary: string }).summary).toBe('Folded 17 detections (credential-stuffing 17) from 17 IPs.');
        expect(running.alerter.stats()).toMatchObject({ campaign: 17 });
      } finally {
        await running.stop();
      }
    });

    // An attacker who opens a few alerts of a rule on purpose (five of its own accounts taken
    // over, say) would otherwise fold the next, real one into the rule's campaign without a page.
    it('spares critical detections from the storm guard: each opens its own alert (VIGIL_ALERT_STORM_SPARES)', async () => {
      const takeovers = (at: number): Detection[] =>
        Array.from({ length: 5 }, (_, n) =>
          detection(`takeover-${n}`, at + n * 2000, {
            ruleId: 'credential-stuffing-then-success',
            ruleName: 'Credential stuffing followed by a successful sign-in',
            ruleType: 'sequence',
            severity: 'critical',
            tags: ['T1110', 'authentication'],
            key: { 'client.ip': `198.51.100.${n + 1}` },
            scope: undefined,
          }),
        );
      for (const [spares, expected] of [
        [undefined, { alerts: 5, campaigns: 0 }],
        ['none', { alerts: 4, campaigns: 1 }],
      ] as const) {
        const running = await runAlerter({ ...env, VIGIL_ALERT_STORM_MAX: '3', VIGIL_ALERT_STORM_WINDOW_MS: '600000', ...(spares ? { VIGIL_ALERT_STORM_SPARES: spares } : {}) });
        try {
          await running.alerter.start();
          const at = start + 40 * MINUTE;
          const detections = [...takeovers(at), detection('tick', at + 30 * MINUTE, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-1' }, scope: undefined })];
          await produce(running.stack, detections);
          await foldedAll(running, detections.length);
          const alerts = [...(await settledDocuments(running.stack)).values()].filter((alert) => alert.group !== 'actor.consumerId=c-1');
          expect({ spares, alerts: alerts.length, campaigns: alerts.filter((alert) => alert.campaign === true).length }).toEqual({ spares, ...expected });
        } finally {
          await running.stop();
        }
      }
    });

    it('links a brute force then takeover into one incident: the takeover on the attacker\'s IP names its victim', async () => {
      const running = await runAlerter(env);
      try {
        await running.alerter.start();
        const at = start + 20 * MINUTE;
        const victim = { 'actor.userId': 'victim-7' };
        const attacker = { 'client.ip': '198.51.100.77' };
        const onUser = (id: string, time: number, ruleId: string, severity: Detection['severity']): Detection =>
          detection(id, time, { ruleId, ruleName: ruleId, ruleType: 'threshold', severity, tags: ['authentication'], key: victim, scope: undefined });
        const detections = [
          onUser('failures', at, 'authn-failures-per-user', 'medium'),
          // The sequence completed by the victim's successful sign-in from the attacker's IP.
          detection('takeover', at + 3 * MINUTE, {
            ruleId: 'account-takeover-sequence',
            ruleName: 'Authentication failures followed by a success from the same IP',
            ruleType: 'sequence',
            severity: 'high',
            tags: ['T1110', 'authentication'],
            key: attacker,
            entities: victim,
          }),
          onUser('write', at + 4 * MINUTE, 'new-device-then-sensitive-write', 'high'),
          // The attacker's IP again, alone: the incident it was linked into.
          detection('more', at + 5 * MINUTE, { ruleId: 'authn-failures-per-ip', ruleName: 'Repeated authentication failures from one IP', ruleType: 'threshold', key: attacker }),
          detection('tick', at + 30 * MINUTE, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-1' }, scope: undefined }),
        ];
        await produce(running.stack, detections);
        await foldedAll(running, detections.length);
        const alerts = [...(await settledDocuments(running.stack)).values()].filter((alert) => alert.group !== 'actor.consumerId=c-1');
        expect(alerts).toHaveLength(1);
        expect(alerts[0]).toMatchObject({
          group: 'actor.userId=victim-7',
          count: 4,
          rules: ['authn-failures-per-user', 'account-takeover-sequence', 'new-device-then-sensitive-write', 'authn-failures-per-ip'],
          entities: ['actor.userId=victim-7', 'client.ip=198.51.100.77'],
          status: 'recovered',
        });
        // One incident's changes: opened, escalated as rules joined, resolved (grouped per destination by the notifier).
        expect(new Set(running.changes.map((change) => change.alert.id)).size).toBe(1);
      } finally {
        await running.stop();
      }
    });

    it('groups what the triage hook returns: it may drop detections and add its own', async () => {
      const seen: number[] = [];
      const running = await runAlerter(env, {
        // A trivial triage: low severity pages nobody on its own; each batch's highest-risk entity gets a synthesized detection.
        triage: (detections, eventTimeNowMs) => {
          seen.push(eventTimeNowMs);
          const kept = detections.filter((item) => item.severity !== 'low');
          const risk = detections
            .filter((item) => item.severity === 'low')
            .map((item) => detection(`risk-${item.id}`, Date.parse(item.time), { ruleId: 'risk', ruleName: 'Risk threshold', key: { 'actor.userId': 'u-9' }, scope: undefined }));
          return Promise.resolve([...kept, ...risk]);
        },
      });
      try {
        await running.alerter.start();
        const at = start + 40 * MINUTE;
        const detections = [
          detection('low-1', at, { ruleId: 'new-device-for-user', ruleName: 'New device', severity: 'low', key: { 'actor.userId': 'u-9' }, scope: undefined }),
          detection('tick', at + 10 * MINUTE, { ruleId: 'request-spike-per-consumer', ruleName: 'Request spike', key: { 'actor.consumerId': 'c-1' }, scope: undefined }),
        ];
        await produce(running.stack, detections);
        await waitFor('the triaged detections folded', () => running.alerter.stats().folded >= 1 && running.alerter.stats().triageDropped >= 1, 30_000);
        await waitFor('the risk alert', async () => [...(await alertDocuments(running.stack)).values()].some((alert) => (alert.rules as string[]).includes('risk')));
        const alerts = [...(await alertDocuments(running.stack)).values()];
        expect(alerts.some((alert) => (alert.rules as string[]).includes('new-device-for-user'))).toBe(false);
        expect(running.alerter.stats()).toMatchObject({ triageDropped: 1, triageAdded: 1 });
        // What the hook added is in the detections index (only it: the rules' are the pipeline's to index).
        const index = detectionIndexNames(running.stack.config.indices.prefix).pattern;
        await running.stack.elasticsearch.indices.refresh({ index, ignore_unavailable: true, allow_no_indices: true });
        const indexed = await running.stack.elasticsearch.search<{ rule: { id: string } }>({ index, ignore_unavailable: true, allow_no_indices: true, size: 10 });
        expect(indexed.hits.hits.map((hit) => [hit._id, hit._source?.rule.id])).toEqual([['det-it-risk-det-it-low-1', 'risk']]);
        // Its event-time now is the newest detection time seen, not the wall clock.
        expect(Math.max(...seen)).toBeLessThan(Date.now() - 20 * MINUTE);
      } finally {
        await running.stop();
      }
    });
  });
});
