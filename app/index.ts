/**
 * The composition root: the one place that builds Vigil's runtime from its configuration.
 * `vigil run`, the demo, the benchmarks and the integration tests all start Vigil through
 * {@link createVigil}, so they run the same wiring (correlation included) and none has a copy.
 */
import type { Client } from '@elastic/elasticsearch';
import type { RedisClient } from '../platform';
import type { Kafka } from 'kafkajs';
import {
  DEFAULT_REQUEST_MEMORY_MS,
  DEFAULT_RULES_PATH,
  Correlator,
  DetectionEngine,
  createAlerter,
  createDeliveredLog,
  createGroupStore,
  createSilenceStore,
  createNotifier,
  unconfiguredWaiting,
  createOutboxConsumer,
  createRiskScorer,
  loadRuleSet,
  parseDestinations,
  parseInhibition,
  riskSettingsOf,
  RISK_TAGS,
  watchRules,
  type Alerter,
  type Destination,
  type GroupStore,
  type Notifier,
  type RuleSet,
} from '../detectors';
import { createHttpIntake, createIngestPipeline, openGeoDatabase, type GeoDatabase, type GeoLookup, type HttpIntake, type IngestPipeline, type IngestStats } from '../ingest';
import {
  ConfigError,
  ValidationError,
  Instrumentation,
  createConsumerSupervisor,
  createElasticsearch,
  createLifecycle,
  ensureTopics,
  topicPlanOf,
  createLogger,
  secretsOf,
  verifyConnections,
  createKafka,
  createProducer,
  createRedis,
  nearest,
  type Config,
  type ConsumerFailedError,
  type ConsumerStatus,
  type Logger,
  type SupervisionPolicy,
} from '../platform';
import { createObservability, type HttpListen, type Readiness } from './observability';
import { createPipelineStatsReporter, readPipelineCounters, type PipelineStatsReporter } from './pipeline-stats';
import type { Alert, AlertChange, Detection } from '../schemas';
import { alertDiscoverUrl } from '../dashboards';

/**
 * What a Vigil process runs: the ingest pipeline (with the rules), the alerter, the HTTP intake
 * for gateways that post their logs (docs/gateways/kong-http-log.md), or any mix.
 */
export const ROLES = ['ingest', 'alerting', 'intake'] as const;

/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/**
 * The roles of `vigil run --roles ingest,alerting`: a comma-separated list of {@link ROLES}, each
 * at most once. A process that runs only some of them leaves the others to another process (the
 * alerter in a process of its own, docs/deployment.md#one-process-per-role).
 * @returns the roles in {@link ROLES}' order, or the problem, naming what is wrong
 */
export function parseRoles(text: string): { roles: Role[] } | { problem: string } {
  const named = text.split(',').map((name) => name.trim());
  if (named.every((name) => name === '')) return { problem: `no role given; name one or more of ${ROLES.join(', ')}` };
  const unknown = named.filter((name) => !(ROLES as readonly string[]).includes(name));
  if (unknown.length > 0) return { problem: `unknown role${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => JSON.stringify(name)).join(', ')}; the roles are ${ROLES.join(', ')}` };
  const twice = named.filter((name, index) => named.indexOf(name) !== index);
  if (twice.length > 0) return { problem: `role ${JSON.stringify(twice[0])} named twice` };
  return { roles: ROLES.filter((role) => named.includes(role)) };
}

