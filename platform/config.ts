import { z } from 'zod';
import { ConfigError } from './errors';

const list = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0))
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')).min(1, 'at least one broker'));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const name = z.string().regex(/^[a-zA-Z0-9._-]{1,200}$/, 'letters, digits, ".", "_" and "-" only');
const indexPrefix = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,60}$/, 'lower-case letters, digits, "_" and "-" (an index name prefix)');

/**
 * Every environment variable Vigil reads, with its default. `.env.example` lists the same.
 * Parsed once at start; nothing else reads `process.env`.
 */
export const configSchema = z.object({
  KAFKA_BROKERS: list.default(['127.0.0.1:9092']),
  KAFKA_CLIENT_ID: name.default('vigil'),
  ELASTICSEARCH_URL: z.url().default('http://127.0.0.1:9200'),
  ELASTICSEARCH_API_KEY: z.string().min(1).optional(),
  VIGIL_TOPIC_POLICY: name.default('vigil.events.policy'),
  VIGIL_TOPIC_INVOCATION: name.default('vigil.events.invocation'),
  VIGIL_TOPIC_DEVICE: name.default('vigil.events.device'),
  VIGIL_TOPIC_DEADLETTER: name.default('vigil.deadletter'),
  VIGIL_TOPIC_DETECTIONS: name.default('vigil.detections'),
  VIGIL_TOPIC_PARTITIONS: int(1, 1000).default(3),
  VIGIL_CONSUMER_GROUP: name.default('vigil-ingest'),
  VIGIL_INDEX_PREFIX: indexPrefix.default('vigil'),
  VIGIL_INDEX_SHARDS: int(1, 100).default(1),
  VIGIL_INDEX_REPLICAS: int(0, 10).default(0),
  VIGIL_MAX_MESSAGE_BYTES: int(1024, 10 * 1024 * 1024).default(256 * 1024),
  VIGIL_MAX_JSON_DEPTH: int(4, 256).default(16),
  VIGIL_BULK_MAX_DOCS: int(1, 100_000).default(1000),
  VIGIL_BULK_MAX_BYTES: int(1024, 100 * 1024 * 1024).default(2 * 1024 * 1024),
  VIGIL_BULK_FLUSH_MS: int(10, 60_000).default(100),
  REDIS_URL: z.string().regex(/^rediss?:\/\/\S+$/, 'expected redis://host:port').default('redis://127.0.0.1:6379'),
  VIGIL_REDIS_PREFIX: z.string().regex(/^[a-zA-Z0-9:_-]{1,64}$/, 'letters, digits, ":", "_" and "-"').default('vigil'),
  VIGIL_DETECTION: z.enum(['on', 'off']).default('on'),
  VIGIL_RULES_PATH: z
    .string()
    .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0))
    .optional(),
  VIGIL_RULES_WATCH: z.enum(['true', 'false']).default('true'),
  VIGIL_ALLOWED_LATENESS_MS: int(0, 7 * 86_400_000).default(300_000),
  VIGIL_CORRELATION_WAIT_MS: int(0, 10_000).default(0),
  VIGIL_ALERTER_GROUP: name.default('vigil-alerter'),
  VIGIL_TOPIC_NOTIFICATION_DEADLETTER: name.default('vigil.notifications.deadletter'),
  VIGIL_ALERT_SUPPRESS_MS: int(1000, 7 * 86_400_000).default(600_000),
  VIGIL_ALERT_RESOLVE_AFTER_MS: int(1000, 7 * 86_400_000).default(900_000),
  VIGIL_ALERT_DESTINATIONS: z.string().default('[]'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

type Env = z.output<typeof configSchema>;

/** The validated, frozen configuration passed to every component. */
export interface Config {
  readonly kafka: { readonly brokers: readonly string[]; readonly clientId: string };
  readonly elasticsearch: { readonly url: string; readonly apiKey?: string };
  readonly topics: {
    readonly policy: string;
    readonly invocation: string;
    readonly device: string;
    readonly deadLetter: string;
    readonly detections: string;
    readonly partitions: number;
  };
  readonly consumerGroup: string;
  readonly indices: { readonly prefix: string; readonly shards: number; readonly replicas: number };
  readonly limits: { readonly maxMessageBytes: number; readonly maxJsonDepth: number };
  readonly bulk: { readonly maxDocs: number; readonly maxBytes: number; readonly flushMs: number };
  readonly redis: { readonly url: string; readonly prefix: string };
  readonly detection: {
    readonly enabled: boolean;
    /** Rule files and folders; undefined means the built-in default pack. */
    readonly rulesPaths?: readonly string[];
    readonly watch: boolean;
    readonly allowedLatenessMs: number;
    /** How long an invocation may wait for its request's policy decisions (0: never). */
    readonly correlationWaitMs: number;
  };
  readonly alerting: {
    readonly group: string;
    readonly notificationDeadLetterTopic: string;
    /** A detection within this long of the alert's last one updates it instead of opening another. */
    readonly suppressMs: number;
    /** An alert with no detection for this long is resolved. */
    readonly resolveAfterMs: number;
    /** JSON list of destinations, validated by the notifier (see docs/alerting.md). */
    readonly destinations: string;
  };
  readonly logLevel: Env['LOG_LEVEL'];
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses configuration from an environment. Empty strings count as unset, so a `.env` copied
 * from `.env.example` with blanks keeps the defaults.
 * @throws ConfigError listing every variable at fault, not just the first.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const present = Object.fromEntries(
    Object.keys(configSchema.shape)
      .map((key) => [key, env[key]] as const)
      .filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const e = parsed.data;
  return deepFreeze({
    kafka: { brokers: e.KAFKA_BROKERS, clientId: e.KAFKA_CLIENT_ID },
    elasticsearch: { url: e.ELASTICSEARCH_URL, ...(e.ELASTICSEARCH_API_KEY ? { apiKey: e.ELASTICSEARCH_API_KEY } : {}) },
    topics: {
      policy: e.VIGIL_TOPIC_POLICY,
      invocation: e.VIGIL_TOPIC_INVOCATION,
      device: e.VIGIL_TOPIC_DEVICE,
      deadLetter: e.VIGIL_TOPIC_DEADLETTER,
      detections: e.VIGIL_TOPIC_DETECTIONS,
      partitions: e.VIGIL_TOPIC_PARTITIONS,
    },
    consumerGroup: e.VIGIL_CONSUMER_GROUP,
    indices: { prefix: e.VIGIL_INDEX_PREFIX, shards: e.VIGIL_INDEX_SHARDS, replicas: e.VIGIL_INDEX_REPLICAS },
    limits: { maxMessageBytes: e.VIGIL_MAX_MESSAGE_BYTES, maxJsonDepth: e.VIGIL_MAX_JSON_DEPTH },
    bulk: { maxDocs: e.VIGIL_BULK_MAX_DOCS, maxBytes: e.VIGIL_BULK_MAX_BYTES, flushMs: e.VIGIL_BULK_FLUSH_MS },
    redis: { url: e.REDIS_URL, prefix: e.VIGIL_REDIS_PREFIX },
    detection: {
      enabled: e.VIGIL_DETECTION === 'on',
      ...(e.VIGIL_RULES_PATH && e.VIGIL_RULES_PATH.length > 0 ? { rulesPaths: e.VIGIL_RULES_PATH } : {}),
      watch: e.VIGIL_RULES_WATCH === 'true',
      allowedLatenessMs: e.VIGIL_ALLOWED_LATENESS_MS,
      correlationWaitMs: e.VIGIL_CORRELATION_WAIT_MS,
    },
    alerting: {
      group: e.VIGIL_ALERTER_GROUP,
      notificationDeadLetterTopic: e.VIGIL_TOPIC_NOTIFICATION_DEADLETTER,
      suppressMs: e.VIGIL_ALERT_SUPPRESS_MS,
      resolveAfterMs: e.VIGIL_ALERT_RESOLVE_AFTER_MS,
      destinations: e.VIGIL_ALERT_DESTINATIONS,
    },
    logLevel: e.LOG_LEVEL,
  });
}
