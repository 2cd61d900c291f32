import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { ConfigError } from './errors';
import { nearest } from './nearest';
import { SEVERITIES } from '../schemas/detection';
import { POLICY_KINDS, type PolicyKind } from '../schemas/policy';

/**
 * One environment variable: its name, its zod type (with the default), and the words the docs
 * show. Every setting is declared once, in {@link settings}; the `Config` type, the parser,
 * `.env.example` and the tables in docs/configuration.md and the README are all derived from it.
 */
export interface Setting<S extends z.ZodType = z.ZodType> {
  readonly env: string;
  readonly schema: S;
  /** What values are accepted, for the docs ("1–1000", "`on`, `off`"). */
  readonly allowed: string;
  /** One or two sentences for the docs table; the first sentence also heads `.env.example`. */
  readonly doc: string;
}

function setting<S extends z.ZodType>(env: string, schema: S, allowed: string, doc: string): Setting<S> {
  return { env, schema, allowed, doc };
}

const commaList = z.string().transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0));
/**
 * Whether a `host:port` item's port is one a client can dial, 1–65535: up to five digits pass the
 * items' patterns, so `:0` and `:99999` did, and failed only at connect, naming no setting.
 */
function dialablePort(address: string): boolean {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return port >= 1 && port <= 65_535;
}
const NOT_DIALABLE = 'the port is not within 1–65535';
const brokers = commaList.pipe(
  z
    .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, { message: 'expected host:port', abort: true }).refine(dialablePort, NOT_DIALABLE))
    .min(1, 'at least one broker'),
);
/** REDIS_CLUSTER_NODES: seeds as `host:port`, each may carry `redis://` or `rediss://`, all alike. */
const clusterNodes = commaList
  .pipe(
    z
      .array(z.string().regex(/^(rediss?:\/\/)?[^\s:/@]+:\d{1,5}$/, { message: 'expected host:port (or redis://host:port, rediss://host:port)', abort: true }).refine(dialablePort, NOT_DIALABLE))
      .min(1, 'at least one node'),
  )
  .transform((seeds, context) => {
    const tls = seeds.map((seed) => seed.startsWith('rediss://'));
    if (new Set(tls).size > 1) {
      context.addIssue({ code: 'custom', message: 'mixes rediss:// and plain seeds: a cluster is reached over TLS or not' });
      return z.NEVER;
    }
    const nodes = seeds.map((seed) => {
      const address = seed.replace(/^rediss?:\/\//, '');
      const colon = address.lastIndexOf(':');
      return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
    });
    return { nodes, tls: tls[0] === true };
  });
/**
 * A whole number in decimal digits, within bounds. Not `z.coerce.number()`: it took a blank as 0,
 * and `0x10` or `1e3` as numbers the documentation never promised.
 */
const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'expected a whole number (decimal digits)')
    .transform(Number)
    .pipe(z.number().min(min).max(max));
const name = z.string().regex(/^[a-zA-Z0-9._-]{1,200}$/, 'letters, digits, ".", "_" and "-" only');
const indexPrefix = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,60}$/, 'lower-case letters, digits, "_" and "-" (an index name prefix)');
/** Every switch takes the same words: `on`/`off`, or `true`/`false`. */
const flag = z.enum(['on', 'off', 'true', 'false'], { error: 'expected on or off' }).transform((value) => value === 'on' || value === 'true');
const NAME = 'name';
const secret = z.string().min(1);
const path = z.string().min(1);