/** Parts a caller may supply instead of the ones built from configuration; a supplied part is never closed by Vigil. */
export interface VigilOverrides {
  /** @defaultValue ingest and alerting, and intake when VIGIL_INTAKE_TOKEN is set */
  roles?: readonly Role[];
  logger?: Logger;
  kafka?: Kafka;
  elasticsearch?: Client;
  redis?: RedisClient;
  /** @defaultValue the database VIGIL_GEOIP_DATABASE names (else geoip-lite's bundled one), opened at start */
  geoLookup?: GeoLookup;
  /** Shared by every component; subscribe to measure without patching. @defaultValue a new one */
  instrumentation?: Instrumentation;
  /** The pipeline's clock (event receipt time). @defaultValue () => new Date() */
  clock?: () => Date;
  /** Called with each chunk's detections once indexed and published. */
  onDetections?: (detections: readonly Detection[]) => void;
  /** Called with every alert change the notifier is handed. */
  onAlertChange?: (change: AlertChange) => void;
  /** How often the alerter looks for quiet alerts. @defaultValue resolve time / 4, at most 5 s */
  sweepEveryMs?: number;
  /** The notifier's HTTP client. @defaultValue the global fetch */
  fetchImpl?: typeof fetch;
  /**
   * Where `/healthz`, `/readyz` and `/metrics` listen; port 0 here picks a free port (tests), and
   * `false` serves nothing. @defaultValue VIGIL_HTTP_HOST and VIGIL_HTTP_PORT (whose 0 serves nothing)
   */
  http?: HttpListen | false;
  /** Where the intake listens; port 0 picks a free port (tests). @defaultValue VIGIL_INTAKE_HOST and VIGIL_INTAKE_PORT */
  intakeHttp?: HttpListen;
  /**
   * How long stop() lets notifications in hand finish; the rest stay in the outbox for the next
   * instance. @defaultValue 10 s
   */
  notifierDrainMs?: number;
  /** How crashed consumers are restarted. @defaultValue VIGIL_CONSUMER_MAX_RESTARTS in 10 minutes, backoff 1 s doubling to 30 s */
  supervision?: Partial<SupervisionPolicy>;
}

/** The restart window of a consumer: crashes older than this are forgiven. */
const RESTART_WINDOW_MS = 10 * 60_000;

/** A built Vigil: its parts, and the lifecycle of all of them. */
export interface Vigil {
  readonly config: Config;
  readonly logger: Logger;
  readonly kafka: Kafka;
  readonly elasticsearch: Client;
  /**
   * Present when a part of the process keeps state in Redis: the alerting role, or the ingest role
   * with detection on. An intake, or an ingest that only indexes, makes no client: it would retry
   * a Redis it never uses for as long as it runs.
   */
  readonly redis?: RedisClient;
  readonly instrumentation: Instrumentation;
  /** Present when the ingest role runs. */
  readonly pipeline?: IngestPipeline;
  /** Present when the ingest role runs with detection on. */
  readonly engine?: DetectionEngine;
  readonly correlator?: Correlator;
  readonly ruleSet?: RuleSet;
  /** Present when the alerting role runs. */
  readonly alerter?: Alerter;
  readonly notifier?: Notifier;
  /** Present when the intake role runs. */
  readonly intake?: HttpIntake;
  /** Writes the pipeline metrics to Elasticsearch: present when the ingest or alerting role runs and VIGIL_PIPELINE_STATS_INTERVAL_MS is not 0. */
  readonly pipelineStats?: PipelineStatsReporter;
  /** Starts every component in order; if one fails, stops those already started and rethrows. */
  start(): Promise<void>;
  /** Stops in reverse order, flushing what each holds, and closes the clients Vigil opened. Idempotent. */
  stop(): Promise<void>;
  stats(): { ingest?: IngestStats; alerter?: ReturnType<Alerter['stats']> };
  /**
   * Resolves, once, when Vigil can no longer do its work by itself (a consumer crashed more often
   * than its restart budget): the caller stops Vigil and exits non-zero so a supervisor restarts
   * the process. Never rejects; never resolves while Vigil is healthy.
   */
  readonly failure: Promise<ConsumerFailedError>;
  /** Every Kafka consumer Vigil made, with its state (running, restarting, failed, ...). */
  consumers(): ConsumerStatus[];
  /** What `/readyz` answers: Kafka, Elasticsearch and Redis reachable, every consumer running. */
  readiness(): Promise<Readiness>;
  /** The Prometheus registry `/metrics` serves. */
  readonly metrics: ReturnType<typeof createObservability>['registry'];
  /** Where the health and metrics endpoints listen, once started (undefined when they are off). */
  httpAddress(): HttpListen | undefined;
  /** Where the intake listens, once started (undefined when it does not run). */
  intakeAddress(): HttpListen | undefined;
}

