/**
 * What an orchestrator and Prometheus see of a running Vigil: `/healthz` (the process answers),
 * `/readyz` (Kafka, Elasticsearch and Redis answer, and every consumer is running) and
 * `/metrics` (Prometheus text, prom-client). Metrics are fed from the instrumentation bus and
 * from the parts' `stats()`, read at scrape time; nothing here wraps or patches a part.
 * See docs/operations.md.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Client } from '@elastic/elasticsearch';
import type { RedisClient } from '../platform';
import type { Admin, Kafka } from 'kafkajs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AlerterStats, DestinationStats, DetectionStats, NotifierStats, OutboxStats } from '../detectors';
import type { AdaptStats, GeoDatabase, IngestStats, IntakeStats } from '../ingest';
import { closeServer, errorMessage, listenOn, probes, type ConsumerStatus, type Instrumentation, type Logger } from '../platform';

/** What the endpoints read, supplied by the composition root. */
export interface ObservabilitySources {
  instrumentation: Instrumentation;
  kafka: Kafka;
  /** Absent in a process that does not use it (`vigil adapt`): /readyz then skips it. */
  elasticsearch?: Client;
  /** Absent in a process that does not use it (`vigil adapt`): /readyz then skips it. */
  redis?: RedisClient;
  logger: Logger;
  consumers(): readonly ConsumerStatus[];
  ingest?: () => IngestStats;
  engine?: () => DetectionStats;
  alerter?: () => AlerterStats;
  notifier?: () => NotifierStats;
  destinations?: () => Record<string, DestinationStats>;
  /** The HTTP intake's counts, when it runs. */
  intake?: () => IntakeStats;
  /** `vigil adapt`'s counts. */
  adapt?: () => AdaptStats;
  /** The notification outbox's counters (`notifier.outboxStats()`). */
  outbox?: () => OutboxStats;
  /** The geo database enrichment uses, once opened (undefined before, or when a lookup was supplied instead). */
  geo?: () => GeoDatabase | undefined;
  /**
   * Whether every part of the process has started (and not begun to stop): /readyz says 503
   * before, since a consumer not yet created is not one that runs. @defaultValue always
   */
  started?: () => boolean;
  /** The stores this process uses: /readyz checks only those (an intake alone needs Kafka only). @defaultValue both */
  uses?: { elasticsearch: boolean; redis: boolean };
}

/** Where the endpoints listen: `port: 0` asks the system for a free port (tests). */
export interface HttpListen {
  host: string;
  port: number;
}

/** One dependency's answer to a readiness probe. */
export interface Check {
  ok: boolean;
  /** Why not, when not. */
  error?: string;
  /** Not asked: this process does not use it. */
  skipped?: string;
}

/** The body of `/readyz`. */
export interface Readiness {
  ready: boolean;
  checks: { started: Check; kafka: Check; elasticsearch: Check; redis: Check; consumers: Check };
}

/** The registry, the probes and the HTTP server. */
export interface Observability {
  readonly registry: Registry;
  /** Checks every dependency now, each bounded by a timeout. */
  readiness(): Promise<Readiness>;
  /** Listens; resolves with the address (the real port when 0 was asked). */
  listen(at: HttpListen): Promise<HttpListen>;
  /** Closes the server (if listening) and unsubscribes from the bus. */
  close(): Promise<void>;
}

/** How long one readiness check may take: a probe must answer even when a store hangs. */
const CHECK_TIMEOUT_MS = 2000;
/** Latency buckets in seconds, from a fast Redis round trip to a slow bulk request. */
const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function withTimeout<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function check(what: string, probe: () => Promise<unknown>): Promise<Check> {
  try {
    await withTimeout(what, probe());
    return { ok: true };
  } catch (error) {
    return { ok: false, error: `${what}: ${errorMessage(error)}` };
  }
}