/** A name or group as the contract takes it: 1–256 characters, no control character. */
// eslint-disable-next-line no-control-regex -- the contract refuses exactly these characters
const label = z.string().min(1).max(256).regex(/^[^\u0000-\u001F\u007F-\u009F]*$/, 'must not contain control characters');
const groupTable = z.record(z.string().min(1, 'a name must not be empty'), label);
/** VIGIL_ADAPT_GROUPS: JSON text, parsed, then checked key by key so an error names the entry. */
const adaptGroups = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      context.addIssue({ code: 'custom', message: `not valid JSON: ${(error as Error).message}` });
      return z.NEVER;
    }
  })
  .pipe(
    z.strictObject(
      { routes: groupTable.optional(), services: groupTable.optional(), apis: groupTable.optional(), tags: groupTable.optional(), default: label.optional() },
      { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}: expected routes, services, apis, tags or default` : 'expected a JSON object') },
    ),
  );

/** The words VIGIL_ADAPT_DERIVED_POLICIES takes, for its error and the docs. */
const DERIVED_POLICY_WORDS = `all or none alone, or a comma-separated list of policy kinds (${POLICY_KINDS.join(', ')})`;
/**
 * VIGIL_ADAPT_DERIVED_POLICIES: `all`, or the policy kinds whose derived events `vigil adapt`
 * builds (`none` is no kind). `all` stays a word rather than becoming the list, so the default
 * reads `all` in the docs.
 */
const derivedPolicies = commaList.transform((items, context): 'all' | PolicyKind[] => {
  if (items.length === 1 && items[0] === 'all') return 'all';
  if (items.length === 1 && items[0] === 'none') return [];
  const kinds = new Set<string>(POLICY_KINDS);
  const unknown = items.filter((item) => !kinds.has(item));
  if (items.length === 0 || unknown.length > 0) {
    const named = unknown.length > 0 ? `${unknown.map((item) => JSON.stringify(item)).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not accepted` : 'empty';
    context.addIssue({ code: 'custom', message: `${named}: expected ${DERIVED_POLICY_WORDS}` });
    return z.NEVER;
  }
  return [...new Set(items)] as PolicyKind[];
});

/**
 * Every environment variable Vigil reads, in the shape of {@link Config}. Nothing else reads
 * `process.env`, and components take these values as required options with no defaults of their
 * own, so a default lives here and nowhere else.
 */
export const settings = {
  kafka: {
    brokers: setting('KAFKA_BROKERS', brokers.default(['127.0.0.1:9092']), 'comma-separated `host:port` list (port 1–65535), at least one', 'The Kafka bootstrap brokers. Spaces around commas are ignored.'),
    clientId: setting('KAFKA_CLIENT_ID', name.default('vigil'), NAME, 'The Kafka client id. A process appends the roles it runs, joined with `-` (`vigil-ingest-alerting` for `vigil run`, with `-intake` after it when it runs the intake too; `vigil-intake` for an intake alone), so the broker\'s logs and quotas tell them apart.'),
    sasl: {
      mechanism: setting(
        'KAFKA_SASL_MECHANISM',
        z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none'),
        '`none`, `plain`, `scram-sha-256`, `scram-sha-512`',
        'SASL authentication to the brokers; anything but `none` needs `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`.',
      ),
      username: setting('KAFKA_SASL_USERNAME', secret.optional(), 'non-empty string', 'The SASL user.'),
      password: setting('KAFKA_SASL_PASSWORD', secret.optional(), 'non-empty string', 'The SASL password. Never logged.'),
    },
    tls: setting('KAFKA_TLS', flag.default(false), '`on`, `off`', 'Connect to the brokers over TLS (on by itself when `KAFKA_TLS_CA_FILE` is set).'),
    caFile: setting('KAFKA_TLS_CA_FILE', path.optional(), 'a readable PEM file', 'The CA that signed the brokers’ certificates, when it is not a public one.'),
  },
  elasticsearch: {
    url: setting('ELASTICSEARCH_URL', z.url({ protocol: /^https?$/, error: 'expected an http or https URL' }).default('http://127.0.0.1:9200'), 'URL', 'The Elasticsearch node.'),
    apiKey: setting(
      'ELASTICSEARCH_API_KEY',
      z.string().min(1).optional(),
      'non-empty string',
      'If set, sent as API-key authentication: the `encoded` value Elasticsearch returns when the key is created. Never logged.',
    ),
    username: setting('ELASTICSEARCH_USERNAME', secret.optional(), 'non-empty string', 'Basic authentication user, instead of an API key; needs `ELASTICSEARCH_PASSWORD`.'),
    password: setting('ELASTICSEARCH_PASSWORD', secret.optional(), 'non-empty string', 'Basic authentication password. Never logged.'),
    caFile: setting('ELASTICSEARCH_CA_FILE', path.optional(), 'a readable PEM file', 'The CA that signed the node’s HTTPS certificate, when it is not a public one (needs an `https://` URL).'),
  },
  topics: {
    policy: setting('VIGIL_TOPIC_POLICY', name.default('vigil.events.policy'), NAME, 'The topic of policy events.'),
    invocation: setting('VIGIL_TOPIC_INVOCATION', name.default('vigil.events.invocation'), NAME, 'The topic of invocation events.'),
    device: setting('VIGIL_TOPIC_DEVICE', name.default('vigil.events.device'), NAME, 'The topic of device events.'),
    deadLetter: setting(
      'VIGIL_TOPIC_DEADLETTER',
      name.default('vigil.deadletter'),
      NAME,
      'The dead-letter topic (see [dead-letters.md](dead-letters.md)). If the pipeline creates it, it keeps messages for 30 days (`retention.ms`).',
    ),
    detections: setting(
      'VIGIL_TOPIC_DETECTIONS',
      name.default('vigil.detections'),
      NAME,
      'The detections topic: the pipeline publishes detections to it, the alerter reads them (see [detection.md](detection.md#the-topic)).',
    ),
    partitions: setting(
      'VIGIL_TOPIC_PARTITIONS',
      int(1, 1000).default(3),
      '1–1000',
      'The partitions of each topic the pipeline creates (existing topics are not changed). It also sets how many partitions one instance processes at once (this value × 3).',
    ),
    replication: setting(
      'VIGIL_TOPIC_REPLICATION',
      int(1, 10).default(1),
      '1–10',
      'The replication factor of each topic Vigil creates (`vigil topics ensure`, or the pipeline at start). `1` suits a single broker; use `3` on a cluster.',
    ),
    retentionMs: setting(
      'VIGIL_TOPIC_RETENTION_MS',
      int(60_000, 10 * 365 * 86_400_000).optional(),
      '60000–315360000000, or unset (the broker’s default)',
      'How long the event, detection and notification topics Vigil creates keep messages (`retention.ms`). Dead-letter topics keep theirs for 30 days, or this when longer. Existing topics are not changed.',
    ),
  },
  consumerGroup: setting('VIGIL_CONSUMER_GROUP', name.default('vigil-ingest'), NAME, 'The ingest consumer group. Instances with the same group share the partitions: partition N of the three event topics goes to one instance (see [scaling.md](scaling.md)).'),
  recentIds: setting(
    'VIGIL_RECENT_IDS',
    int(0, 10_000_000).default(20_000),
    '0–10000000; `0` is off',
    'Event ids the ingest consumer remembers, with their content hash, once Elasticsearch acknowledged them and their chunk is done: its offsets committed, or, fetching ahead, queued for commit (the oldest forgotten first; at most 64 Mi characters of ids). An event with a remembered id is decided before correlation, rules and indexing: the same content is a duplicate, other content an `id_conflict` dead letter. A forgotten id (a restart, another instance) goes through Elasticsearch as before (see [dead-letters.md](dead-letters.md#id-conflicts)).',
  ),
  indices: {
    prefix: setting(
      'VIGIL_INDEX_PREFIX',
      indexPrefix.default('vigil'),
      '1–61 characters: lower-case letters, digits, `_`, `-`; starts with a letter or digit',
      'The prefix of templates and indices: `<prefix>-events-<family>-<YYYY.MM.DD>`, `<prefix>-detections-<YYYY.MM.DD>`, `<prefix>-alerts` and `<prefix>-pipeline-<YYYY.MM.DD>`.',
    ),
    shards: setting('VIGIL_INDEX_SHARDS', int(1, 100).default(1), '1–100', 'Primary shards per index (events, detections, alerts). Set in the index templates, so it applies to indices created afterwards.'),
    replicas: setting('VIGIL_INDEX_REPLICAS', int(0, 10).default(0), '0–10', 'Replicas per index, set like the shards. `0` suits a single node; use at least `1` on a cluster.'),
    eventOriginal: setting(
      'VIGIL_EVENT_ORIGINAL',
      flag.default(false),
      '`on`, `off`',
      'Keep a copy of the whole validated event in each event document (`event.original`), as ECS integrations do with their `preserve_original_event` tag. Off, a document is about a third smaller and `vigil replay` rebuilds the event from its fields (see [events.md](events.md#eventoriginal-and-replay)).',
    ),
  },
  limits: {
    maxMessageBytes: setting('VIGIL_MAX_MESSAGE_BYTES', int(1024, 10 * 1024 * 1024).default(256 * 1024), '1024–10485760', 'A larger message is dead-lettered as `too_large`.'),
    maxJsonDepth: setting(
      'VIGIL_MAX_JSON_DEPTH',
      int(4, 256).default(16),
      '4–256',
      'A message that nests objects and arrays deeper than this is dead-lettered as `too_deep`. A valid event nests at most 3 deep (e.g. `device.geo`).',
    ),
  },
  fetch: {
    maxBytesPerPartition: setting(
      'VIGIL_FETCH_MAX_BYTES_PER_PARTITION',
      int(64 * 1024, 64 * 1024 * 1024).default(256 * 1024),
      '65536–67108864',
      'How many bytes (as stored, compressed) one fetch of the ingest consumer may bring per partition. The broker still sends a larger batch whole, so this bounds memory, not the largest message. Each fetch is held in memory, decompressed and decoded into messages, until the last of them is handled: about 1.5 kB per event held; gzip packs Vigil’s events about 10 to 1, so a compressed backlog holds some 20 MB per partition for each MiB of this bound (with the default 256 KiB and a 512 MB heap limit the issue’s 133,850-event backlog peaked at 277–292 MB with kafkajs’s own loop and 299–302 MB fetching ahead; at 8 MiB a fetch can hold a whole backlog, over 1 GB decoded) (see [performance.md](performance.md#the-fetch-bound-memory-at-the-issues-volume-3-december-2026)). Larger fetches make fewer rounds when a partition holds oversized messages (see [hostile-input.md](hostile-input.md)).',
    ),
    maxBytes: setting(
      'VIGIL_FETCH_MAX_BYTES',
      int(64 * 1024, 512 * 1024 * 1024).default(50 * 1024 * 1024),
      '65536–536870912',
      'How many bytes (compressed) one fetch of the ingest consumer may bring in all, over every partition it asks for (the broker sends at least one batch). 50 MiB is the Java consumer’s `fetch.max.bytes`; lower it to bound the memory a large backlog can take.',
    ),
    ahead: setting(
      'VIGIL_FETCH_AHEAD',
      flag.default(true),
      '`on`, `off`',
      '`on` lets the ingest consumer fetch on while its chunks are handled: each partition queues up to `VIGIL_BULK_MAX_DOCS` fetched messages beyond its chunk in hand, a partition held back by event-time alignment or a store keeps what it fetched, and offsets are committed by Vigil once a chunk is acknowledged (faster with the rules on, at some 25 MB more peak memory over a large backlog). `off` is kafkajs’s own loop: it fetches again once every partition of the last fetch is done with, and a partition held back lets go of its batch and fetches it again later (see [pipeline.md](pipeline.md#fetching-ahead)).',
    ),
  },
  bulk: {
    maxDocs: setting(
      'VIGIL_BULK_MAX_DOCS',
      int(1, 100_000).default(1000),
      '1–100000',
      'Send a bulk request when this many documents wait. It is also the chunk size: the pipeline handles and commits each partition’s messages in chunks of this many.',
    ),
    maxBytes: setting('VIGIL_BULK_MAX_BYTES', int(1024, 100 * 1024 * 1024).default(2 * 1024 * 1024), '1024–104857600', 'Send a bulk request when the waiting NDJSON reaches this many bytes (UTF-8).'),
    flushMs: setting(
      'VIGIL_BULK_FLUSH_MS',
      int(0, 60_000).default(0),
      '0–60000',
      '0: each chunk’s documents go to Elasticsearch as soon as they are built, with no timer (a chunk is already a batch; while `VIGIL_BULK_CONCURRENCY` requests are out they wait for one, and go together with what else was queued). Above 0: the documents of small chunks wait up to this long for others’, from every partition, and go together: fewer requests at a low rate, each event that much later.',
    ),
    concurrency: setting(
      'VIGIL_BULK_CONCURRENCY',
      int(1, 64).default(2),
      '1–64',
      'Bulk requests in flight at once. Documents queued while that many are out go together, as one request, when one comes back: under load the partitions’ chunks share requests (Elasticsearch pays per request), idle each chunk goes at once. Raise it with the cluster’s write threads (one per core per data node).',
    ),
  },
  redis: {
    url: setting(
      'REDIS_URL',
      z.string().regex(/^rediss?:\/\/\S+$/, 'expected redis://host:port').check(redisUrlProblems).default('redis://127.0.0.1:6379'),
      '`redis://host[:port][/db]` or `rediss://…`: port 1–65535, db a whole number',
      'Redis for rule state, correlation and alert state; `rediss://` connects over TLS. Not used when `REDIS_CLUSTER_NODES` is set.',
    ),
    username: setting('REDIS_USERNAME', secret.optional(), 'non-empty string', 'The ACL user, when Redis has users.'),
    password: setting('REDIS_PASSWORD', secret.optional(), 'non-empty string', 'The password (`requirepass`, or the ACL user’s). Never logged.'),
    caFile: setting('REDIS_TLS_CA_FILE', path.optional(), 'a readable PEM file', 'The CA that signed Redis’s certificate, when it is not a public one (needs a `rediss://` URL).'),
    cluster: setting(
      'REDIS_CLUSTER_NODES',
      clusterNodes.optional(),
      'comma-separated `host:port` list (or `redis://host:port`, `rediss://host:port`; port 1–65535), at least one; unset for one Redis',
      'Seed nodes of a Redis Cluster, instead of `REDIS_URL`: Vigil then asks them for the cluster’s layout and sends each batch’s state to the node of each key’s hash slot (see [scaling.md](scaling.md#redis-cluster)). `rediss://` seeds connect over TLS; user, password and CA are the `REDIS_*` settings above.',
    ),
    prefix: setting('VIGIL_REDIS_PREFIX', z.string().regex(/^[a-zA-Z0-9:_-]{1,64}$/, 'letters, digits, ":", "_" and "-"').default('vigil'), '1–64 letters, digits, `:`, `_`, `-`', 'The prefix of every Redis key Vigil writes.'),
    commandTimeoutMs: setting(
      'VIGIL_REDIS_COMMAND_TIMEOUT_MS',
      int(100, 600_000).default(10_000),
      '100–600000',
      'How long a Redis command (a pipeline of the rules’ or the alerter’s state) may go unanswered before it fails, and the partition pauses and retries as for Redis away (see [pipeline.md](pipeline.md)). Without it a Redis that stopped answering (paused, its packets dropped) held chunks for as long as TCP took to give up, with no pause, no warning and a shutdown past its deadline.',
    ),
  },
  detection: {
    enabled: setting(
      'VIGIL_DETECTION',
      flag.default(true),
      '`on`, `off`',
      '`on` correlates events and runs the rules in the pipeline; `off` only indexes (see [detection.md](detection.md#where-it-runs)).',
    ),
    rulesPaths: setting(
      'VIGIL_RULES_PATH',
      commaList.pipe(z.array(z.string()).min(1, 'at least one path')).optional(),
      'comma-separated files and folders',
      'The rule files; unset means the default pack. When set, only these are loaded: list `detectors/rules/default` too to keep the default pack (see [rules.md](rules.md#rule-files)).',
    ),
    listsPaths: setting(
      'VIGIL_LISTS_PATH',
      commaList.pipe(z.array(z.string()).min(1, 'at least one path')).optional(),
      'comma-separated files and folders',
      'Value list files loaded over the shipped lists (2FA groups, sensitive groups, privileged scopes, trusted egress…): a list with a shipped id replaces it, or adds to it with `merge: append`; rules name lists with `inList`. Reloaded with the rules (see [rules.md](rules.md#lists)).',
    ),
    watch: setting('VIGIL_RULES_WATCH', flag.default(true), '`on`, `off`', 'Reload the rules when their files change (see [detection.md](detection.md#reloading-rules-without-a-restart)).'),
    allowedLatenessMs: setting(
      'VIGIL_ALLOWED_LATENESS_MS',
      int(0, 7 * 86_400_000).default(300_000),
      '0–604800000',
      'How far behind its partition’s event-time clock an event may be and still count in stateful rules (see [detection.md](detection.md#event-time-and-the-clock)).',
    ),
    stateGraceMs: setting(
      'VIGIL_STATE_GRACE_MS',
      int(60_000, 7 * 86_400_000).default(900_000),
      '60000–604800000',
      'How long a rule’s windows, chains and firing claims outlive their event-time span, in wall-clock time, so that a pipeline stopped for up to this long (an outage, a restart) comes back to its state (see [detection.md](detection.md#state-across-a-stop)). Idle keys stay in Redis this much longer.',
    ),
    correlationWaitMs: setting(
      'VIGIL_CORRELATION_WAIT_MS',
      int(0, 10_000).default(0),
      '0–10000',
      'How long an invocation may wait for its request’s policy decisions; 0 never waits (see [correlation.md](correlation.md#the-bounded-wait)).',
    ),
    alignEventTime: setting(
      'VIGIL_EVENT_TIME_ALIGNMENT',
      flag.default(true),
      '`on`, `off`',
      '`on` keeps the partitions of the three event topics within `VIGIL_EVENT_TIME_SKEW_MS` of each other in event time, so a backlog is read in the order it happened; `off` reads each partition as fast as it goes (see [event-time.md](event-time.md)).',
    ),
    eventTimeSkewMs: setting(
      'VIGIL_EVENT_TIME_SKEW_MS',
      int(0, 3_600_000).default(60_000),
      '0–3600000',
      'How far (event time) a partition may run ahead of the slowest partition that has data before it is paused (see [event-time.md](event-time.md#the-bound)).',
    ),
    eventTimeIdleMs: setting(
      'VIGIL_EVENT_TIME_IDLE_MS',
      int(100, 600_000).default(5_000),
      '100–600000',
      'After this long without progress, a partition no longer holds the others back (an empty partition, one paused by a store outage; see [event-time.md](event-time.md#liveness)).',
    ),
  },
  geo: {
    database: setting(
      'VIGIL_GEOIP_DATABASE',
      path.optional(),
      'a readable MaxMind City `.mmdb` file',
      'A MaxMind GeoLite2-City or GeoIP2-City database to locate client IPs with, read again whenever the file changes; unset uses the older geoip-lite data bundled with Vigil (see [geo.md](geo.md)).',
    ),
  },
  alerting: {
    group: setting('VIGIL_ALERTER_GROUP', name.default('vigil-alerter'), NAME, 'The alerter’s consumer group on the detections topic (see [alerting.md](alerting.md#where-it-runs)).'),
    notificationDeadLetterTopic: setting(
      'VIGIL_TOPIC_NOTIFICATION_DEADLETTER',
      name.default('vigil.notifications.deadletter'),
      NAME,
      'Where notifications that failed for good go (see [alerting.md](alerting.md#delivery-retries-and-the-dead-letter-topic)). If the pipeline creates it, it keeps messages for 30 days.',
    ),
    notificationTopic: setting(
      'VIGIL_TOPIC_NOTIFICATIONS',
      name.default('vigil.notifications'),
      NAME,
      'The notification outbox: each accepted notification is written here before it is delivered, so a crash loses none (see [alerting.md](alerting.md#the-notification-outbox)).',
    ),
    notifierGroup: setting(
      'VIGIL_NOTIFIER_GROUP',
      name.default('vigil-notifier'),
      NAME,
      'The consumer group that delivers notifications from the outbox topic (see [alerting.md](alerting.md#the-notification-outbox)).',
    ),
    notifierRetryForMs: setting(
      'VIGIL_NOTIFIER_RETRY_FOR_MS',
      int(0, 86_400_000).default(900_000),
      '0–86400000',
      'How long a notification keeps being retried while its destination is unreachable or answers 408/429/5xx, before it is dead-lettered; `0` stops after 5 retries (about 16 s) (see [alerting.md](alerting.md#delivery-retries-and-the-dead-letter-topic)).',
    ),
    resolveAfterMs: setting(
      'VIGIL_ALERT_RESOLVE_AFTER_MS',
      int(1000, 7 * 86_400_000).default(900_000),
      '1000–604800000',
      'An alert with no detection for this long, in event time, is resolved; when no detection arrives at all, after this long plus `VIGIL_ALERT_LATENESS_MS` of wall-clock time (see [alerting.md](alerting.md#auto-resolve-after-a-quiet-period)).',
    ),
    destinations: setting(
      'VIGIL_ALERT_DESTINATIONS',
      z.string().default('[]'),
      'a JSON array of destinations',
      'Where alert notifications go: webhook, Slack, PagerDuty. Validated when `vigil run` starts, every problem listed (see [alerting.md](alerting.md#vigil_alert_destinations)).',
    ),
    kibanaUrl: setting(
      'VIGIL_KIBANA_URL',
      z.url({ protocol: /^https?$/, error: 'expected an http or https URL' }).optional(),
      'URL',
      'Kibana’s address as on-call opens it (with `/s/<space>` for a space), where `vigil dashboards install` put Vigil’s objects: Slack and PagerDuty notifications link to the alert there (see [alerting.md](alerting.md#what-a-notification-says)). Unset: no link.',
    ),
    latenessMs: setting(
      'VIGIL_ALERT_LATENESS_MS',
      int(0, 3_600_000).default(60_000),
      '0–3600000',
      'How far behind the newest detection’s event time the alerter’s event-time clock (its watermark) runs: an alert resolves once the watermark is past its last detection plus the quiet period, so a detection up to this late still joins its incident (see [alerting.md](alerting.md#event-time-the-watermark-and-lateness)).',
    ),
    pageWithinMs: setting(
      'VIGIL_ALERT_PAGE_WITHIN_MS',
      int(60_000, 30 * 86_400_000).default(21_600_000),
      '60000–2592000000',
      'A change of an alert whose incident ended (in event time) longer ago than this, by the wall clock, is recorded in the alerts index but not notified: an old backlog is grouped into incidents, not paged (see [alerting.md](alerting.md#backlogs-recorded-and-not-paged)). A `resolved` still goes to a destination that heard of the incident, so a page opened before the alerter fell behind is closed.',
    ),
    stormMax: setting(
      'VIGIL_ALERT_STORM_MAX',
      int(0, 100_000).default(5),
      '0–100000, `0` turns the storm guard off',
      'The storm guard: once one rule has opened this many alerts within `VIGIL_ALERT_STORM_WINDOW_MS` of event time, its further detections fold into one campaign alert for the rule that lists the keys (see [alerting.md](alerting.md#the-storm-guard-campaign-alerts)).',
    ),
    stormWindowMs: setting(
      'VIGIL_ALERT_STORM_WINDOW_MS',
      int(1000, 86_400_000).default(600_000),
      '1000–86400000',
      'The storm guard’s window, in event time (see `VIGIL_ALERT_STORM_MAX`).',
    ),
    stormSpares: setting(
      'VIGIL_ALERT_STORM_SPARES',
      z.enum([...SEVERITIES, 'none']).default('critical'),
      `${SEVERITIES.map((severity) => `\`${severity}\``).join(', ')}, \`none\``,
      'The lowest severity the storm guard spares: a detection of it or above never folds into a campaign alert, so its own alert opens and pages. An attacker who opens a few alerts of a rule on purpose (its own accounts taken over) would otherwise fold the next, real one into the campaign without a page (see [alerting.md](alerting.md#the-storm-guard-campaign-alerts)).',
    ),
    inhibition: setting(
      'VIGIL_ALERT_INHIBITION',
      z.string().default('default'),
      '`default`, `off`, or a JSON array of `{ "sources": [rule ids], "targets": [rule ids] }`',
      'Which rules explain others: while an alert of a source rule is open on an endpoint, detections of its target rules whose events hit that endpoint in its window are absorbed into it as evidence instead of opening alerts. `default`: the endpoint flood and surge rules explain the per-IP and per-user authentication and rate-limit rules. Validated when the alerter starts (see [alerting.md](alerting.md#inhibition-and-roll-up)).',
    ),
  },
  http: {
    host: setting(
      'VIGIL_HTTP_HOST',
      z.string().regex(/^[a-zA-Z0-9.:-]{1,253}$/, 'expected a host name or an IP address').default('127.0.0.1'),
      'host name or IP address',
      'The address `/healthz`, `/readyz` and `/metrics` listen on. `0.0.0.0` listens on every interface (see [operations.md](operations.md#endpoints)).',
    ),
    port: setting('VIGIL_HTTP_PORT', int(0, 65_535).default(9464), '0–65535', 'The port of the health and metrics endpoints; `0` serves none.'),
  },
  pipelineStats: {
    intervalMs: setting(
      'VIGIL_PIPELINE_STATS_INTERVAL_MS',
      z
        .union([z.literal('off').transform(() => 0), int(0, 3_600_000)], { error: 'expected milliseconds (1000–3600000), or 0 or off' })
        .refine((value) => value === 0 || value >= 1000, 'expected 0 or off, or at least 1000')
        .default(30_000),
      '1000–3600000, or `0`/`off`',
      'How often each Vigil process indexes what it counted since the previous time (events in and indexed per family, dead letters by reason, alert changes, notifications by destination and outcome) into `<prefix>-pipeline-<YYYY.MM.DD>`, for the *Pipeline health* dashboard; the last interval is written at stop. `0` or `off` writes none (see [operations.md](operations.md#pipeline-metrics-in-elasticsearch)).',
    ),
    instance: setting(
      'VIGIL_INSTANCE_NAME',
      name.optional(),
      NAME,
      'The name of this process in the pipeline metrics (`service.node.name`); unset means the host name (a container’s or pod’s name). Give each instance on one host a name of its own.',
    ),
  },
  intake: {
    host: setting(
      'VIGIL_INTAKE_HOST',
      z.string().regex(/^[a-zA-Z0-9.:-]{1,253}$/, 'expected a host name or an IP address').default('127.0.0.1'),
      'host name or IP address',
      'The address of the HTTP intake for Kong’s `http-log` plugin; `0.0.0.0` listens on every interface (see [gateways/kong-http-log.md](gateways/kong-http-log.md)).',
    ),
    port: setting('VIGIL_INTAKE_PORT', int(0, 65_535).default(9465), '0–65535', 'The port of the HTTP intake, apart from the health and metrics port; `0` picks a free one.'),
    token: setting(
      'VIGIL_INTAKE_TOKEN',
      z.string().min(24, 'at least 24 characters').max(512).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').optional(),
      '24–512 printable ASCII characters',
      'The shared token the gateway sends as `Authorization: Bearer <token>`. Setting it runs the intake in `vigil run`; `vigil intake` runs it alone. Never logged.',
    ),
    topic: setting('VIGIL_INTAKE_TOPIC', name.default('vigil.raw.kong'), NAME, 'The raw topic the intake produces each accepted Kong log record to, for `vigil adapt --format kong`.'),
    maxBodyBytes: setting(
      'VIGIL_INTAKE_MAX_BODY_BYTES',
      int(1024, 64 * 1024 * 1024).default(8 * 1024 * 1024),
      '1024–67108864',
      'A larger request body is refused with 413 before it is read further. Each record must also fit in `VIGIL_MAX_MESSAGE_BYTES`.',
    ),
    maxBodiesBytes: setting(
      'VIGIL_INTAKE_MAX_BODIES_BYTES',
      int(1024, 1024 * 1024 * 1024).default(64 * 1024 * 1024),
      '1024–1073741824',
      'The bytes of all request bodies the intake reads and produces at once; a body that would pass it is answered 503 with `Retry-After`, which the gateway retries (see [gateways/kong-http-log.md](gateways/kong-http-log.md#limits)). At least `VIGIL_INTAKE_MAX_BODY_BYTES` is allowed. Parsing a body holds about four and a half times its bytes for a moment.',
    ),
    requestsPerSecond: setting(
      'VIGIL_INTAKE_REQUESTS_PER_SECOND',
      int(1, 100_000).default(50),
      '1–100000',
      'The steady rate of authenticated requests the intake takes; beyond it and the burst, it answers 429 with `Retry-After`.',
    ),
    burst: setting('VIGIL_INTAKE_BURST', int(1, 100_000).default(100), '1–100000', 'How many requests above the steady rate the intake takes at once (the token bucket’s size).'),
  },
  adapt: {
    service: setting(
      'VIGIL_ADAPT_SERVICE',
      label.optional(),
      '1–256 characters',
      'The `source.service` of every event `vigil adapt` builds from gateway logs, e.g. `edge-kong-eu`. Required by `vigil adapt` (see [gateways/README.md](gateways/README.md)).',
    ),
    kind: setting('VIGIL_ADAPT_SOURCE_KIND', z.enum(['gateway', 'service']).default('gateway'), '`gateway`, `service`', 'The `source.kind` of the events `vigil adapt` builds.'),
    environment: setting('VIGIL_ADAPT_ENVIRONMENT', label.optional(), '1–256 characters', 'The `source.environment` of the events `vigil adapt` builds, e.g. `production`.'),
    instance: setting('VIGIL_ADAPT_INSTANCE', label.optional(), '1–256 characters', 'The `source.instance` of an event whose record names no host of its own (Kong logs none; APISIX logs its hostname).'),
    groups: setting(
      'VIGIL_ADAPT_GROUPS',
      adaptGroups.optional(),
      'a JSON object: `routes`, `services`, `apis`, `tags` (each name → group) and `default`',
      'The policy group of each gateway route, service, API or tag: exact route first, then service, API, tag and `default`. Required by `vigil adapt`; a record that no entry maps (any record, with or without a policy event) is dead-lettered as `adapter_unmapped` (see [gateways/README.md](gateways/README.md#groups)).',
    ),
    kongUserHeader: setting(
      'VIGIL_ADAPT_KONG_USER_HEADER',
      flag.default(false),
      '`on`, `off`',
      'Take Kong’s `X-Authenticated-Userid` request header as the user of a request a credential authenticated. Only the oauth2 plugin sets it (and clears a client’s copy); turn it on only where oauth2 authenticates every route, or where a plugin clears the header first (see [gateways/kong.md](gateways/kong.md#the-user)).',
    ),
    apisixAnonymousConsumers: setting(
      'VIGIL_ADAPT_APISIX_ANONYMOUS_CONSUMERS',
      commaList.pipe(z.array(z.string().min(1).max(256))).default(['anonymous']),
      'comma-separated consumer names',
      'The APISIX consumers set as `anonymous_consumer` on key-auth, jwt-auth, basic-auth or hmac-auth: a request carrying one gets no authentication pass (APISIX logs it like any consumer) (see [gateways/apisix.md](gateways/apisix.md#the-anonymous-consumer)).',
    ),
    envoyClientIp: setting(
      'VIGIL_ADAPT_ENVOY_CLIENT_IP',
      z.enum(['remote', 'xff']).default('remote'),
      '`remote`, `xff`',
      'Where `vigil adapt --format envoy` takes `client.ip` from: `remote`, Envoy’s `downstream_remote_address` (already resolved through its own X-Forwarded-For trust), or `xff`, the X-Forwarded-For entry the load balancer in front appended (the rightmost, past the one Envoy appended for its physical peer, `downstream_direct_remote_address`), for an Envoy behind a load balancer that does not trust XFF itself (entries further left are the client’s own: see [gateways/envoy.md](gateways/envoy.md#fields-filled)).',
    ),
    derivedPolicies: setting(
      'VIGIL_ADAPT_DERIVED_POLICIES',
      derivedPolicies.default('all'),
      `\`all\`, \`none\`, or a comma-separated list of ${POLICY_KINDS.map((kind) => `\`${kind}\``).join(', ')}`,
      'The policy kinds whose derived events (`labels.derived: status`: a 401, 403 or 429 no gateway plugin proved) `vigil adapt` builds: `all`, `none`, or a list such as `authz,rate_limit`. Leave out a kind a service behind the gateway reports itself through the SDK, which would otherwise be counted twice; proven policy events and invocations are built whatever it says, and the events dropped are counted by kind (`derivedDroppedByKind` in its counters; see [gateways/README.md](gateways/README.md#settings)).',
    ),
    consumerGroup: setting('VIGIL_ADAPT_CONSUMER_GROUP', name.optional(), NAME, 'The consumer group of `vigil adapt` on its raw topic; unset means `vigil-adapt-<format>-<topic>`, one per raw topic (before 6 December 2026 `vigil-adapt-<format>`, whose offsets on the topic it takes over).'),
  },
  shutdownTimeoutMs: setting(
    'VIGIL_SHUTDOWN_TIMEOUT_MS',
    int(1000, 600_000).default(30_000),
    '1000–600000',
    'How long `vigil run` may take to stop on SIGTERM or SIGINT (finish and commit the chunk in hand, drain the notifier); past it, it exits with 1 (see [operations.md](operations.md#shutdown)).',
  ),
  heapGrowthPercent: setting(
    'VIGIL_HEAP_GROWTH_PERCENT',
    int(0, 300).default(75),
    '0–300; `0` leaves V8 its own',
    'How far V8 lets the heap of `vigil run` (and `vigil adapt`, `vigil intake`) grow past what the last full collection kept, in percent, before it collects again (V8\'s `--heap-growing-percent`, set when the process starts; V8 refuses it in `NODE_OPTIONS`). Set only under a heap limit of 2 GB or more, where V8 would let the heap grow up to fourfold; under a smaller limit V8\'s own growth is tighter and is kept, as is a `--heap-growing-percent` on Node\'s command line. Lower holds less memory for more collecting; `0` leaves V8\'s rule (see [operations.md](operations.md#memory-the-heap-growth-and-the-heap-limit)).',
  ),
  consumerMaxRestarts: setting(
    'VIGIL_CONSUMER_MAX_RESTARTS',
    int(0, 100).default(5),
    '0–100',
    'How many times within 10 minutes a crashed Kafka consumer is restarted, with backoff, before `vigil run` gives up and exits with 1 (see [operations.md](operations.md#no-silent-stall)).',
  ),
  logLevel: setting(
    'LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    '`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`',
    'The minimum log level. Dead letters are logged one by one at `debug`.',
  ),
  risk: {
    threshold: setting(
      'VIGIL_RISK_THRESHOLD',
      int(1, 1_000_000).default(100),
      '1–1000000',
      'An entity (user, consumer, IP) whose combined risk reaches this score raises one `risk-threshold` detection, listing what added up (see [risk.md](risk.md)).',
    ),
    halfLifeMs: setting(
      'VIGIL_RISK_HALF_LIFE_MS',
      int(60_000, 30 * 86_400_000).default(21_600_000),
      '60000–2592000000',
      'An entity’s risk score halves in this much event time (see [risk.md](risk.md#decay)).',
    ),
    scoreLow: setting('VIGIL_RISK_SCORE_LOW', int(0, 1_000_000).default(25), '0–1000000', 'Risk points a low-severity detection adds to each entity in its key (see [risk.md](risk.md)).'),
    scoreMedium: setting('VIGIL_RISK_SCORE_MEDIUM', int(0, 1_000_000).default(50), '0–1000000', 'Risk points a medium-severity detection adds to each entity in its key.'),
    scoreHigh: setting('VIGIL_RISK_SCORE_HIGH', int(0, 1_000_000).default(75), '0–1000000', 'Risk points a high-severity detection adds to each entity in its key.'),
    scoreCritical: setting('VIGIL_RISK_SCORE_CRITICAL', int(0, 1_000_000).default(100), '0–1000000', 'Risk points a critical-severity detection adds to each entity in its key.'),
    pagingSeverity: setting(
      'VIGIL_RISK_PAGING_SEVERITY',
      z.enum(SEVERITIES).default('medium'),
      '`low`, `medium`, `high`, `critical`',
      'The least severity of a detection that becomes an alert on its own; a less severe one only adds to its entities’ risk (see [risk.md](risk.md#what-pages)).',
    ),
    severity: setting(
      'VIGIL_RISK_SEVERITY',
      z.enum(SEVERITIES).default('high'),
      '`low`, `medium`, `high`, `critical`',
      'The severity of the `risk-threshold` detection an entity raises when its risk crosses the threshold.',
    ),
  },
} as const;

type DeepReadonly<T> = T extends readonly (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
type Value<S> = S extends Setting<infer Z> ? DeepReadonly<Exclude<z.output<Z>, undefined>> : never;
type Optional<T> = { [K in keyof T]: T[K] extends Setting<infer Z> ? (undefined extends z.output<Z> ? K : never) : never }[keyof T];
type Flatten<T> = { [K in keyof T]: T[K] };
/** The configuration a table of settings gives: a setting without a default is an optional key. */
type ConfigOf<T> = Flatten<
  { readonly [K in Exclude<keyof T, Optional<T>>]: T[K] extends Setting ? Value<T[K]> : ConfigOf<T[K]> } & { readonly [K in Optional<T>]?: Value<T[K]> }
>;

/** The validated, frozen configuration passed to every component; its shape is {@link settings}'. */
export type Config = ConfigOf<typeof settings>;

function isSetting(value: unknown): value is Setting {
  return typeof value === 'object' && value !== null && 'env' in value && 'schema' in value;
}

/** Every setting with its path in {@link Config}, in declaration order. */
export function listSettings(table: object = settings, path: readonly string[] = []): { path: string; setting: Setting }[] {
  return Object.entries(table).flatMap(([key, value]: [string, unknown]) =>
    isSetting(value) ? [{ path: [...path, key].join('.'), setting: value }] : listSettings(value as object, [...path, key]),
  );
}

/**
 * What ioredis would not take from a `redis://` URL it was given: a port that is no port (the URL
 * parser refuses it, or ioredis connects elsewhere) and a database that is no whole number (it
 * sends `SELECT NaN` and fails at start with a stack trace).
 */