/** A stack of things to undo, run last-in first-out; every step runs even when one fails. */
class Closers {
  private readonly steps: { name: string; close: () => Promise<unknown> }[] = [];

  constructor(private readonly logger: Logger) {}

  push(name: string, close: () => Promise<unknown>): void {
    this.steps.push({ name, close });
  }

  async closeAll(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step.close();
      } catch (error) {
        this.logger.error({ err: error, part: step.name }, 'stopping a part failed; stopping the others');
      }
    }
  }
}

/** The tags an alert can carry: its rules' (and risk's); undefined when the rules are not known. */
function alertTagsOf(ruleSet: RuleSet | undefined): ReadonlySet<string> | undefined {
  if (ruleSet === undefined) return undefined;
  return new Set([...ruleSet.rules.flatMap((compiled) => compiled.rule.tags), ...RISK_TAGS]);
}

/** The rule set of an alerter-only process, for checks only: undefined when it does not load (the ingest process reports why). */
function loadRulesQuietly(paths: readonly string[], options: { lists: readonly string[] }, enabled: boolean): RuleSet | undefined {
  if (!enabled) return undefined;
  try {
    return loadRuleSet(paths, { lists: [...options.lists] });
  } catch {
    return undefined;
  }
}

/**
 * Says at start, at warn, which surge rules have a bucket at least as long as the alerts' quiet
 * period (`VIGIL_ALERT_RESOLVE_AFTER_MS`). A surge rule's detections of one key come a bucket
 * apart, and a detection joins an alert only within the quiet period of its last one: each bucket
 * of a lasting surge would open, and notify, an alert of its own. Says nothing when the rules are
 * not known (undefined) or none is affected.
 */
export function reportQuietPeriod(ruleSet: RuleSet | undefined, quietPeriodMs: number, logger: Logger): void {
  const affected = (ruleSet?.rules ?? []).flatMap(({ rule }) => (rule.type === 'surge' && rule.bucket >= quietPeriodMs ? [{ rule: rule.id, bucketMs: rule.bucket }] : []));
  if (affected.length === 0) return;
  logger.warn(
    { quietPeriodMs, rules: affected },
    `VIGIL_ALERT_RESOLVE_AFTER_MS (${quietPeriodMs} ms) is not longer than the bucket of ${affected.length === 1 ? 'surge rule' : 'surge rules'} ${affected.map(({ rule }) => rule).join(', ')}: each bucket of a lasting surge would open and notify an alert of its own; keep the quiet period longer than the longest bucket`,
  );
}

/** A value made by the first get(), and only then; made() says whether anything asked for it. */
function onDemand<T>(make: () => T): { get(): T; made(): T | undefined } {
  let made: { value: T } | undefined;
  return {
    get: () => (made ??= { value: make() }).value,
    made: () => made?.value,
  };
}

/** How long stop() waits for notifications in flight before giving up on them. */
const NOTIFIER_DRAIN_MS = 10_000;

/**
 * Says at start what would otherwise go unnoticed until an incident: no destination at all, a
 * destination routing on tags no rule carries (a misspelling pages nobody), and incidents waiting
 * at destinations no longer configured (renamed or removed), which nobody sends. A store that
 * can't be read is no reason to fail the start: the grouping timer reports it.
 * @param knownTags the tags alerts can carry (the rules' and risk's); undefined: not checked
 */
