import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createObservability, type ObservabilitySources } from '../../app/observability';
import type { GeoDatabase } from '../../ingest';
import { Instrumentation, createLogger } from '../../platform';

/**
 * /metrics against the table of docs/operations.md: with every source present, each documented
 * series is exposed and each exposed series is documented, so neither a series dropped from the
 * code nor one added without its documentation goes unnoticed. The stores are never called here
 * (only /readyz would), hence the empty stand-ins.
 */

/** The metric names of the operations page's metrics table (the `vigil_process_*` row is prom-client's). */
function documentedMetrics(): string[] {
  const page = readFileSync(join(__dirname, '../../docs/operations.md'), 'utf8');
  const table = page.slice(page.indexOf('## Metrics'), page.indexOf('A Prometheus scrape configuration'));
  return [...table.matchAll(/^\| `(vigil_[a-z_]+)` \|/gm)].map((match) => match[1] ?? '');
}

/** The metric families of a Prometheus text exposition, by `# TYPE` line. */
function exposedMetrics(text: string): string[] {
  return [...text.matchAll(/^# TYPE (vigil_[a-z_]+) /gm)].map((match) => match[1] ?? '').filter((name) => !name.startsWith('vigil_process_'));
}

/** The value of one sample line, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function everySource(instrumentation: Instrumentation): ObservabilitySources {
  const geo: GeoDatabase = {
    lookup: () => undefined,
    info: () => ({ name: 'GeoLite2-City', build: new Date('2026-11-01T00:00:00Z'), origin: '/data/GeoLite2-City.mmdb' }),
    stats: () => ({ reloaded: 2, refused: 1 }),
    close: () => undefined,
  };
  return {
    instrumentation,
    kafka: {} as Kafka,
    elasticsearch: {} as Client,
    redis: {} as Redis,
    logger: createLogger({ level: 'silent' }),
    consumers: () => [{ component: 'ingest', groupId: 'vigil-ingest', state: 'running', restarts: 1 }],
    ingest: () => ({
      consumed: 10,
      consumedByFamily: { policy: 10 },
      indexed: 7,
      indexedByFamily: { policy: 7 },
      duplicates: 1,
      deadLettered: 2,
      deadLetteredByReason: { not_json: 2 },
      pauses: 0,
      detections: 3,
      detectionsByRule: { 'brute-force': 3 },
    }),
    engine: () => ({
      events: 7,
      evaluations: 12,
      detections: 3,
      late: 1,
      degraded: 4,
      errors: 1,
      roundTrips: 2,
      byRule: {
        'brute-force': { evaluations: 9, degraded: 4, errors: 1, late: 2 },
        'admin-path': { evaluations: 3, degraded: 0, errors: 0, late: 0 },
      },
    }),
    alerter: () => ({
      detections: 3,
      invalid: 0,
      triageDropped: 0,
      triageAdded: 0,
      late: 0,
      folded: 3,
      opened: 2,
      escalated: 1,
      updated: 0,
      duplicates: 0,
      absorbed: 0,
      campaign: 0,
      resolved: 1,
      unpaged: 0,
      silenced: 4,
      resent: 5,
      heldBehind: 7,
      aheadOfClock: 8,
      linksPruned: 9,
    }),
    notifier: () => ({ queued: 1, sent: 4, retried: 2, failed: 1, deadLettered: 1 }),
    destinations: () => ({ 'on-call': { sent: 4, retried: 2, failed: 1 } }),
    outbox: () => ({ accepted: 6, skipped: 2, grouped: 3 }),
    intake: () => ({ accepted: 3, records: 5, unauthorized: 1, tooLarge: 0, rateLimited: 0, invalid: 1, busy: 2, unavailable: 0, refused: 0 }),
    adapt: () => ({ messages: 4, events: 9, eventsByFamily: { policy: 6, invocation: 3 }, rejectedByReason: { adapter_unmapped: 1 }, skippedByReason: { not_http: 2 }, deadLettered: 1, derivedDroppedByKind: { authn: 5 } }),
    geo: () => geo,
  };
}

describe('/metrics', () => {
  it('exposes every series docs/operations.md lists, and lists every series it exposes', async () => {
    const instrumentation = new Instrumentation();
    const observability = createObservability(everySource(instrumentation));
    try {
      // The bus-fed series appear once something happened.
      instrumentation.emit('runner.chunk', { component: 'ingest', topic: 'vigil.events.policy', partition: 0, messages: 10, durationMs: 5 });
      instrumentation.emit('runner.pause', { component: 'ingest', topic: 'vigil.events.policy', partition: 0, attempt: 1, delayMs: 500, error: new Error('es away') });
      instrumentation.emit('pipeline.stage', { stage: 'index', topic: 'vigil.events.policy', partition: 0, items: 7, startedAt: 0, durationMs: 12, eventIds: [] });
      instrumentation.emit('state.round_trip', { operation: 'rule state', commands: 2, durationMs: 1, reached: true });
      instrumentation.emit('consumer.lag', { component: 'ingest', topic: 'vigil.events.policy', partition: 0, lag: 4 });
      const text = await observability.registry.metrics();

      const documented = documentedMetrics();
      expect(documented.length).toBeGreaterThan(20);
      const exposed = exposedMetrics(text);
      expect(documented.filter((name) => !exposed.includes(name))).toStrictEqual([]);
      expect(exposed.filter((name) => !documented.includes(name))).toStrictEqual([]);
      expect(text).toContain('vigil_adapt_derived_policies_dropped_total{kind="authn"} 5');
    } finally {
      await observability.close();
    }
  });

  it('counts the intake\'s refusals for its body budget apart from Kafka\'s', async () => {
    const observability = createObservability(everySource(new Instrumentation()));
    try {
      const text = await observability.registry.metrics();
      expect(sample(text, 'vigil_intake_requests_total{outcome="busy"}')).toBe(2);
      expect(sample(text, 'vigil_intake_requests_total{outcome="unavailable"}')).toBe(0);
    } finally {
      await observability.close();
    }
  });

  // vigil_consumer_lag is behind the last batch fetched: through an outage that pauses a partition
  // nothing is fetched, and it stayed put while the backlog grew. The alert the docs advised never fired.
  it('reports the lag behind the committed offset, asked of Kafka at scrape time, for the partitions each consumer holds', async () => {
    const instrumentation = new Instrumentation();
    let end = 120;
    const kafka = {
      admin: () => ({
        connect: () => Promise.resolve(),
        disconnect: () => Promise.resolve(),
        fetchOffsets: ({ groupId }: { groupId: string }) =>
          Promise.resolve(groupId === 'g' ? [{ topic: 'p', partitions: [{ partition: 0, offset: '100' }, { partition: 1, offset: '-1' }] }] : []),
        fetchTopicOffsets: () => Promise.resolve([{ partition: 0, offset: String(end), high: String(end), low: '0' }, { partition: 1, offset: '40', high: '40', low: '10' }, { partition: 2, offset: '9', high: '9', low: '0' }]),
      }),
    } as unknown as Kafka;
    const observability = createObservability({ ...everySource(instrumentation), kafka });
    const committed = async (): Promise<string[]> => (await observability.registry.metrics()).split('\n').filter((line) => line.startsWith('vigil_consumer_committed_lag{'));
    try {
      expect(await committed()).toStrictEqual([]);
      instrumentation.emit('consumer.assigned', { component: 'ingest', groupId: 'g', assignment: { p: [0, 1] } });
      // Partition 1 has no commit yet: all it holds (40 - 10) is behind. Partition 2 is another member's.
      expect(await committed()).toStrictEqual(['vigil_consumer_committed_lag{component="ingest",group="g",topic="p",partition="0"} 20', 'vigil_consumer_committed_lag{component="ingest",group="g",topic="p",partition="1"} 30']);
      // Paused through an outage, nothing is fetched or committed: the lag grows with what arrives.
      end = 500;
      expect((await committed())[0]).toBe('vigil_consumer_committed_lag{component="ingest",group="g",topic="p",partition="0"} 400');
      instrumentation.emit('consumer.state', { component: 'ingest', groupId: 'g', state: 'stopped' });
      expect(await committed()).toStrictEqual([]);
    } finally {
      await observability.close();
    }
  });

  it('reports the lag of the partitions a consumer holds: a rebalance drops the ones it gave away, a stop or failure all of its own', async () => {
    const instrumentation = new Instrumentation();
    const observability = createObservability(everySource(instrumentation));
    const lagged = async (): Promise<string[]> => (await observability.registry.metrics()).split('\n').filter((line) => line.startsWith('vigil_consumer_lag{'));
    try {
      for (const partition of [0, 1, 2]) instrumentation.emit('consumer.lag', { component: 'ingest', topic: 'p', partition, lag: 10 + partition });
      instrumentation.emit('consumer.lag', { component: 'ingest', topic: 'i', partition: 1, lag: 5 });
      instrumentation.emit('consumer.lag', { component: 'alerting', topic: 'd', partition: 0, lag: 7 });
      expect(await lagged()).toHaveLength(5);
      // A second instance joined: this one keeps partition 1 of each topic.
      instrumentation.emit('consumer.assigned', { component: 'ingest', groupId: 'g', assignment: { p: [1], i: [1] } });
      expect(await lagged()).toStrictEqual(['vigil_consumer_lag{component="ingest",topic="p",partition="1"} 11', 'vigil_consumer_lag{component="ingest",topic="i",partition="1"} 5', 'vigil_consumer_lag{component="alerting",topic="d",partition="0"} 7']);
      // Given back by a later rebalance, a partition is reported again from its next batch.
      instrumentation.emit('consumer.lag', { component: 'ingest', topic: 'p', partition: 2, lag: 3 });
      instrumentation.emit('consumer.state', { component: 'ingest', groupId: 'g', state: 'stopped' });
      expect(await lagged()).toStrictEqual(['vigil_consumer_lag{component="alerting",topic="d",partition="0"} 7']);
      instrumentation.emit('consumer.state', { component: 'alerting', groupId: 'a', state: 'restarting' });
      expect(await lagged()).toHaveLength(1);
      instrumentation.emit('consumer.state', { component: 'alerting', groupId: 'a', state: 'failed' });
      expect(await lagged()).toStrictEqual([]);
    } finally {
      await observability.close();
    }
  });

  it('counts rule evaluations per rule, beside the detections per rule', async () => {
    const observability = createObservability(everySource(new Instrumentation()));
    try {
      const text = await observability.registry.metrics();
      expect(sample(text, 'vigil_rule_evaluations_by_rule_total{rule="brute-force",outcome="evaluated"}')).toBe(9);
      expect(sample(text, 'vigil_rule_evaluations_by_rule_total{rule="brute-force",outcome="degraded"}')).toBe(4);
      expect(sample(text, 'vigil_rule_evaluations_by_rule_total{rule="brute-force",outcome="error"}')).toBe(1);
      expect(sample(text, 'vigil_rule_evaluations_by_rule_total{rule="admin-path",outcome="evaluated"}')).toBe(3);
      expect(sample(text, 'vigil_rule_late_events_total{rule="brute-force"}')).toBe(2);
      expect(sample(text, 'vigil_rule_late_events_total{rule="admin-path"}')).toBe(0);
      expect(sample(text, 'vigil_rule_evaluations_total{outcome="evaluated"}')).toBe(12);
      expect(sample(text, 'vigil_detections_total{rule="brute-force"}')).toBe(3);
    } finally {
      await observability.close();
    }
  });

  it("counts the notification outbox's accepted and skipped records and the alerter's resent changes", async () => {
    const observability = createObservability(everySource(new Instrumentation()));
    try {
      const text = await observability.registry.metrics();
      expect(sample(text, 'vigil_notification_outbox_accepted_total')).toBe(6);
      expect(sample(text, 'vigil_notification_outbox_skipped_total')).toBe(2);
      expect(sample(text, 'vigil_notifications_grouped_total')).toBe(3);
      expect(sample(text, 'vigil_alert_changes_resent_total')).toBe(5);
      expect(sample(text, 'vigil_alert_changes_silenced_total')).toBe(4);
      expect(sample(text, 'vigil_alert_wall_clock_held_total')).toBe(7);
      expect(sample(text, 'vigil_alert_detections_ahead_total')).toBe(8);
      expect(sample(text, 'vigil_alert_links_pruned_total')).toBe(9);
    } finally {
      await observability.close();
    }
  });
});

describe('/readyz', () => {
  // Each probe during a Kafka outage made an admin client that nothing closed: 4-6 sockets
  // stayed open to Kafka after it came back, and after close().
  it('closes the admin client of a probe that could not connect, and keeps one that did', async () => {
    let up = false;
    const made: { connected: boolean; disconnects: number }[] = [];
    const kafka = {
      admin: () => {
        const admin = { connected: false, disconnects: 0 };
        made.push(admin);
        return {
          connect: () => {
            if (!up) return Promise.reject(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'));
            admin.connected = true;
            return Promise.resolve();
          },
          disconnect: () => Promise.resolve(void admin.disconnects++),
          describeCluster: () => Promise.resolve({ brokers: [{ nodeId: 1, host: '127.0.0.1', port: 9092 }], controller: 1, clusterId: 'c' }),
        };
      },
    } as unknown as Kafka;
    const observability = createObservability({ ...everySource(new Instrumentation()), kafka, uses: { elasticsearch: false, redis: false } });
    try {
      for (let probe = 0; probe < 3; probe++) expect((await observability.readiness()).checks.kafka.ok).toBe(false);
      expect(made.map((admin) => admin.disconnects)).toStrictEqual([1, 1, 1]);
      up = true;
      expect((await observability.readiness()).checks.kafka).toStrictEqual({ ok: true });
      expect((await observability.readiness()).checks.kafka).toStrictEqual({ ok: true });
      // The one that connected is kept (one client for every later probe), closed with the server.
      expect(made).toHaveLength(4);
    } finally {
      await observability.close();
    }
    expect(made[3]?.disconnects).toBe(1);
  });

  // kafkajs's connect retries for about 25 s, a probe waits 2 s: each probe of an outage started
  // another connect, and when Kafka came back all of them connected, every one but the last left open.
  it('shares one admin connect between the probes that wait for it, and closes one that connects after close()', async () => {
    const made: { disconnects: number; connect: () => void }[] = [];
    const kafka = {
      admin: () => {
        let finish = (): void => undefined;
        const admin = { disconnects: 0, connect: () => finish() };
        made.push(admin);
        return {
          connect: () => new Promise<void>((resolve) => (finish = resolve)),
          disconnect: () => Promise.resolve(void admin.disconnects++),
          describeCluster: () => Promise.resolve({ brokers: [{ nodeId: 1, host: '127.0.0.1', port: 9092 }], controller: 1, clusterId: 'c' }),
        };
      },
    } as unknown as Kafka;
    const observability = createObservability({ ...everySource(new Instrumentation()), kafka, uses: { elasticsearch: false, redis: false } });
    const probes = await Promise.all([observability.readiness(), observability.readiness(), observability.readiness()]);
    expect(probes.map((probe) => probe.checks.kafka.ok)).toStrictEqual([false, false, false]);
    expect(made).toHaveLength(1);
    await observability.close();
    // Kafka answers after the server closed: the client it connected is closed, not kept.
    made[0]?.connect();
    await new Promise((resolve) => setImmediate(resolve));
    expect(made[0]?.disconnects).toBe(1);
  });
});