function redisUrlProblems(context: { value: string; issues: unknown[] }): void {
  const problem = (message: string): void => {
    context.issues.push({ code: 'custom', message, input: context.value });
  };
  let url: URL;
  try {
    url = new URL(context.value);
  } catch {
    problem('not a URL (expected redis://host:port, the port 1–65535)');
    return;
  }
  if (url.hostname === '') problem('no host (expected redis://host:port)');
  if (url.port === '0') problem('port 0 (expected 1–65535)');
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,5}$/.test(url.pathname)) {
    problem(`database "${decoded(url.pathname.slice(1)) ?? url.pathname.slice(1)}" is not a whole number (expected redis://host:port/0)`);
  }
  // ioredis turns every query parameter into a client option: `?password=` logged in, out of
  // sight of the checks here and of the redaction of logged URLs. Credentials and TLS have
  // settings of their own; other options (`?family=6` on an IPv6-only network) are ioredis's.
  const credentials = [...url.searchParams.keys()].filter((key) => /^(password|username|user|tls|sentinel)/i.test(key));
  if (credentials.length > 0) {
    problem(`holds ${credentials.map((key) => `"${key}"`).join(', ')} in its query string: set REDIS_PASSWORD, REDIS_USERNAME and REDIS_TLS_CA_FILE instead, and rediss:// for TLS`);
  }
  // ioredis decodes the user info and throws "URI malformed" at connect, naming nothing.
  for (const [part, text] of [['user', url.username], ['password', url.password]] as const) {
    if (text !== '' && decoded(text) === undefined) problem(`its ${part} holds a malformed %-escape (a literal % is written %25)`);
  }
}