export async function reportDestinations(store: GroupStore, destinations: readonly Destination[], logger: Logger, knownTags?: ReadonlySet<string>): Promise<void> {
  if (destinations.length === 0) {
    logger.warn('alerting runs with no destination (VIGIL_ALERT_DESTINATIONS is unset or []): alerts are indexed, nobody is notified');
  }
  for (const destination of knownTags === undefined ? [] : destinations) {
    const unknown = (destination.tags ?? []).filter((tag) => !knownTags?.has(tag));
    if (unknown.length === 0) continue;
    const guesses = Object.fromEntries(unknown.flatMap((tag) => {
      const guess = nearest(tag, knownTags ?? [], 2, { ignoreCase: true });
      return guess === undefined ? [] : [[tag, guess]];
    }));
    logger.warn(
      { destination: destination.name, tags: unknown, ...(Object.keys(guesses).length > 0 ? { didYouMean: guesses } : {}) },
      'a destination routes on tags no loaded rule carries (tags are case-sensitive): no alert will reach it for them; check VIGIL_ALERT_DESTINATIONS',
    );
  }
  // Allowed (a receiver on the same host, a test), but a Slack URL or a routing key sent in clear is worth a word.
  const clear = destinations.filter((destination) => {
    const url = new URL(destination.url);
    return url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  });
  if (clear.length > 0) {
    logger.warn({ destinations: clear.map((destination) => destination.name) }, 'destinations reached over plain http: their notifications (and any token in the URL) travel unencrypted; use https');
  }
  try {
    const waiting = await unconfiguredWaiting(store, destinations);
    if (Object.keys(waiting).length === 0) return;
    logger.error(
      { waiting },
      'notifications wait for destinations that are no longer configured (VIGIL_ALERT_DESTINATIONS) and will not be sent: configure the name again (its url may be the new one) to send them, or leave them to expire',
    );
  } catch (error) {
    logger.debug({ err: error }, 'could not look for notifications waiting at destinations no longer configured');
  }
}

/**
 * Builds Vigil from its configuration. Nothing connects here but Redis (where a part keeps state
 * there); the geo database is opened and everything else connects in {@link Vigil.start}. A bad rule set or a bad
 * `VIGIL_ALERT_DESTINATIONS` throws here, before anything has started.
 */
/** VIGIL_ALERT_DESTINATIONS, parsed; its problems as a ConfigError that names the variable. */
function destinationsOf(json: string): Destination[] {
  try {
    return parseDestinations(json);
  } catch (error) {
    if (error instanceof ValidationError) throw new ConfigError(error.issues.map((issue) => `VIGIL_ALERT_DESTINATIONS: ${issue}`));
    throw error;
  }
}