/** Builds the registry and subscribes it to the bus; {@link Observability.listen} serves it. */
export function createObservability(sources: ObservabilitySources): Observability {
  const { instrumentation } = sources;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vigil_process_' });
  const registers = [registry];

  /** A counter whose value is a part's own running total, read at scrape time. */
  function totalOf<L extends string>(name: string, help: string, labelNames: readonly L[], read: () => [Partial<Record<L, string>>, number][]): void {
    new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  }

  // From the bus.
  const consumed = new Counter({ name: 'vigil_messages_consumed_total', help: 'Kafka messages handled, their offsets committed or (fetching ahead) the commit queued, by component and topic (events in, for the ingest component).', labelNames: ['component', 'topic'], registers });
  const pauses = new Counter({ name: 'vigil_partition_pauses_total', help: 'Partitions paused because a store pushed back, by component and topic.', labelNames: ['component', 'topic'], registers });
  const stageSeconds = new Histogram({ name: 'vigil_pipeline_stage_duration_seconds', help: 'Time of each ingest stage per chunk; stage="index" is the bulk latency.', labelNames: ['stage'], buckets: BUCKETS, registers });
  const roundTrips = new Counter({ name: 'vigil_state_round_trips_total', help: 'Redis round trips of rule state, claims, correlation and alert state, by operation and whether Redis answered.', labelNames: ['operation', 'reached'], registers });
  const roundTripSeconds = new Histogram({ name: 'vigil_state_round_trip_duration_seconds', help: 'Duration of the state round trips.', labelNames: ['operation'], buckets: BUCKETS, registers });
  const lag = new Gauge({ name: 'vigil_consumer_lag', help: 'Messages of a partition behind the last batch fetched from it, for the partitions the consumer holds.', labelNames: ['component', 'topic', 'partition'], registers });
  // The lag series each component set, so that a partition it no longer holds (a rebalance gave
  // it to another instance) or a consumer stopped stops being reported: a stale series would be
  // summed with the new holder's by a `sum by (topic)` alert.
  const lagSeries = new Map<string, Map<string, { topic: string; partition: string }>>();
  const dropLag = (component: string, keep: (topic: string, partition: string) => boolean): void => {
    const series = lagSeries.get(component);
    if (series === undefined) return;
    for (const [key, { topic, partition }] of series) {
      if (keep(topic, partition)) continue;
      lag.remove({ component, topic, partition });
      series.delete(key);
    }
  };
  const unsubscribe = [
    instrumentation.on('runner.chunk', ({ component, topic, messages }) => consumed.inc({ component, topic }, messages)),
    instrumentation.on('runner.pause', ({ component, topic }) => pauses.inc({ component, topic })),
    instrumentation.on('pipeline.stage', ({ stage, durationMs }) => stageSeconds.observe({ stage }, durationMs / 1000)),
    instrumentation.on('state.round_trip', ({ operation, durationMs, reached }) => {
      roundTrips.inc({ operation, reached: String(reached) });
      roundTripSeconds.observe({ operation }, durationMs / 1000);
    }),
    instrumentation.on('consumer.lag', ({ component, topic, partition, lag: behind }) => {
      const labels = { component, topic, partition: String(partition) };
      lag.set(labels, behind);
      let series = lagSeries.get(component);
      if (series === undefined) lagSeries.set(component, (series = new Map<string, { topic: string; partition: string }>()));
      series.set(`${topic}\u0000${labels.partition}`, { topic, partition: labels.partition });
    }),
    instrumentation.on('consumer.assigned', ({ component, groupId, assignment }) => {
      dropLag(component, (topic, partition) => (assignment[topic] ?? []).includes(Number(partition)));
      held.set(component, { groupId, assignment });
    }),
    instrumentation.on('consumer.state', ({ component, state }) => {
      if (state === 'stopped' || state === 'failed') {
        dropLag(component, () => false);
        held.delete(component);
      }
    }),
  ];

  // The partitions each consumer holds, and its group: what the committed lag is asked for.
  const held = new Map<string, { groupId: string; assignment: Readonly<Record<string, readonly number[]>> }>();
  // Behind the committed offset, from Kafka at scrape time. vigil_consumer_lag is kafkajs's, behind
  // the last batch fetched: a partition paused through an outage is not fetched, and that lag
  // stayed where it was while the backlog grew.
  new Gauge({
    name: 'vigil_consumer_committed_lag',
    help: 'Messages of a partition after the group\'s committed offset (its end offset minus the committed one), for the partitions each consumer holds, asked of Kafka at scrape time.',
    labelNames: ['component', 'group', 'topic', 'partition'],
    registers,
    async collect() {
      this.reset();
      if (held.size === 0) return;
      try {
        const client = await withTimeout('kafka', adminClient());
        await Promise.all(
          [...held].map(async ([component, { groupId, assignment }]) => {
            const topics = Object.keys(assignment).filter((topic) => (assignment[topic] ?? []).length > 0);
            if (topics.length === 0) return;
            const [committed, ends] = await withTimeout(
              'kafka',
              Promise.all([client.fetchOffsets({ groupId, topics }), Promise.all(topics.map(async (topic) => ({ topic, offsets: await client.fetchTopicOffsets(topic) })))]),
            );
            for (const { topic, offsets } of ends) {
              const at = committed.find((entry) => entry.topic === topic)?.partitions ?? [];
              for (const partition of assignment[topic] ?? []) {
                const end = offsets.find((entry) => entry.partition === partition);
                if (end === undefined) continue;
                const mark = Number(at.find((entry) => entry.partition === partition)?.offset ?? -1);
                // Nothing committed yet: all that the partition still holds is behind.
                const from = mark >= 0 ? mark : Number(end.low);
                this.set({ component, group: groupId, topic, partition: String(partition) }, Math.max(0, Number(end.high) - from));
              }
            }
          }),
        );
      } catch (error) {
        // Kafka away: no series this scrape (vigil_consumer_up and /readyz say why).
        sources.logger.debug({ err: error }, 'could not read the committed lag');
      }
    },
  });

  // From the parts' stats(), at scrape time.
  // Up or not, without the state among its labels: a consumer cycling between starting and
  // restarting stays one series, so an alert's `for:` on `== 0` keeps counting.
  new Gauge({
    name: 'vigil_consumer_up',
    help: 'Whether each supervised consumer is running (1) or not (0: created, starting, restarting, failed, stopped).',
    labelNames: ['component', 'group'],
    registers,
    collect() {
      this.reset();
      for (const status of sources.consumers()) this.set({ component: status.component, group: status.groupId }, status.state === 'running' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'vigil_consumer_state',
    help: 'The state each supervised consumer is in: 1 on the series of its current state (created, starting, running, restarting, failed, stopped).',
    labelNames: ['component', 'group', 'state'],
    registers,
    collect() {
      this.reset();
      for (const status of sources.consumers()) this.set({ component: status.component, group: status.groupId, state: status.state }, 1);
    },
  });
  totalOf('vigil_consumer_restarts_total', 'Restarts of a crashed consumer by the supervisor.', ['component'], () =>
    sources.consumers().map((status) => [{ component: status.component }, status.restarts]),
  );
  const { ingest, engine, alerter, notifier, destinations } = sources;
  if (ingest) {
    totalOf('vigil_events_indexed_total', 'Events Elasticsearch created a document for.', [], () => [[{}, ingest().indexed]]);
    totalOf('vigil_events_duplicate_total', 'Events already indexed (a redelivery).', [], () => [[{}, ingest().duplicates]]);
    totalOf('vigil_events_dead_lettered_total', 'Messages sent to the dead-letter topic, by reason code.', ['reason'], () =>
      Object.entries(ingest().deadLetteredByReason).map(([reason, value]) => [{ reason }, value ?? 0]),
    );
    totalOf('vigil_detections_total', 'Detections indexed and published, by rule.', ['rule'], () => Object.entries(ingest().detectionsByRule).map(([rule, value]) => [{ rule }, value]));
  }
  if (engine) {
    totalOf('vigil_rule_evaluations_total', 'Rule evaluations (one per event per rule whose filter matched), by outcome.', ['outcome'], () => {
      const stats = engine();
      return [
        [{ outcome: 'evaluated' }, stats.evaluations],
        [{ outcome: 'degraded' }, stats.degraded],
        [{ outcome: 'error' }, stats.errors],
      ];
    });
    // Beside vigil_detections_total{rule}: a rule that costs many evaluations and never fires shows here.
    totalOf('vigil_rule_evaluations_by_rule_total', 'Rule evaluations by rule and outcome (evaluated, degraded, error); summed over rules, vigil_rule_evaluations_total.', ['rule', 'outcome'], () =>
      Object.entries(engine().byRule).flatMap(([rule, stats]): [Record<'rule' | 'outcome', string>, number][] => [
        [{ rule, outcome: 'evaluated' }, stats.evaluations],
        [{ rule, outcome: 'degraded' }, stats.degraded],
        [{ rule, outcome: 'error' }, stats.errors],
      ]),
    );
    totalOf('vigil_events_late_total', 'Events behind the clock by more than the allowed lateness.', [], () => [[{}, engine().late]]);
    totalOf('vigil_rule_late_events_total', "Events within the allowed lateness that a rule's state could not count any more (a surge bucket already folded into its baseline), by rule.", ['rule'], () =>
      Object.entries(engine().byRule).map(([rule, stats]): [Record<'rule', string>, number] => [{ rule }, stats.late]),
    );
  }
  if (alerter) {
    totalOf('vigil_alerts_total', 'Alert changes: opened, escalated, resolved.', ['change'], () => {
      const stats = alerter();
      return [
        [{ change: 'opened' }, stats.opened],
        [{ change: 'escalated' }, stats.escalated],
        [{ change: 'resolved' }, stats.resolved],
      ];
    });
    totalOf('vigil_alert_changes_silenced_total', 'Alert openings and escalations not notified because a silence matched their alert (vigil silences); resolves are not counted.', [], () => [[{}, alerter().silenced]]);
    totalOf('vigil_alert_changes_resent_total', 'Alert changes found unsent in Redis (after a crash or a failed outbox write) and written to the notification outbox again.', [], () => [[{}, alerter().resent]]);
    totalOf(
      'vigil_alert_wall_clock_held_total',
      'Sweeps in which the wall-clock fallback held alerts open because the ingest pipeline or the alerter had unread messages older than the allowed lateness (a stall or a backlog).',
      [],
      () => [[{}, alerter().heldBehind]],
    );
    totalOf(
      'vigil_alert_detections_ahead_total',
      'Detections stamped more than a minute after they were made (an event from a producer whose clock runs fast): taken a minute after it, so they cannot move the alerter\'s clock ahead.',
      [],
      () => [[{}, alerter().aheadOfClock]],
    );
    totalOf('vigil_alert_links_pruned_total', 'Entity links (an entity to the incident it joined) forgotten because their alert had expired or been replaced.', [], () => [[{}, alerter().linksPruned]]);
  }
  const { outbox } = sources;
  if (outbox) {
    totalOf('vigil_notification_outbox_accepted_total', 'Deliveries (one per alert change and destination) written to the notification outbox.', [], () => [[{}, outbox().accepted]]);
    totalOf('vigil_notification_outbox_skipped_total', 'Outbox records not sent because their delivery id was delivered before (a copy in the outbox).', [], () => [[{}, outbox().skipped]]);
    totalOf('vigil_notifications_grouped_total', 'Alert changes folded into another notification of their incident by notification grouping (sent with it, or cancelled by its resolve).', [], () => [[{}, outbox().grouped]]);
  }
  if (notifier && destinations) {
    totalOf('vigil_notifications_total', 'Notification deliveries by destination and outcome (sent, retried, failed).', ['destination', 'outcome'], () =>
      Object.entries(destinations()).flatMap(([destination, stats]): [Record<'destination' | 'outcome', string>, number][] => [
        [{ destination, outcome: 'sent' }, stats.sent],
        [{ destination, outcome: 'retried' }, stats.retried],
        [{ destination, outcome: 'failed' }, stats.failed],
      ]),
    );
    new Gauge({
      name: 'vigil_notifications_queued',
      help: 'Notifications waiting or in flight (the notifier queue depth).',
      registers,
      collect() {
        this.set(notifier().queued);
      },
    });
  }

  const { intake } = sources;
  if (intake) {
    totalOf('vigil_intake_requests_total', 'Requests to the HTTP intake, by answer (accepted, unauthorized, too_large, rate_limited, invalid, busy, unavailable, refused).', ['outcome'], () => {
      const stats = intake();
      return [
        [{ outcome: 'accepted' }, stats.accepted],
        [{ outcome: 'unauthorized' }, stats.unauthorized],
        [{ outcome: 'too_large' }, stats.tooLarge],
        [{ outcome: 'rate_limited' }, stats.rateLimited],
        [{ outcome: 'invalid' }, stats.invalid],
        [{ outcome: 'busy' }, stats.busy],
        [{ outcome: 'unavailable' }, stats.unavailable],
        [{ outcome: 'refused' }, stats.refused],
      ];
    });
    totalOf('vigil_intake_records_total', 'Records the HTTP intake produced to its raw topic (Kafka acknowledged).', [], () => [[{}, intake().records]]);
  }
  const { adapt } = sources;
  if (adapt) {
    totalOf('vigil_adapt_messages_total', 'Raw gateway log messages vigil adapt read (each may hold many records).', [], () => [[{}, adapt().messages]]);
    totalOf('vigil_adapt_events_total', 'Contract events vigil adapt produced to the family topics, by family.', ['family'], () =>
      Object.entries(adapt().eventsByFamily).map(([family, count]) => [{ family }, count ?? 0]),
    );
    totalOf('vigil_adapt_records_refused_total', 'Gateway log records vigil adapt refused, by reason (adapter_unparseable, adapter_unmapped, schema_invalid): their raw messages are dead-lettered.', ['reason'], () =>
      Object.entries(adapt().rejectedByReason).map(([reason, count]) => [{ reason }, count ?? 0]),
    );
    totalOf('vigil_adapt_records_skipped_total', 'Gateway log records vigil adapt skipped on purpose, by reason (method_unsupported, not_http).', ['reason'], () =>
      Object.entries(adapt().skippedByReason).map(([reason, count]) => [{ reason }, count]),
    );
    totalOf('vigil_adapt_derived_policies_dropped_total', 'Derived policy events (a status no gateway plugin proved) vigil adapt did not build, by kind, because VIGIL_ADAPT_DERIVED_POLICIES leaves the kind out.', ['kind'], () =>
      Object.entries(adapt().derivedDroppedByKind).map(([kind, count]) => [{ kind }, count ?? 0]),
    );
  }
  const { geo } = sources;
  if (geo) {
    new Gauge({
      name: 'vigil_geo_database_build_timestamp_seconds',
      help: 'When the data of the geo database in force was built (Unix seconds: MaxMind build_epoch, or the date of geoip-lite data), by database and where it was read from.',
      labelNames: ['database', 'origin'],
      registers,
      collect() {
        this.reset();
        const info = geo()?.info();
        if (info?.build) this.set({ database: info.name, origin: info.origin }, info.build.getTime() / 1000);
      },
    });
    totalOf('vigil_geo_database_reloads_total', 'Reads of a changed geo database file: loaded, or refused (the database in force stays).', ['outcome'], () => {
      const stats = geo()?.stats();
      return stats
        ? [
            [{ outcome: 'loaded' }, stats.reloaded],
            [{ outcome: 'refused' }, stats.refused],
          ]
        : [];
    });
  }

  let admin: Admin | undefined;
  /** The admin client being connected: one at a time, shared by the probes that wait for it. */
  let connectingAdmin: Promise<Admin> | undefined;
  let closed = false;
  let server: Server | undefined;

  /**
   * The probes' admin client. Its connect retries for longer than a probe waits (about 25 s
   * against 2 s): each probe of an outage started another, and all of them connected when Kafka
   * came back, every one but the last left open.
   */
  function adminClient(): Promise<Admin> {
    if (admin) return Promise.resolve(admin);
    connectingAdmin ??= (async () => {
      const connecting = sources.kafka.admin();
      try {
        await connecting.connect();
      } catch (error) {
        // Each failed probe made an admin client that nothing closed: sockets piled up
        // through a Kafka outage and stayed open after it.
        await connecting.disconnect().catch(() => undefined);
        throw error;
      }
      if (closed) {
        // Connected after close(): nothing would disconnect it.
        await connecting.disconnect().catch(() => undefined);
        throw new Error('the observability server is closed');
      }
      admin = connecting;
      return connecting;
    })().finally(() => {
      connectingAdmin = undefined;
    });
    return connectingAdmin;
  }

  async function readiness(): Promise<Readiness> {
    const uses = sources.uses ?? { elasticsearch: true, redis: true };
    const { elasticsearch: client, redis: redisClient } = sources;
    const unused: Check = { ok: true, skipped: 'not used by this process' };
    const [kafka, elasticsearch, redis] = await Promise.all([
      check('kafka', async () => probes.kafka(await adminClient())),
      uses.elasticsearch && client ? check('elasticsearch', () => probes.elasticsearch(client, 1000)) : Promise.resolve(unused),
      uses.redis && redisClient ? check('redis', () => probes.redis(redisClient)) : Promise.resolve(unused),
    ]);
    const down = sources.consumers().filter((status) => status.state !== 'running');
    const consumers: Check = down.length === 0 ? { ok: true } : { ok: false, error: down.map((status) => `${status.component} consumer is ${status.state}${status.lastError ? `: ${status.lastError}` : ''}`).join('; ') };
    // Before every part runs (or once stopping began), no consumer may exist yet to be down.
    const started: Check = (sources.started?.() ?? true) ? { ok: true } : { ok: false, error: 'starting (or stopping): not every part of the process runs' };
    const checks = { started, kafka, elasticsearch, redis, consumers };
    return { ready: Object.values(checks).every((one) => one.ok), checks };
  }

  async function respond(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const result = await readiness();
      response.writeHead(result.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(result)}\n`);
    } else if (path === '/metrics') {
      const text = await registry.metrics();
      response.writeHead(200, { 'content-type': registry.contentType }).end(text);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
    }
  }

  return {
    registry,
    readiness,
    async listen(at) {
      const listening = createServer((request, response) => {
        respond(request, response).catch((error: unknown) => {
          sources.logger.warn({ err: error, url: request.url }, 'health or metrics request failed');
          if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
          response.end('internal error\n');
        });
      });
      const { port } = await listenOn(listening, at, { host: 'VIGIL_HTTP_HOST', port: 'VIGIL_HTTP_PORT' });
      server = listening;
      sources.logger.info({ host: at.host, port }, 'serving /healthz, /readyz and /metrics');
      return { host: at.host, port };
    },
    async close() {
      closed = true;
      for (const off of unsubscribe) off();
      const closing = server;
      server = undefined;
      // A scraper's keep-alive connection must not hold the shutdown.
      if (closing) await closeServer(closing, 'all');
      await admin?.disconnect().catch(() => undefined);
      admin = undefined;
    },
  };
}