/** `text` with its %-escapes decoded, or undefined when one is malformed. */
function decoded(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** Whether a URL's scheme is `scheme` (a scheme is case-insensitive: `HTTPS://` is https). */
function hasScheme(url: string, scheme: string): boolean {
  return url.toLowerCase().startsWith(`${scheme}://`);
}

/** Whether a URL carries a user or a password (`redis://user:pw@host`). */
function hasUserInfo(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.username !== '' || parsed.password !== '';
  } catch {
    return false;
  }
}

/**
 * Every topic setting. Each needs a topic of its own, for Vigil reads topics it writes: a dead
 * letter written to an event topic was read back, dead-lettered again and written back, for ever;
 * an outbox that is the detections topic was read by the alerter as detections.
 */
const TOPIC_SETTINGS: readonly (readonly [variable: string, topicOf: (config: Config) => string])[] = [
  ['VIGIL_TOPIC_POLICY', (config) => config.topics.policy],
  ['VIGIL_TOPIC_INVOCATION', (config) => config.topics.invocation],
  ['VIGIL_TOPIC_DEVICE', (config) => config.topics.device],
  ['VIGIL_TOPIC_DEADLETTER', (config) => config.topics.deadLetter],
  ['VIGIL_TOPIC_DETECTIONS', (config) => config.topics.detections],
  ['VIGIL_TOPIC_NOTIFICATIONS', (config) => config.alerting.notificationTopic],
  ['VIGIL_TOPIC_NOTIFICATION_DEADLETTER', (config) => config.alerting.notificationDeadLetterTopic],
  ['VIGIL_INTAKE_TOPIC', (config) => config.intake.topic],
];

