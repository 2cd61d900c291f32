/**
 * The composition root of `vigil adapt`: a sibling of {@link createVigil} for the one part a
 * gateway's raw topic needs. It builds the adapter settings from configuration (failing fast,
 * before anything connects), the Kafka client, and the supervised adapt consumer.
 */
import type { Kafka } from 'kafkajs';
import { ADAPTERS, adapterFor, createAdaptConsumer, createEnvoyAdapter, groupMap, type AdaptConsumer, type AdaptStats, type AdapterSettings, type GatewayAdapter } from '../ingest';
import {
  ConfigError,
  Instrumentation,
  createConsumerSupervisor,
  createLifecycle,
  createKafka,
  createLogger,
  secretsOf,
  topicSettingsNaming,
  type Config,
  type ConsumerFailedError,
  type ConsumerStatus,
  type Logger,
} from '../platform';
import { createObservability, type HttpListen } from './observability';

/**
 * The adapter settings `VIGIL_ADAPT_*` describe. `vigil adapt` needs a service name and a group
 * map, which `vigil run` does not, so they are checked here rather than when the config loads.
 * @throws ConfigError naming each variable that is missing.
 */
export function adapterSettingsOf(config: Config): AdapterSettings {
  const { service, kind, environment, instance, groups, kongUserHeader, apisixAnonymousConsumers, derivedPolicies } = config.adapt;
  const problems = [
    ...(service === undefined ? ['VIGIL_ADAPT_SERVICE: required by vigil adapt (the source.service of the events it builds, e.g. edge-kong-eu)'] : []),
    ...(groups === undefined ? ['VIGIL_ADAPT_GROUPS: required by vigil adapt (the policy group of each route, service or tag; at least {"default":"<group>"})'] : []),
  ];
  if (service === undefined || groups === undefined) throw new ConfigError(problems);
  return {
    service,
    kind,
    ...(environment !== undefined ? { environment } : {}),
    ...(instance !== undefined ? { instance } : {}),
    groups: groupMap(groups),
    ...(kongUserHeader ? { kongUserHeader } : {}),
    apisixAnonymousConsumers,
    ...(derivedPolicies !== 'all' ? { derivedPolicies } : {}),
  };
}

/** What `vigil adapt` runs. */
export interface AdaptOptions {
  /** The format, a key of `ADAPTERS` (`kong`, `apisix`, ...). */
  format: string;
  /** The raw topic the gateway writes to. */
  topic: string;
  logger?: Logger;
  /** A client supplied here is not closed by stop(). */
  kafka?: Kafka;
  instrumentation?: Instrumentation;
  clock?: () => Date;
  /**
   * Where to serve `/healthz`, `/readyz` (Kafka reachable, the consumer running) and `/metrics`,
   * as `vigil run` does; the CLI passes `VIGIL_HTTP_HOST`/`VIGIL_HTTP_PORT`. @defaultValue not served
   */
  http?: HttpListen;
}

/** A built `vigil adapt`. */
export interface Adapt {
  readonly consumer: AdaptConsumer;
  readonly logger: Logger;
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): AdaptStats;
  /** Resolves when the consumer crashed past its restart budget; see `Vigil.failure`. */
  readonly failure: Promise<ConsumerFailedError>;
  consumers(): ConsumerStatus[];
  /** Where health and metrics are served, once started with `http`. */
  httpAddress(): HttpListen | undefined;
}

/** The consumer group of `vigil adapt` on a raw topic when `VIGIL_ADAPT_CONSUMER_GROUP` is unset: `vigil-adapt-<format>-<topic>`. */
export function defaultAdaptGroup(format: string, topic: string): string {
  return `vigil-adapt-${format}-${topic}`;
}

/** The adapter of a format as configured (`VIGIL_ADAPT_ENVOY_CLIENT_IP`), or `undefined` for a format `vigil adapt` does not know. */
export function adapterOf(config: Config, format: string): GatewayAdapter | undefined {
  return format === 'envoy' && config.adapt.envoyClientIp === 'xff' ? createEnvoyAdapter({ clientIp: 'xff' }) : adapterFor(format);
}

/**
 * Builds `vigil adapt` for one format and raw topic.
 * @throws ConfigError for an unknown format or missing adapter settings, before anything connects.
 */
export function createAdapt(config: Config, options: AdaptOptions): Adapt {
  const adapter = adapterOf(config, options.format);
  if (adapter === undefined) throw new ConfigError([`--format: "${options.format}" is not a format vigil adapt knows (${Object.keys(ADAPTERS).join(', ')})`]);
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(options.topic)) throw new ConfigError([`--topic: "${options.topic}" is not a Kafka topic name (letters, digits, ".", "_" and "-")`]);
  // It writes events and dead letters: reading one of those topics would read back what it wrote, for ever.
  const own = topicSettingsNaming(config, options.topic, true);
  if (own.length > 0) throw new ConfigError([`--topic: "${options.topic}" is ${own.join(' and ')}, a topic of Vigil's own: give the gateway's raw topic (the intake's, ${config.intake.topic}, for Kong's HTTP log)`]);
  const settings = adapterSettingsOf(config);
  const logger = options.logger ?? createLogger({ level: config.logLevel, secrets: secretsOf(config) });
  const instrumentation = options.instrumentation ?? new Instrumentation();
  const kafka = options.kafka ?? createKafka(config, logger, `${config.kafka.clientId}-adapt-${adapter.format}`);
  const supervisor = createConsumerSupervisor({
    policy: { maxRestarts: config.consumerMaxRestarts, windowMs: 10 * 60_000, backoff: { initialDelayMs: 1000, maxDelayMs: 30_000 } },
    logger,
    instrumentation,
  });
  const consumer = createAdaptConsumer({
    config,
    kafka: supervisor.kafkaFor('adapt', kafka),
    logger,
    adapter,
    settings,
    topic: options.topic,
    // One group per raw topic: two adapters of a format on two topics in one group left one topic
    // unread (kafkajs's leader assigns only the topics it subscribes to). The former default's
    // offsets on this topic are taken over.
    groupId: config.adapt.consumerGroup ?? defaultAdaptGroup(adapter.format, options.topic),
    ...(config.adapt.consumerGroup === undefined ? { inheritOffsetsFrom: `vigil-adapt-${adapter.format}` } : {}),
    instrumentation,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const observability = options.http
    ? createObservability({
        instrumentation,
        kafka,
        logger,
        consumers: () => supervisor.statuses(),
        adapt: () => consumer.stats(),
        started: () => running,
        uses: { elasticsearch: false, redis: false },
      })
    : undefined;
  let httpAddress: HttpListen | undefined;
  /** Started and not stopping: what /readyz waits for. */
  let running = false;
  const lifecycle = createLifecycle('vigil adapt', {
    async start() {
      // First: /healthz answers while the consumer joins its group.
      if (observability && options.http) httpAddress = await observability.listen(options.http);
      try {
        await consumer.start();
      } catch (error) {
        await observability?.close();
        throw error;
      }
      running = true;
    },
    async stop() {
      running = false;
      supervisor.stop();
      try {
        await consumer.stop();
      } finally {
        await observability?.close();
      }
    },
  });
  return {
    consumer,
    logger,
    start: lifecycle.start,
    stop: lifecycle.stop,
    stats: () => consumer.stats(),
    failure: supervisor.failed,
    consumers: () => supervisor.statuses(),
    httpAddress: () => httpAddress,
  };
}