export function createVigil(config: Config, overrides: VigilOverrides = {}): Vigil {
  const roles = new Set<Role>(overrides.roles ?? ['ingest', 'alerting', ...(config.intake.token !== undefined ? (['intake'] as const) : [])]);
  const intakeToken = config.intake.token;
  if (roles.has('intake') && intakeToken === undefined) throw new ConfigError(['the intake needs VIGIL_INTAKE_TOKEN, the token the gateway sends']);
  const logger = overrides.logger ?? createLogger({ level: config.logLevel, secrets: secretsOf(config) });
  // Roles named explicitly leave the intake out unless named: a gateway pointed at the ingest's
  // process would get connection refused, with nothing said here. (An alerting process that shares
  // the environment is no place for it.)
  if (overrides.roles !== undefined && intakeToken !== undefined && roles.has('ingest') && !roles.has('intake')) {
    logger.warn({ roles: [...roles] }, 'VIGIL_INTAKE_TOKEN is set but the intake is not among the roles: this process serves no intake (add it: --roles ingest,intake)');
  }
  const instrumentation = overrides.instrumentation ?? new Instrumentation();
  const kafka = overrides.kafka ?? createKafka(config, logger, `${config.kafka.clientId}-${[...roles].join('-')}`);
  const elasticsearch = overrides.elasticsearch ?? createElasticsearch(config);
  // Resources are closed in reverse order of creation, on stop() and on a failed start().
  const owned = new Closers(logger);
  const started = new Closers(logger);
  /**
   * What takes work in, stopped before the rest (the intake, then the ingest pipeline): the ingest
   * stopped last, after the notifier's drain of up to 10 s, fetching and starting chunks all the
   * while, and had only what was left of the deadline for its own.
   */
  const upstream = new Closers(logger);
  // Each consumer group's client supervises its consumers: a crash is restarted with backoff or
  // becomes vigil.failure, never a consumer silently gone (see docs/operations.md).
  const supervisor = createConsumerSupervisor({
    policy: {
      maxRestarts: config.consumerMaxRestarts,
      windowMs: RESTART_WINDOW_MS,
      backoff: { initialDelayMs: 1000, maxDelayMs: 30_000 },
      ...overrides.supervision,
    },
    logger,
    instrumentation,
  });

  // Parsed before any connection, so a bad value stops the start with nothing to undo. A
  // configuration error like any other: it names the variable, and `vigil run` exits with 2.
  const destinations = roles.has('alerting') ? destinationsOf(config.alerting.destinations) : [];
  if (roles.has('alerting')) parseInhibition(config.alerting.inhibition);
  if (roles.has('alerting') && config.detection.enabled && config.detection.alignEventTime && config.alerting.latenessMs < config.detection.eventTimeSkewMs) {
    // Aligned partitions run up to the skew apart in event time, and so do their detections.
    logger.warn(
      { alertLatenessMs: config.alerting.latenessMs, eventTimeSkewMs: config.detection.eventTimeSkewMs },
      'VIGIL_ALERT_LATENESS_MS is below VIGIL_EVENT_TIME_SKEW_MS: detections from a partition the skew lets run ahead can reach the alerter behind its watermark and fold out of event-time order; raise the first or lower the second (docs/alerting.md)',
    );
  }
  const rulePaths = config.detection.rulesPaths ?? [DEFAULT_RULES_PATH];
  const listOptions = { lists: config.detection.listsPaths ?? [] };
  const ruleSet = roles.has('ingest') && config.detection.enabled ? loadRuleSet(rulePaths, listOptions) : undefined;

  if (!overrides.elasticsearch) owned.push('elasticsearch', () => elasticsearch.close());
  // Made when the first part that keeps state in Redis is built, and only then: a client made
  // regardless reconnected for as long as an intake or an indexing-only ingest ran, logging
  // "redis connection error" every 30 s about a store /readyz called "not used by this process".
  const redisWhenUsed = onDemand((): RedisClient => {
    const client = overrides.redis ?? createRedis(config, logger.child({ component: 'redis' }));
    if (!overrides.redis) {
      // quit() needs a working connection; a client that never got one (a refused password, Redis
      // away) is disconnected instead, which also stops its reconnect timer.
      owned.push('redis', () => (client.status === 'ready' ? client.quit() : Promise.resolve(client.disconnect())));
    }
    return client;
  });

  let engine: DetectionEngine | undefined;
  let correlator: Correlator | undefined;
  if (ruleSet) {
    const log = logger.child({ component: 'detectors' });
    const redis = redisWhenUsed.get();
    engine = new DetectionEngine({
      redis,
      rules: ruleSet,
      keyPrefix: config.redis.prefix,
      allowedLatenessMs: config.detection.allowedLatenessMs,
      stateGraceMs: config.detection.stateGraceMs,
      clock: 'wall',
      logger: log,
      events: instrumentation,
    });
    correlator = new Correlator({
      redis,
      prefix: config.redis.prefix,
      waitMs: config.detection.correlationWaitMs,
      // A request's decisions wait for its invocation across a stop, as rule state does.
      requestMemoryMs: DEFAULT_REQUEST_MEMORY_MS + config.detection.stateGraceMs,
      events: instrumentation,
    });
  }

  let pipeline: IngestPipeline | undefined;
  let geoLookup: GeoLookup | undefined = overrides.geoLookup;
  let geoDatabase: GeoDatabase | undefined;
  if (roles.has('ingest')) {
    pipeline = createIngestPipeline({
      config,
      kafka: supervisor.kafkaFor('ingest', kafka),
      elasticsearch,
      logger,
      // The database is opened at start, beside the pipeline's own set-up; the pipeline joins
      // its group only once it is open, so no chunk is handled before it is.
      geoLookup: (ip) => geoLookup?.(ip),
      prepare: async () => {
        if (geoLookup) return;
        // geoip-lite reads its tables synchronously (about 0.7 s on a quiet machine, seconds on a
        // loaded one): one turn of the event loop first puts the other set-up requests on the
        // wire, so their round trips run while it reads.
        await new Promise((resolve) => setImmediate(resolve));
        const opened = await openGeoDatabase(config.geo.database, { logger: logger.child({ component: 'geo' }) });
        started.push('geo database watcher', () => Promise.resolve(opened.close()));
        geoDatabase = opened;
        geoLookup = opened.lookup;
      },
      instrumentation,
      ...(overrides.clock ? { clock: overrides.clock } : {}),
      ...(correlator ? { correlator } : {}),
      ...(engine ? { detection: engine, watermarkStore: redisWhenUsed.get() } : {}),
      ...(overrides.onDetections ? { onDetections: overrides.onDetections } : {}),
    });
  }

  let alerter: Alerter | undefined;
  let notifier: Notifier | undefined;
  let outboxConsumer: ReturnType<typeof createOutboxConsumer> | undefined;
  const notificationProducer = roles.has('alerting') ? createProducer(kafka) : undefined;
  // Built only where alerting runs: it defines the grouping scripts on the Redis client.
  let groupStore: GroupStore | undefined;
  if (notificationProducer) {
    const redis = redisWhenUsed.get();
    groupStore = createGroupStore(redis, config.redis.prefix);
    // Accepted notifications go to the outbox topic before delivery; the outbox consumer group
    // delivers them, so a crash loses none (docs/alerting.md#the-notification-outbox).
    const kibanaUrl = config.alerting.kibanaUrl;
    const built = createNotifier({
      destinations,
      producer: notificationProducer,
      deadLetterTopic: config.alerting.notificationDeadLetterTopic,
      logger,
      retryForMs: config.alerting.notifierRetryForMs,
      outbox: { topic: config.alerting.notificationTopic, producer: notificationProducer, delivered: createDeliveredLog(redis, config.redis.prefix) },
      // Grouping per destination, its state in Redis: it survives restarts and is shared by instances.
      grouping: { store: groupStore, silences: createSilenceStore(redis, config.redis.prefix) },
      ...(overrides.fetchImpl ? { fetchImpl: overrides.fetchImpl } : {}),
      ...(kibanaUrl === undefined ? {} : { alertLink: (alert: Alert) => alertDiscoverUrl(kibanaUrl, config.indices.prefix, alert) }),
    });
    notifier = built;
    // Its grouping timer runs from now: stopped at the end whether or not the start got to it.
    owned.push('notifier', () => built.stop(0));
    outboxConsumer = createOutboxConsumer({
      kafka: supervisor.kafkaFor('notifier', kafka),
      groupId: config.alerting.notifierGroup,
      topic: config.alerting.notificationTopic,
      notifier: built,
      logger,
      drainMs: overrides.notifierDrainMs ?? NOTIFIER_DRAIN_MS,
      instrumentation,
    });
    // Risk-based alerting (docs/risk.md): low signals add to their entities' risk instead of
    // paging; an entity crossing the threshold pages once, listing what added up.
    const risk = createRiskScorer({ redis, prefix: config.redis.prefix, settings: riskSettingsOf(config), logger });
    alerter = createAlerter({
      config,
      kafka: supervisor.kafkaFor('alerter', kafka),
      triage: (detections, eventTimeNowMs) => risk.triage(detections, eventTimeNowMs),
      redis,
      elasticsearch,
      logger,
      instrumentation,
      sink: {
        accept(changes) {
          for (const change of changes) overrides.onAlertChange?.(change);
          return built.accept(changes);
        },
      },
      ...(overrides.sweepEveryMs ? { sweepEveryMs: overrides.sweepEveryMs } : {}),
    });
  }

  const intake = roles.has('intake') && intakeToken !== undefined
    ? createHttpIntake({
        kafka,
        topic: config.intake.topic,
        topicSettings: topicPlanOf(config, config.intake.topic),
        token: intakeToken,
        maxBodyBytes: config.intake.maxBodyBytes,
        maxBodiesBytes: config.intake.maxBodiesBytes,
        maxRecordBytes: config.limits.maxMessageBytes,
        maxJsonDepth: config.limits.maxJsonDepth,
        requestsPerSecond: config.intake.requestsPerSecond,
        burst: config.intake.burst,
        logger,
      })
    : undefined;
  let intakeAddress: HttpListen | undefined;

  // The stores this process uses, for the start's checks and /readyz: Elasticsearch for indexing
  // and alerts; Redis for the rules, correlation and alert state (an ingest without detection
  // keeps no state there), neither for an intake alone. Redis is used when a part made the client.
  const usedRedis = redisWhenUsed.made();
  const stores = { elasticsearch: roles.has('ingest') || roles.has('alerting'), redis: usedRedis !== undefined };
  const observability = createObservability({
    instrumentation,
    kafka,
    elasticsearch,
    ...(usedRedis ? { redis: usedRedis } : {}),
    logger,
    consumers: () => supervisor.statuses(),
    ...(pipeline ? { ingest: () => pipeline.stats() } : {}),
    ...(engine ? { engine: () => engine.stats() } : {}),
    ...(alerter ? { alerter: () => alerter.stats() } : {}),
    ...(notifier ? { notifier: () => notifier.stats(), destinations: () => notifier.destinationStats(), outbox: () => notifier.outboxStats() } : {}),
    geo: () => geoDatabase,
    ...(intake ? { intake: () => intake.stats() } : {}),
    started: () => allStarted,
    // An intake alone writes to Kafka only: Elasticsearch or Redis away must not take it out of service.
    uses: stores,
  });
  // The counters /metrics serves, indexed every interval for the Pipeline health dashboard.
  const pipelineStats =
    config.pipelineStats.intervalMs > 0 && (pipeline || alerter)
      ? createPipelineStatsReporter({
          elasticsearch,
          config,
          logger,
          roles: [...roles],
          read: () =>
            readPipelineCounters({
              ...(pipeline ? { ingest: () => pipeline.stats() } : {}),
              ...(alerter ? { alerter: () => alerter.stats() } : {}),
              ...(notifier ? { destinations: () => notifier.destinationStats() } : {}),
            }),
        })
      : undefined;
  const listen = overrides.http ?? (config.http.port === 0 ? false : { host: config.http.host, port: config.http.port });
  let httpAddress: HttpListen | undefined;
  /** Every part started, and none stopping: what /readyz waits for. */
  let allStarted = false;

  async function startAll(): Promise<void> {
    // First in, last out: /healthz answers while the parts start and stop, /readyz says 503 then.
    // Before the checks of the stores, which may take a minute against one that does not answer:
    // a liveness probe would otherwise kill the process before it says what is wrong.
    if (listen) httpAddress = await observability.listen(listen);
    started.push('health and metrics', () => observability.close());
    // A wrong address, credential or CA stops here, naming the service, before any part starts.
    // Only the stores this process uses: an intake alone writes to Kafka only.
    for (const unreachable of await verifyConnections(config, { kafka, ...(stores.elasticsearch ? { elasticsearch } : {}), ...(usedRedis ? { redis: usedRedis } : {}) })) {
      const then =
        unreachable.service === 'elasticsearch' && pipeline !== undefined
          ? 'the pipeline installs its index templates there as it starts, and fails if it still cannot'
          : 'starting anyway, the parts that need it will retry';
      logger.warn({ err: unreachable, service: unreachable.service }, `${unreachable.message}; ${then}`);
    }
    // Started before the parts and stopped after them: its last write holds all they counted.
    if (pipelineStats) {
      pipelineStats.start();
      started.push('pipeline metrics', () => pipelineStats.stop());
    }
    if (pipeline) {
      if (engine && config.detection.watch) {
        const watched = engine;
        const stopWatching = watchRules(rulePaths, (next) => watched.setRules(next), logger.child({ component: 'detectors' }), undefined, listOptions);
        started.push('rule watcher', () => Promise.resolve(stopWatching()));
      }
      if (ruleSet) logger.info({ rules: ruleSet.rules.map((compiled) => compiled.rule.id), lists: [...ruleSet.lists.keys()], digest: ruleSet.digest }, 'detection rules loaded');
      const running = pipeline;
      await running.start();
      upstream.push('ingest pipeline', () => running.stop());
    }
    if (alerter && notifier && notificationProducer && outboxConsumer && groupStore) {
      const { alerter: runningAlerter, notifier: runningNotifier, outboxConsumer: delivering, groupStore: grouping } = { alerter, notifier, outboxConsumer, groupStore };
      // An alerting-only process may start before any ingest one has created the outbox topic.
      if (!pipeline) await ensureTopics(kafka, config);
      await notificationProducer.connect();
      started.push('notification producer', () => notificationProducer.disconnect());
      started.push('notifier', () => runningNotifier.stop(overrides.notifierDrainMs ?? NOTIFIER_DRAIN_MS));
      await delivering.start();
      started.push('notification outbox consumer', () => delivering.stop());
      await runningAlerter.start();
      started.push('alerter', () => runningAlerter.stop());
      logger.info({ destinations: destinations.map((destination) => `${destination.name} (${destination.type})`) }, 'alerting started');
      const knownRules = ruleSet ?? loadRulesQuietly(rulePaths, listOptions, config.detection.enabled);
      await reportDestinations(grouping, destinations, logger, alertTagsOf(knownRules));
      reportQuietPeriod(knownRules, config.alerting.resolveAfterMs, logger);
    }
    // Last in, first out: the intake takes records only once everything else runs, and stops first.
    if (intake) {
      intakeAddress = await intake.start(overrides.intakeHttp ?? { host: config.intake.host, port: config.intake.port });
      upstream.push('intake', () => intake.stop());
    }
    allStarted = true;
  }

  const lifecycle = createLifecycle('Vigil', {
    start: startAll,
    async stop() {
      allStarted = false;
      // A consumer that crashes while it is being stopped is not restarted.
      supervisor.stop();
      // Upstream first: the intake, then the ingest (its last chunk's detections still reach a
      // running alerter), then the alerter, the notifier and the rest.
      await upstream.closeAll();
      await started.closeAll();
      await owned.closeAll();
    },
    onStartFailure: (error) => logger.error({ err: error }, 'start failed; stopping what had started'),
  });
  return {
    config,
    logger,
    kafka,
    elasticsearch,
    ...(usedRedis ? { redis: usedRedis } : {}),
    instrumentation,
    ...(pipeline ? { pipeline } : {}),
    ...(engine ? { engine } : {}),
    ...(correlator ? { correlator } : {}),
    ...(ruleSet ? { ruleSet } : {}),
    ...(alerter ? { alerter } : {}),
    ...(notifier ? { notifier } : {}),
    ...(intake ? { intake } : {}),
    ...(pipelineStats ? { pipelineStats } : {}),
    start: lifecycle.start,
    stop: lifecycle.stop,
    stats() {
      return { ...(pipeline ? { ingest: pipeline.stats() } : {}), ...(alerter ? { alerter: alerter.stats() } : {}) };
    },
    failure: supervisor.failed,
    consumers: () => supervisor.statuses(),
    readiness: () => observability.readiness(),
    metrics: observability.registry,
    httpAddress: () => httpAddress,
    intakeAddress: () => intakeAddress,
  };
}
export * from './adapt';
export * from './pipeline-stats';