/**
 * The settings that name `topic` (besides the intake's, when `exceptIntake`): a raw topic
 * `vigil adapt` reads must be none of Vigil's own, since it writes to the event and dead-letter topics.
 */
export function topicSettingsNaming(config: Config, topic: string, exceptIntake = false): string[] {
  return TOPIC_SETTINGS.filter(([variable, topicOf]) => topicOf(config) === topic && !(exceptIntake && variable === 'VIGIL_INTAKE_TOPIC')).map(([variable]) => variable);
}

/** One problem for each topic named by two settings or more, naming them all. */
function sharedTopics(config: Config): string[] {
  const settingsOf = new Map<string, string[]>();
  for (const [variable, topicOf] of TOPIC_SETTINGS) settingsOf.set(topicOf(config), [...(settingsOf.get(topicOf(config)) ?? []), variable]);
  return [...settingsOf]
    .filter(([, variables]) => variables.length > 1)
    .map(
      ([topic, variables]) =>
        `${variables.slice(0, -1).join(', ')} and ${variables.at(-1) ?? ''} are ${variables.length > 2 ? 'all' : 'both'} ${topic}: give each a topic of its own (what goes to one would be read as the other's: a dead letter, say, back into the event topic it came from, for ever)`,
    );
}

/** Addresses that listen on every interface: Node's `::` takes IPv4 too, unless told otherwise. */
const ANY_IPV6 = new Set(['::', '::0', '0:0:0:0:0:0:0:0']);

/**
 * Whether two listeners on one port would take the same address: the same host, or either on
 * every interface (`0.0.0.0` takes every IPv4 address, not an IPv6 one). Host names are not
 * resolved: two different names are taken to be apart.
 */
function listenersOverlap(first: string, second: string): boolean {
  const [a, b] = [first.toLowerCase(), second.toLowerCase()];
  if (a === b || ANY_IPV6.has(a) || ANY_IPV6.has(b)) return true;
  if (a === '0.0.0.0') return !isIPv6(b);
  if (b === '0.0.0.0') return !isIPv6(a);
  return false;
}

/** Rules that tie settings together, checked once every setting is valid on its own. */
const INVARIANTS: readonly ((config: Config) => string | readonly string[] | undefined)[] = [
  ({ kafka }) =>
    kafka.sasl.mechanism !== 'none' && (kafka.sasl.username === undefined || kafka.sasl.password === undefined)
      ? `KAFKA_SASL_MECHANISM is ${kafka.sasl.mechanism}: set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD too`
      : kafka.sasl.mechanism === 'none' && (kafka.sasl.username !== undefined || kafka.sasl.password !== undefined)
        ? 'KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is none (its default): the credentials would not be sent; set the mechanism the brokers use (plain, scram-sha-256, scram-sha-512)'
        : undefined,
  ({ elasticsearch }) =>
    (elasticsearch.username === undefined) !== (elasticsearch.password === undefined)
      ? 'ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together: set both or neither'
      : elasticsearch.username !== undefined && elasticsearch.apiKey !== undefined
        ? 'ELASTICSEARCH_API_KEY and ELASTICSEARCH_USERNAME are both set: choose one way to authenticate'
        : undefined,
  ({ elasticsearch }) =>
    elasticsearch.caFile !== undefined && !hasScheme(elasticsearch.url, 'https') ? 'ELASTICSEARCH_CA_FILE is set but ELASTICSEARCH_URL is not https://' : undefined,
  ({ redis }) =>
    redis.cluster === undefined && hasUserInfo(redis.url) && (redis.username !== undefined || redis.password !== undefined)
      ? 'REDIS_URL holds a user or a password and REDIS_USERNAME or REDIS_PASSWORD is set too: the URL’s would win without a word; keep the credentials in REDIS_USERNAME and REDIS_PASSWORD only'
      : undefined,
  // As for Redis: the client takes the URL's user over ELASTICSEARCH_USERNAME, and an API key over the URL's user.
  ({ elasticsearch }) =>
    !hasUserInfo(elasticsearch.url)
      ? undefined
      : elasticsearch.apiKey !== undefined
        ? 'ELASTICSEARCH_URL holds a user or a password and ELASTICSEARCH_API_KEY is set too: the API key would win without a word; choose one way to authenticate, and keep credentials out of the URL'
        : elasticsearch.username !== undefined || elasticsearch.password !== undefined
          ? 'ELASTICSEARCH_URL holds a user or a password and ELASTICSEARCH_USERNAME or ELASTICSEARCH_PASSWORD is set too: the URL’s would win without a word; keep the credentials in ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD only'
          : undefined,
  sharedTopics,
  // The intake runs wherever its token is set (`vigil run`, `vigil intake`), beside the health and
  // metrics endpoints: on one address and port it failed at the end of the start, calling its
  // own health server "another process", after the consumers had joined their groups.
  ({ http, intake }) =>
    intake.token !== undefined && http.port !== 0 && http.port === intake.port && listenersOverlap(http.host, intake.host)
      ? `VIGIL_HTTP_PORT and VIGIL_INTAKE_PORT are both ${http.port}, on ${http.host === intake.host ? http.host : `${http.host} and ${intake.host}`}, and the intake runs (VIGIL_INTAKE_TOKEN is set): the second to listen would find the port taken; give each a port of its own`
      : undefined,
  ({ redis }) =>
    redis.caFile === undefined
      ? undefined
      : redis.cluster === undefined
        ? !hasScheme(redis.url, 'rediss')
          ? 'REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss://'
          : undefined
        : !redis.cluster.tls
          ? 'REDIS_TLS_CA_FILE is set but REDIS_CLUSTER_NODES are not rediss://'
          : undefined,
  ...(
    [
      ['KAFKA_TLS_CA_FILE', (config: Config) => config.kafka.caFile],
      ['ELASTICSEARCH_CA_FILE', (config: Config) => config.elasticsearch.caFile],
      ['REDIS_TLS_CA_FILE', (config: Config) => config.redis.caFile],
      ['VIGIL_GEOIP_DATABASE', (config: Config) => config.geo.database],
    ] as const
  ).map(([variable, fileOf]) => (config: Config) => {
    const file = fileOf(config);
    if (file === undefined) return undefined;
    const problem = fileProblem(file, variable !== 'VIGIL_GEOIP_DATABASE');
    return problem === undefined ? undefined : `${variable}: ${problem}`;
  }),
];

/**
 * What keeps `file` from being used: unreadable, a directory (a secret mounted as a folder), or,
 * for a CA, no PEM certificate in it (a DER file or a key). Each failed later, at the client's
 * `readFileSync` or its TLS handshake, naming no setting.
 */
function fileProblem(file: string, certificate: boolean): string | undefined {
  try {
    accessSync(file, constants.R_OK);
    if (statSync(file).isDirectory()) return `${file} is a directory, not a file`;
  } catch {
    return `cannot read ${file}`;
  }
  if (!certificate) return undefined;
  // A CA bundle is small; its first 64 KiB hold a certificate if it has one.
  const head = Buffer.alloc(65_536);
  let length = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      length = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return `cannot read ${file}`;
  }
  const text = head.subarray(0, length).toString('latin1');
  return /-----BEGIN (TRUSTED )?CERTIFICATE-----/.test(text) ? undefined : `no PEM certificate in ${file} (expected -----BEGIN CERTIFICATE-----; convert a DER file with openssl x509 -inform der)`;
}

/**
 * Secrets shorter than this are not looked for in log lines: a value of a few characters would
 * blank every line holding them. The fields redacted by name (REDACT_PATHS) are, whatever its length.
 */
export const SCRUBBED_SECRET_MIN_LENGTH = 6;

/**
 * The parts of a URL that may be a credential: its path (a Slack webhook's path is its token),
 * each long path segment, each query value and the user info. What a receiver may quote back.
 */
export function urlSecrets(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  // The path only when a segment is long enough to be a token (`/v2/enqueue` is no secret, and
  // would be blanked from every log line); query values of 8 characters or more.
  const segments = parsed.pathname.split('/').filter((segment) => segment.length >= 12);
  const values = [...(segments.length > 0 ? [parsed.pathname, ...segments] : []), ...[...parsed.searchParams.values()].filter((value) => value.length >= 8), parsed.username, parsed.password];
  return values.filter((value) => value.length >= SCRUBBED_SECRET_MIN_LENGTH);
}

/** The password of a URL's user info (`https://user:pw@host`), as written and decoded; none without one. */
function urlPassword(url: string): string[] {
  let password: string;
  try {
    password = new URL(url).password;
  } catch {
    return [];
  }
  if (password === '') return [];
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // A malformed escape: only the form as written can appear.
  }
  return [...new Set([password, decoded])];
}

/** Every secret value in a configuration, with the setting that holds it. */
function namedSecrets(config: Config): [setting: string, value: string][] {
  const named: [string, string | undefined][] = [
    ['KAFKA_SASL_PASSWORD', config.kafka.sasl.password],
    ['ELASTICSEARCH_API_KEY', config.elasticsearch.apiKey],
    ['ELASTICSEARCH_PASSWORD', config.elasticsearch.password],
    ['REDIS_PASSWORD', config.redis.password],
    ['VIGIL_INTAKE_TOKEN', config.intake.token],
    // A password in a store's URL is as secret as the setting of its own (ioredis puts it on an AUTH error).
    ...urlPassword(config.elasticsearch.url).map((value): [string, string] => ['ELASTICSEARCH_URL', value]),
    ...urlPassword(config.redis.url).map((value): [string, string] => ['REDIS_URL', value]),
  ];
  for (const [key, value] of destinationSecrets(config.alerting.destinations)) {
    named.push(['VIGIL_ALERT_DESTINATIONS', value]);
    // A receiver's answer may quote the path or the token alone, not the whole URL; its password,
    // however short, is named here (urlSecrets keeps only the long enough).
    if (key === 'url') named.push(...[...urlSecrets(value), ...urlPassword(value)].map((part): [string, string] => ['VIGIL_ALERT_DESTINATIONS', part]));
  }
  return named.filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '');
}

/**
 * Every secret value in a configuration: passwords, API keys, and the destinations' JSON (which
 * holds webhook secrets, routing keys and Slack URLs). The logger blanks them wherever they
 * appear in a log line, whatever the field or error message that carries them; those shorter
 * than {@link SCRUBBED_SECRET_MIN_LENGTH} are left out (see {@link shortSecretSettings}).
 */
export function secretsOf(config: Config): string[] {
  return namedSecrets(config)
    .map(([, value]) => value)
    .filter((value) => value.length >= SCRUBBED_SECRET_MIN_LENGTH);
}

/** The settings holding a secret too short for {@link secretsOf} to blank from a whole log line. */
export function shortSecretSettings(config: Config): string[] {
  return [...new Set(namedSecrets(config).filter(([, value]) => value.length < SCRUBBED_SECRET_MIN_LENGTH).map(([setting]) => setting))];
}

/** What `vigil run`, `adapt` and `intake` say at start of {@link shortSecretSettings}. */
export function shortSecretsWarning(settings: readonly string[]): string {
  return `${settings.join(', ')} ${settings.length === 1 ? 'holds a secret' : 'hold secrets'} shorter than ${SCRUBBED_SECRET_MIN_LENGTH} characters, which log lines are not searched for: only fields redacted by name (a password, a token) hide it, and an error message or a URL quoting it shows it; use a longer one`;
}

/** The keys of VIGIL_ALERT_DESTINATIONS whose values are credentials (a Slack URL is one). */
const DESTINATION_SECRET_KEYS: ReadonlySet<string> = new Set(['secret', 'routingKey', 'url']);

/**
 * The strings under {@link DESTINATION_SECRET_KEYS} at any depth of the destinations' JSON, as
 * parsed: the text may spell a value otherwise (`\u0026` for `&`, as Go's encoding/json and
 * Helm's toJson write it; `\/` for `/`, as some encoders do; `\"` in a secret), and a log line
 * shows the value.
 * Text that is no JSON (refused when the alerting starts, after the logger is made) is searched
 * for `"key": "value"` as written.
 */
function destinationSecrets(json: string): [key: string, value: string][] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return [...json.matchAll(/"(secret|routingKey|url)"\s*:\s*"([^"]+)"/g)].map(([, key = '', value = '']) => [key, value]);
  }
  const found: [string, string][] = [];
  const visit = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (typeof value === 'string') {
        if (DESTINATION_SECRET_KEYS.has(key)) found.push([key, value]);
      } else {
        visit(value);
      }
    }
  };
  visit(parsed);
  return found;
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
  const problems: string[] = [];
  const build = (table: object): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(table) as [string, unknown][]) {
      if (!isSetting(value)) {
        out[key] = build(value as object);
        continue;
      }
      const raw = env[value.env];
      const parsed = value.schema.safeParse(raw === '' ? undefined : raw);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) problems.push(`${[value.env, ...issue.path].join('.')}: ${issue.message}`);
      } else if (parsed.data !== undefined) {
        out[key] = parsed.data;
      }
    }
    return out;
  };
  const config = build(settings) as Config;
  if (problems.length === 0) problems.push(...INVARIANTS.flatMap((check) => check(config) ?? []));
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/**
 * `VIGIL_*` variables read by the project's scripts rather than by Vigil itself: the stack script
 * (docs/local-stack.md), the fault and fuzz suites, docker-compose.yml's adapt service. Not
 * settings, and not worth a warning.
 */
const TOOL_VARIABLES: readonly string[] = [
  'VIGIL_CACHE_DIR',
  'VIGIL_STATE_DIR',
  'VIGIL_ES_HEAP',
  'VIGIL_ES_USER',
  'VIGIL_ES_VERSION',
  'VIGIL_KAFKA_HEAP',
  'VIGIL_KAFKA_VERSION',
  'VIGIL_CLUSTER_REDIS_PORTS',
  'VIGIL_SECURE_ES_PORT',
  'VIGIL_SECURE_KAFKA_PORT',
  'VIGIL_SECURE_REDIS_PORT',
  'VIGIL_ADAPT_FORMAT',
  'VIGIL_ADAPT_TOPIC',
];
const TOOL_PREFIXES: readonly string[] = ['VIGIL_FAULTS_', 'VIGIL_FUZZ_'];

/** A `VIGIL_*` variable Vigil does not read, with the setting it was likely meant to be. */
export interface UnknownVariable {
  name: string;
  suggestion?: string;
  /** Why a setting Vigil no longer reads was retired, and what does its work now. */
  retired?: string;
}

/** Settings Vigil read once and reads no more, with what replaced them: named apart from misspellings. */
const RETIRED_VARIABLES: Readonly<Record<string, string>> = {
  VIGIL_ALERT_SUPPRESS_MS: 'retired: the quiet period, VIGIL_ALERT_RESOLVE_AFTER_MS, is also the join window; docs/alerting.md',
};

/**
 * The `VIGIL_*` variables of an environment that are no setting (a misspelt name would otherwise
 * leave its setting at the default without a word), each with the nearest setting's name when one
 * is a few edits away. Variables without the prefix can't be told from other programs' and are
 * not looked at.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): UnknownVariable[] {
  const names = listSettings().map(({ setting }) => setting.env);
  const known = new Set([...names, ...TOOL_VARIABLES]);
  return Object.keys(env)
    .filter((name) => name.startsWith('VIGIL_') && !known.has(name) && !TOOL_PREFIXES.some((prefix) => name.startsWith(prefix)))
    .sort()
    .map((name) => {
      // The store settings have no prefix: VIGIL_KAFKA_BROKERS is KAFKA_BROKERS given one.
      const retired = RETIRED_VARIABLES[name];
      if (retired !== undefined) return { name, retired };
      const unprefixed = name.slice('VIGIL_'.length);
      // Else a few edits, and fewer than a quarter of the name: VIGIL_DETECTON, not VIGIL_FOO.
      const suggestion = names.includes(unprefixed) ? unprefixed : nearest(name, names, Math.min(3, Math.floor(name.length / 4)));
      return suggestion === undefined ? { name } : { name, suggestion };
    });
}

/** One warning line's text for {@link unknownVariables}. */
export function unknownVariablesWarning(unknown: readonly UnknownVariable[]): string {
  const named = unknown.map(({ name, suggestion, retired }) => (retired !== undefined ? `${name} (${retired})` : suggestion === undefined ? name : `${name} (did you mean ${suggestion}?)`));
  return `ignoring ${unknown.length === 1 ? 'a variable' : `${unknown.length} variables`} Vigil does not read: ${named.join(', ')}; see docs/configuration.md`;
}

/** A setting's default as the environment would spell it (`''` when it has none). */
export function defaultText(item: Setting): string {
  const value: unknown = item.schema.parse(undefined);
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return typeof value === 'number' || typeof value === 'string' ? String(value) : JSON.stringify(value);
}

const GENERATED = '<!-- generated from platform/config.ts by `npm run config:docs`; edit the settings there -->';

/** The `.env.example` file: every variable with its default, each under its first sentence. */
/**
 * Settings written commented out in `.env.example`: the container image sets them (to listen on
 * every interface), and a file copied from the example and given to `docker run --env-file` would
 * put back the host's `127.0.0.1`, where nothing outside the container reaches it.
 */
const SET_BY_THE_IMAGE = new Set(['VIGIL_HTTP_HOST', 'VIGIL_INTAKE_HOST']);

export function renderEnvExample(): string {
  const lines = ['# Every variable Vigil reads, with its default. Blank means "use the default".', '# Generated from platform/config.ts (npm run config:docs); see docs/configuration.md.', ''];
  let section = '';
  for (const { path, setting: item } of listSettings()) {
    const top = path.split('.')[0] ?? '';
    if (top !== section && lines.at(-1) !== '') lines.push('');
    section = top;
    // Links lead nowhere from a comment: "(see [x](x.md))" goes, any other link keeps its text.
    const sentence = firstSentence(item.doc.replace(/\s*\(see \[[^\]]*\]\([^)]*\)\)/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'));
    if (SET_BY_THE_IMAGE.has(item.env)) {
      lines.push(`# ${sentence.replace(/`/g, '')}`, `# Commented out: the container image sets 0.0.0.0, which a value here would replace.`, `# ${item.env}=${defaultText(item)}`);
    } else {
      lines.push(`# ${sentence.replace(/`/g, '')}`, `${item.env}=${defaultText(item)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The variables as a Markdown table: `full` (docs/configuration.md) has the allowed values and
 * the whole text with its links; `short` (the README) has the first sentence, links resolved
 * from the repository root.
 */
export function renderConfigTable(form: 'full' | 'short'): string {
  const rows = listSettings().map(({ setting: item }) => {
    const fallback = defaultText(item);
    const shown = fallback === '' ? 'unset' : `\`${fallback}\``;
    if (form === 'full') return `| \`${item.env}\` | ${shown} | ${item.allowed} | ${item.doc} |`;
    return `| \`${item.env}\` | ${shown} | ${firstSentence(item.doc).replace(/\]\(((?:[a-z-]+\/)*[a-z-]+\.md)/g, '](docs/$1')} |`;
  });
  const header = form === 'full' ? ['| variable | default | allowed | meaning |', '|---|---|---|---|'] : ['| variable | default | meaning |', '|---|---|---|'];
  return [GENERATED, '', ...header, ...rows].join('\n');
}

/** Up to the first full stop that ends a sentence: not the one of "e.g." or "i.e.". */
function firstSentence(text: string): string {
  return text.split(/(?<=\.)(?<!\b(?:e\.g|i\.e)\.)\s(?=[A-Z`])/)[0] ?? text;
}

/** Replaces the generated table between the marker and the next blank line after it. */
export function replaceGeneratedTable(document: string, table: string): string {
  const start = document.indexOf(GENERATED);
  if (start < 0) throw new Error(`the marker ${GENERATED} is missing`);
  const end = document.indexOf('\n\n', document.indexOf('|---|', start));
  return `${document.slice(0, start)}${table}${end < 0 ? '\n' : document.slice(end)}`;
}
