import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, VigilError, listSettings, loadConfig, renderConfigTable, renderEnvExample, scrubSecrets, secretsOf, shortSecretSettings, shortSecretsWarning, unknownVariables, unknownVariablesWarning, type Config } from '../../platform';

/** A PEM certificate's first line, built so that this file (a CA candidate in a test below) holds none. */
const PEM_HEADER = ['-----BEGIN', 'CERTIFICATE-----'].join(' ');

/** The ConfigError a load throws; fails the test when it throws anything else or nothing. */
function configErrorOf(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const DEFAULTS: Config = {
  kafka: { brokers: ['127.0.0.1:9092'], clientId: 'vigil', sasl: { mechanism: 'none' }, tls: false },
  elasticsearch: { url: 'http://127.0.0.1:9200' },
  topics: {
    policy: 'vigil.events.policy',
    invocation: 'vigil.events.invocation',
    device: 'vigil.events.device',
    deadLetter: 'vigil.deadletter',
    detections: 'vigil.detections',
    partitions: 3,
    replication: 1,
  },
  consumerGroup: 'vigil-ingest',
  recentIds: 20_000,
  indices: { prefix: 'vigil', shards: 1, replicas: 0, eventOriginal: false },
  limits: { maxMessageBytes: 262_144, maxJsonDepth: 16 },
  fetch: { maxBytesPerPartition: 262_144, maxBytes: 52_428_800, ahead: true },
  bulk: { maxDocs: 1000, maxBytes: 2_097_152, flushMs: 0, concurrency: 2 },
  redis: { url: 'redis://127.0.0.1:6379', prefix: 'vigil', commandTimeoutMs: 10_000 },
  detection: { enabled: true, watch: true, allowedLatenessMs: 300_000, stateGraceMs: 900_000, correlationWaitMs: 0, alignEventTime: true, eventTimeSkewMs: 60_000, eventTimeIdleMs: 5_000 },
  geo: {},
  alerting: {
    group: 'vigil-alerter',
    notificationDeadLetterTopic: 'vigil.notifications.deadletter',
    notificationTopic: 'vigil.notifications',
    notifierGroup: 'vigil-notifier',
    notifierRetryForMs: 900_000,
    resolveAfterMs: 900_000,
    destinations: '[]',
    latenessMs: 60_000,
    pageWithinMs: 21_600_000,
    stormMax: 5,
    stormWindowMs: 600_000,
    stormSpares: 'critical',
    inhibition: 'default',
  },
  http: { host: '127.0.0.1', port: 9464 },
  pipelineStats: { intervalMs: 30_000 },
  intake: { host: '127.0.0.1', port: 9465, topic: 'vigil.raw.kong', maxBodyBytes: 8_388_608, maxBodiesBytes: 67_108_864, requestsPerSecond: 50, burst: 100 },
  adapt: { kind: 'gateway', kongUserHeader: false, apisixAnonymousConsumers: ['anonymous'], envoyClientIp: 'remote', derivedPolicies: 'all' },
  shutdownTimeoutMs: 30_000,
  heapGrowthPercent: 75,
  consumerMaxRestarts: 5,
  logLevel: 'info',
  risk: { threshold: 100, halfLifeMs: 21_600_000, scoreLow: 25, scoreMedium: 50, scoreHigh: 75, scoreCritical: 100, pagingSeverity: 'medium', severity: 'high' },
};

describe('loadConfig', () => {
  it('gives every default for an empty environment', () => {
    expect(loadConfig({})).toStrictEqual(DEFAULTS);
  });

  it('treats empty strings as unset', () => {
    const blanks = Object.fromEntries(
      ['KAFKA_BROKERS', 'KAFKA_CLIENT_ID', 'ELASTICSEARCH_URL', 'ELASTICSEARCH_API_KEY', 'VIGIL_TOPIC_PARTITIONS', 'VIGIL_INDEX_PREFIX', 'LOG_LEVEL'].map(
        (name) => [name, ''],
      ),
    );
    expect(loadConfig(blanks)).toStrictEqual(DEFAULTS);
  });

  it('ignores variables it does not know', () => {
    expect(loadConfig({ PATH: '/usr/bin', VIGIL_UNKNOWN: 'x' })).toStrictEqual(DEFAULTS);
  });

  it('reads every variable it is given', () => {
    const config = loadConfig({
      KAFKA_BROKERS: ' kafka-1:9092, kafka-2:9093 ,',
      KAFKA_CLIENT_ID: 'vigil-test',
      ELASTICSEARCH_URL: 'https://es.internal:9243',
      ELASTICSEARCH_API_KEY: 'c2VjcmV0',
      VIGIL_TOPIC_POLICY: 'p',
      VIGIL_TOPIC_INVOCATION: 'i',
      VIGIL_TOPIC_DEVICE: 'd',
      VIGIL_TOPIC_DEADLETTER: 'dl',
      VIGIL_TOPIC_PARTITIONS: '12',
      VIGIL_CONSUMER_GROUP: 'group-1',
      VIGIL_INDEX_PREFIX: 'vigil_test-1',
      VIGIL_INDEX_SHARDS: '2',
      VIGIL_INDEX_REPLICAS: '1',
      VIGIL_EVENT_ORIGINAL: 'on',
      VIGIL_MAX_MESSAGE_BYTES: '2048',
      VIGIL_MAX_JSON_DEPTH: '32',
      VIGIL_BULK_MAX_DOCS: '50',
      VIGIL_BULK_MAX_BYTES: '4096',
      VIGIL_FETCH_MAX_BYTES_PER_PARTITION: '524288',
      VIGIL_FETCH_MAX_BYTES: '8388608',
      VIGIL_FETCH_AHEAD: 'off',
      VIGIL_BULK_FLUSH_MS: '20',
      VIGIL_BULK_CONCURRENCY: '3',
      VIGIL_TOPIC_DETECTIONS: 'det',
      REDIS_URL: 'redis://redis.internal:6380',
      VIGIL_REDIS_PREFIX: 'v2',
      VIGIL_REDIS_COMMAND_TIMEOUT_MS: '2500',
      VIGIL_DETECTION: 'off',
      VIGIL_RULES_PATH: 'rules/a.yaml, rules/extra',
      VIGIL_RULES_WATCH: 'false',
      VIGIL_ALLOWED_LATENESS_MS: '60000',
      VIGIL_STATE_GRACE_MS: '3600000',
      VIGIL_EVENT_TIME_ALIGNMENT: 'off',
      VIGIL_EVENT_TIME_SKEW_MS: '15000',
      VIGIL_EVENT_TIME_IDLE_MS: '2000',
      VIGIL_GEOIP_DATABASE: __filename, // any readable file: its content is checked when Vigil starts
      VIGIL_HTTP_HOST: '0.0.0.0',
      VIGIL_HTTP_PORT: '9100',
      VIGIL_PIPELINE_STATS_INTERVAL_MS: '60000',
      VIGIL_INSTANCE_NAME: 'vigil-eu-1',
      VIGIL_INTAKE_HOST: '0.0.0.0',
      VIGIL_INTAKE_PORT: '9101',
      VIGIL_INTAKE_TOKEN: 'token-of-twenty-four-chars',
      VIGIL_INTAKE_TOPIC: 'raw.kong',
      VIGIL_INTAKE_MAX_BODY_BYTES: '65536',
      VIGIL_INTAKE_MAX_BODIES_BYTES: '1048576',
      VIGIL_INTAKE_REQUESTS_PER_SECOND: '10',
      VIGIL_INTAKE_BURST: '20',
      VIGIL_SHUTDOWN_TIMEOUT_MS: '5000',
      VIGIL_CONSUMER_MAX_RESTARTS: '2',
      VIGIL_ADAPT_SERVICE: 'edge-kong-eu',
      VIGIL_ADAPT_SOURCE_KIND: 'service',
      VIGIL_ADAPT_ENVIRONMENT: 'production',
      VIGIL_ADAPT_INSTANCE: 'kong-1',
      VIGIL_ADAPT_GROUPS: '{"default":"edge"}',
      VIGIL_ADAPT_CONSUMER_GROUP: 'adapt-1',
      VIGIL_ADAPT_KONG_USER_HEADER: 'on',
      VIGIL_ADAPT_APISIX_ANONYMOUS_CONSUMERS: 'guest,anonymous',
      VIGIL_ADAPT_ENVOY_CLIENT_IP: 'xff',
      VIGIL_ADAPT_DERIVED_POLICIES: 'rate_limit,authz',
      LOG_LEVEL: 'debug',
      VIGIL_RISK_THRESHOLD: '80',
      VIGIL_RISK_HALF_LIFE_MS: '3600000',
      VIGIL_RISK_SCORE_LOW: '20',
      VIGIL_RISK_SCORE_MEDIUM: '40',
      VIGIL_RISK_SCORE_HIGH: '60',
      VIGIL_RISK_SCORE_CRITICAL: '80',
      VIGIL_RISK_PAGING_SEVERITY: 'low',
      VIGIL_RISK_SEVERITY: 'critical',
      VIGIL_RECENT_IDS: '0',
      VIGIL_HEAP_GROWTH_PERCENT: '0',
    });
    expect(config).toStrictEqual({
      kafka: { brokers: ['kafka-1:9092', 'kafka-2:9093'], clientId: 'vigil-test', sasl: { mechanism: 'none' }, tls: false },
      elasticsearch: { url: 'https://es.internal:9243', apiKey: 'c2VjcmV0' },
      topics: { policy: 'p', invocation: 'i', device: 'd', deadLetter: 'dl', detections: 'det', partitions: 12, replication: 1 },
      consumerGroup: 'group-1',
      recentIds: 0,
      indices: { prefix: 'vigil_test-1', shards: 2, replicas: 1, eventOriginal: true },
      limits: { maxMessageBytes: 2048, maxJsonDepth: 32 },
      fetch: { maxBytesPerPartition: 524_288, maxBytes: 8_388_608, ahead: false },
      bulk: { maxDocs: 50, maxBytes: 4096, flushMs: 20, concurrency: 3 },
      redis: { url: 'redis://redis.internal:6380', prefix: 'v2', commandTimeoutMs: 2500 },
      detection: {
        enabled: false,
        rulesPaths: ['rules/a.yaml', 'rules/extra'],
        watch: false,
        allowedLatenessMs: 60_000,
        stateGraceMs: 3_600_000,
        correlationWaitMs: 0,
        alignEventTime: false,
        eventTimeSkewMs: 15_000,
        eventTimeIdleMs: 2_000,
      },
      geo: { database: __filename },
      alerting: {
        group: 'vigil-alerter',
        notificationDeadLetterTopic: 'vigil.notifications.deadletter',
        notificationTopic: 'vigil.notifications',
        notifierGroup: 'vigil-notifier',
        notifierRetryForMs: 900_000,
        resolveAfterMs: 900_000,
        destinations: '[]',
        latenessMs: 60_000,
        pageWithinMs: 21_600_000,
        stormMax: 5,
        stormWindowMs: 600_000,
        stormSpares: 'critical',
        inhibition: 'default',
      },
      http: { host: '0.0.0.0', port: 9100 },
      pipelineStats: { intervalMs: 60_000, instance: 'vigil-eu-1' },
      intake: { host: '0.0.0.0', port: 9101, token: 'token-of-twenty-four-chars', topic: 'raw.kong', maxBodyBytes: 65_536, maxBodiesBytes: 1_048_576, requestsPerSecond: 10, burst: 20 },
      adapt: { service: 'edge-kong-eu', kind: 'service', environment: 'production', instance: 'kong-1', groups: { default: 'edge' }, consumerGroup: 'adapt-1', kongUserHeader: true, apisixAnonymousConsumers: ['guest', 'anonymous'], envoyClientIp: 'xff', derivedPolicies: ['rate_limit', 'authz'] },
      shutdownTimeoutMs: 5000,
      heapGrowthPercent: 0,
      consumerMaxRestarts: 2,
      logLevel: 'debug',
      risk: { threshold: 80, halfLifeMs: 3_600_000, scoreLow: 20, scoreMedium: 40, scoreHigh: 60, scoreCritical: 80, pagingSeverity: 'low', severity: 'critical' },
    });
  });

  it('has no apiKey field at all when none is configured', () => {
    expect(loadConfig({}).elasticsearch).not.toHaveProperty('apiKey');
  });

  it('lists every bad variable in one ConfigError, each by name', () => {
    const error = configErrorOf({
      KAFKA_BROKERS: 'no-port',
      ELASTICSEARCH_URL: 'not a url',
      VIGIL_TOPIC_PARTITIONS: 'many',
      VIGIL_INDEX_PREFIX: 'Upper',
      VIGIL_MAX_JSON_DEPTH: '1000',
      LOG_LEVEL: 'verbose',
      VIGIL_TOPIC_POLICY: 'has space',
    });
    const named = ['KAFKA_BROKERS', 'ELASTICSEARCH_URL', 'VIGIL_TOPIC_PARTITIONS', 'VIGIL_INDEX_PREFIX', 'VIGIL_MAX_JSON_DEPTH', 'LOG_LEVEL', 'VIGIL_TOPIC_POLICY'];
    expect(error.issues).toHaveLength(named.length);
    for (const name of named) {
      expect(error.issues.filter((issue) => issue.startsWith(name))).toHaveLength(1);
      expect(error.message).toContain(name);
    }
    expect(error).toBeInstanceOf(VigilError);
    expect(error.code).toBe('config_invalid');
    expect(error.retriable).toBe(false);
  });

  it.each([
    ['KAFKA_BROKERS', ',', /at least one broker/],
    ['KAFKA_BROKERS', 'kafka:9092,kafka', /expected host:port/],
    ['VIGIL_INDEX_PREFIX', '-starts-with-dash', /index name prefix/],
    ['VIGIL_TOPIC_PARTITIONS', '0', /Too small/],
    ['VIGIL_TOPIC_PARTITIONS', '2.5', /expected a whole number/],
    // A blank, hex or exponent is not a number the documentation promised (coerce took them).
    ['VIGIL_HTTP_PORT', ' ', /expected a whole number/],
    ['VIGIL_TOPIC_PARTITIONS', '0x10', /expected a whole number/],
    ['VIGIL_SHUTDOWN_TIMEOUT_MS', '1e3', /expected a whole number/],
    ['KAFKA_BROKERS', '127.0.0.1:99999', /the port is not within 1–65535/],
    ['KAFKA_BROKERS', '127.0.0.1:0', /the port is not within 1–65535/],
    ['ELASTICSEARCH_URL', 'localhost:9200', /expected an http or https URL/],
    ['VIGIL_INDEX_REPLICAS', '11', /Too big/],
    ['VIGIL_EVENT_ORIGINAL', 'sometimes', /expected on or off/],
    ['VIGIL_ALERT_STORM_SPARES', 'urgent', /VIGIL_ALERT_STORM_SPARES.*(low|critical|none)/],
    ['VIGIL_MAX_MESSAGE_BYTES', '1023', /Too small/],
    ['KAFKA_CLIENT_ID', 'a/b', /letters, digits/],
    ['VIGIL_PIPELINE_STATS_INTERVAL_MS', '500', /0 or off, or at least 1000/],
    ['VIGIL_PIPELINE_STATS_INTERVAL_MS', 'never', /expected milliseconds \(1000–3600000\), or 0 or off/],
  ])('refuses %s=%p with a readable reason', (name, value, reason) => {
    const error = configErrorOf({ [name]: value });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.startsWith(name)).toBe(true);
    expect(error.issues[0]).toMatch(reason);
  });

  it('is frozen all the way down', () => {
    const config = loadConfig({ ELASTICSEARCH_API_KEY: 'key' });
    const nested: unknown[] = [config, config.kafka, config.kafka.brokers, config.elasticsearch, config.topics, config.indices, config.limits, config.bulk];
    for (const value of nested) expect(Object.isFrozen(value)).toBe(true);
    // Test files are modules, so strict mode: writes to frozen objects throw.
    expect(() => {
      (config.kafka.brokers as string[]).push('evil:1');
    }).toThrow(TypeError);
    expect(() => {
      (config.topics as { partitions: number }).partitions = 99;
    }).toThrow(TypeError);
    expect(config.topics.partitions).toBe(3);
  });

  it('returns a fresh object each time, so one caller cannot affect another', () => {
    const first = loadConfig({});
    const second = loadConfig({});
    expect(second).toStrictEqual(first);
    expect(second).not.toBe(first);
  });
});

describe('the settings table is the only declaration', () => {
  const root = join(__dirname, '..', '..');

  // The image listens on 0.0.0.0; `docker run --env-file` of a copy of the example put 127.0.0.1 back.
  it('.env.example leaves the listen addresses the image sets commented out, and every other variable set', () => {
    const text = renderEnvExample();
    expect(text).toContain('\n# VIGIL_HTTP_HOST=127.0.0.1\n');
    expect(text).toContain('\n# VIGIL_INTAKE_HOST=127.0.0.1\n');
    const assigned = text.split('\n').filter((line) => /^[A-Z_]+=/.test(line)).map((line) => line.split('=')[0]);
    expect(assigned).not.toContain('VIGIL_HTTP_HOST');
    expect(assigned.length).toBe(listSettings().length - 2);
  });

  it('.env.example lists every variable with its default (run npm run config:docs)', () => {
    expect(readFileSync(join(root, '.env.example'), 'utf8')).toBe(renderEnvExample());
  });

  it.each([
    ['docs/configuration.md', 'full'],
    ['README.md', 'short'],
  ] as const)('%s shows the generated table (run npm run config:docs)', (file, form) => {
    expect(readFileSync(join(root, file), 'utf8')).toContain(renderConfigTable(form));
  });

  it('the generated text keeps a sentence whole past "e.g.", leaves no link in .env.example, and resolves every README link to a file that exists', () => {
    const example = renderEnvExample();
    expect(example).not.toMatch(/\]\(/);
    expect(example).not.toMatch(/e\.g\.\n/);
    const short = renderConfigTable('short');
    expect(short).toMatch(/`VIGIL_ADAPT_SERVICE` \| unset \| .*, e\.g\. `[^`]+`\. \|/);
    const links = [...short.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)].map((match) => match[1] ?? '');
    expect(links.length).toBeGreaterThan(10);
    for (const link of links) expect([link, existsSync(join(root, link))]).toEqual([link, true]);
  });

  it('declares each variable once, and every variable is read into Config', () => {
    const names = listSettings().map(({ setting }) => setting.env);
    expect(new Set(names).size).toBe(names.length);
    // Every variable set to a value different from its default changes the loaded Config.
    const baseline = loadConfig({});
    for (const { path, setting } of listSettings()) {
      const value = path === 'detection.rulesPaths' || path === 'detection.listsPaths' ? 'x' : path === 'elasticsearch.apiKey' ? 'k' : undefined;
      if (value === undefined) continue;
      expect(loadConfig({ [setting.env]: value })).not.toStrictEqual(baseline);
    }
  });

  it('turns the pipeline metrics off with 0 or off', () => {
    expect(loadConfig({ VIGIL_PIPELINE_STATS_INTERVAL_MS: 'off' }).pipelineStats.intervalMs).toBe(0);
    expect(loadConfig({ VIGIL_PIPELINE_STATS_INTERVAL_MS: '0' }).pipelineStats.intervalMs).toBe(0);
    expect(loadConfig({ VIGIL_PIPELINE_STATS_INTERVAL_MS: '5000' }).pipelineStats.intervalMs).toBe(5000);
  });

  it('switches all take on/off and true/false alike', () => {
    expect(loadConfig({ VIGIL_DETECTION: 'false', VIGIL_RULES_WATCH: 'off' }).detection).toMatchObject({ enabled: false, watch: false });
    expect(loadConfig({ VIGIL_DETECTION: 'true', VIGIL_RULES_WATCH: 'on' }).detection).toMatchObject({ enabled: true, watch: true });
    expect(configErrorOf({ VIGIL_DETECTION: 'yes' }).issues).toEqual(['VIGIL_DETECTION: expected on or off']);
  });
});

describe('unknownVariables', () => {
  it('names a misspelt VIGIL_ variable with the setting it was likely meant to be', () => {
    const unknown = unknownVariables({ VIGIL_DETECTON: 'off', VIGIL_FETCH_AHAED: 'off', VIGIL_INDEX_PREFXI: 'x', VIGIL_DETECTION: 'on' });
    expect(unknown).toStrictEqual([
      { name: 'VIGIL_DETECTON', suggestion: 'VIGIL_DETECTION' },
      { name: 'VIGIL_FETCH_AHAED', suggestion: 'VIGIL_FETCH_AHEAD' },
      { name: 'VIGIL_INDEX_PREFXI', suggestion: 'VIGIL_INDEX_PREFIX' },
    ]);
    expect(unknownVariablesWarning(unknown)).toBe(
      'ignoring 3 variables Vigil does not read: VIGIL_DETECTON (did you mean VIGIL_DETECTION?), VIGIL_FETCH_AHAED (did you mean VIGIL_FETCH_AHEAD?), VIGIL_INDEX_PREFXI (did you mean VIGIL_INDEX_PREFIX?); see docs/configuration.md',
    );
  });

  it('names the store setting a VIGIL_ prefix was put on (the store settings have none)', () => {
    expect(unknownVariables({ VIGIL_KAFKA_BROKERS: 'kafka:9092', VIGIL_REDIS_URL: 'redis://r:6379', VIGIL_ELASTICSEARCH_URL: 'http://es:9200', VIGIL_LOG_LEVEL: 'debug' })).toStrictEqual([
      { name: 'VIGIL_ELASTICSEARCH_URL', suggestion: 'ELASTICSEARCH_URL' },
      { name: 'VIGIL_KAFKA_BROKERS', suggestion: 'KAFKA_BROKERS' },
      { name: 'VIGIL_LOG_LEVEL', suggestion: 'LOG_LEVEL' },
      { name: 'VIGIL_REDIS_URL', suggestion: 'REDIS_URL' },
    ]);
  });

  it('names a variable far from every setting without a guess, and leaves other programs\' variables alone', () => {
    expect(unknownVariables({ VIGIL_UNKNOWN: 'x', PATH: '/usr/bin', KAFKA_HEAP_OPTS: '-Xmx1g', DETECTION: 'off' })).toStrictEqual([{ name: 'VIGIL_UNKNOWN' }]);
    expect(unknownVariablesWarning([{ name: 'VIGIL_UNKNOWN' }])).toBe('ignoring a variable Vigil does not read: VIGIL_UNKNOWN; see docs/configuration.md');
  });

  it('finds nothing in an environment of settings', () => {
    expect(unknownVariables(Object.fromEntries(listSettings().map(({ setting }) => [setting.env, 'x'])))).toStrictEqual([]);
  });

  it('knows every VIGIL_ variable the project\'s own scripts read (the stack, the fault and fuzz suites)', () => {
    const read = new Set<string>();
    const scripts = join(__dirname, '..', '..', 'scripts');
    for (const file of readdirSync(scripts).filter((name) => name.endsWith('.sh'))) {
      for (const match of readFileSync(join(scripts, file), 'utf8').matchAll(/\$\{?(VIGIL_[A-Z0-9_]+)/g)) if (match[1] !== undefined) read.add(match[1]);
    }
    expect(read.has('VIGIL_CACHE_DIR')).toBe(true);
    expect(unknownVariables(Object.fromEntries([...read, 'VIGIL_FAULTS_ONLY', 'VIGIL_FUZZ_SEED'].map((name) => [name, 'x'])))).toStrictEqual([]);
  });
});

describe('invariants between settings', () => {
  // VIGIL_ALERT_SUPPRESS_MS changed no grouping (the quiet period is the join window), yet a resolve
  // time above its 15-minute default refused the start unless it was raised too.
  it('takes a resolve time above 15 minutes alone, and names the retired suppression window as such', () => {
    expect(loadConfig({ VIGIL_ALERT_RESOLVE_AFTER_MS: '1800000' }).alerting.resolveAfterMs).toBe(1_800_000);
    expect('suppressMs' in loadConfig({ VIGIL_ALERT_SUPPRESS_MS: '60000' }).alerting).toBe(false);
    const unknown = unknownVariables({ VIGIL_ALERT_SUPPRESS_MS: '3600000' });
    expect(unknown).toStrictEqual([{ name: 'VIGIL_ALERT_SUPPRESS_MS', retired: 'retired: the quiet period, VIGIL_ALERT_RESOLVE_AFTER_MS, is also the join window; docs/alerting.md' }]);
    expect(unknownVariablesWarning(unknown)).toBe(
      'ignoring a variable Vigil does not read: VIGIL_ALERT_SUPPRESS_MS (retired: the quiet period, VIGIL_ALERT_RESOLVE_AFTER_MS, is also the join window; docs/alerting.md); see docs/configuration.md',
    );
  });

  // A dead letter written to the topic it came from was read back and dead-lettered again, for ever.
  it('refuses two topic settings naming one topic, naming both settings', () => {
    expect(configErrorOf({ VIGIL_TOPIC_DEADLETTER: 'vigil.events.policy' }).issues).toEqual([
      "VIGIL_TOPIC_POLICY and VIGIL_TOPIC_DEADLETTER are both vigil.events.policy: give each a topic of its own (what goes to one would be read as the other's: a dead letter, say, back into the event topic it came from, for ever)",
    ]);
    expect(configErrorOf({ VIGIL_TOPIC_NOTIFICATION_DEADLETTER: 'vigil.notifications' }).issues).toEqual([expect.stringMatching(/^VIGIL_TOPIC_NOTIFICATIONS and VIGIL_TOPIC_NOTIFICATION_DEADLETTER are both vigil\.notifications: /) as unknown]);
    expect(configErrorOf({ VIGIL_TOPIC_DETECTIONS: 't', VIGIL_INTAKE_TOPIC: 't', VIGIL_TOPIC_DEVICE: 't', VIGIL_TOPIC_NOTIFICATIONS: 'vigil.events.invocation' }).issues).toEqual([
      expect.stringMatching(/^VIGIL_TOPIC_INVOCATION and VIGIL_TOPIC_NOTIFICATIONS are both vigil\.events\.invocation: /),
      expect.stringMatching(/^VIGIL_TOPIC_DEVICE, VIGIL_TOPIC_DETECTIONS and VIGIL_INTAKE_TOPIC are all t: /),
    ] as unknown[]);
    // Every pair of the eight topic settings is refused.
    const topicSettings = ['VIGIL_TOPIC_POLICY', 'VIGIL_TOPIC_INVOCATION', 'VIGIL_TOPIC_DEVICE', 'VIGIL_TOPIC_DEADLETTER', 'VIGIL_TOPIC_DETECTIONS', 'VIGIL_TOPIC_NOTIFICATIONS', 'VIGIL_TOPIC_NOTIFICATION_DEADLETTER', 'VIGIL_INTAKE_TOPIC'];
    for (const [index, first] of topicSettings.entries()) {
      for (const second of topicSettings.slice(index + 1)) expect(configErrorOf({ [first]: 'one', [second]: 'one' }).issues).toEqual([expect.stringMatching(`^${first} and ${second} are both one: `) as unknown]);
    }
  });

  // The intake then failed at the end of the start ("VIGIL_INTAKE_PORT: 127.0.0.1:9465 is in use by
  // another process", its own health server), after the consumers had joined their groups.
  it('refuses the health and intake ports equal on one address while the intake runs', () => {
    const token = 'a-token-of-twenty-four-chars';
    expect(configErrorOf({ VIGIL_HTTP_PORT: '9465', VIGIL_INTAKE_TOKEN: token }).issues).toEqual([
      'VIGIL_HTTP_PORT and VIGIL_INTAKE_PORT are both 9465, on 127.0.0.1, and the intake runs (VIGIL_INTAKE_TOKEN is set): the second to listen would find the port taken; give each a port of its own',
    ]);
    for (const [httpHost, intakeHost] of [['0.0.0.0', '127.0.0.1'], ['127.0.0.1', '0.0.0.0'], ['::', '127.0.0.1'], ['::1', '::'], ['vigil.internal', '0.0.0.0'], ['Vigil.Internal', 'vigil.internal']]) {
      expect(configErrorOf({ VIGIL_HTTP_HOST: httpHost, VIGIL_INTAKE_HOST: intakeHost, VIGIL_INTAKE_PORT: '9464', VIGIL_INTAKE_TOKEN: token }).issues).toEqual([expect.stringMatching(/^VIGIL_HTTP_PORT and VIGIL_INTAKE_PORT are both 9464, on /) as unknown]);
    }
    // Apart: no intake, another port, port 0 (no health server; a free intake port), addresses apart.
    expect(loadConfig({ VIGIL_HTTP_PORT: '9465' }).http.port).toBe(9465);
    expect(loadConfig({ VIGIL_HTTP_PORT: '9466', VIGIL_INTAKE_TOKEN: token }).http.port).toBe(9466);
    expect(loadConfig({ VIGIL_HTTP_PORT: '0', VIGIL_INTAKE_PORT: '0', VIGIL_INTAKE_TOKEN: token }).intake.port).toBe(0);
    expect(loadConfig({ VIGIL_HTTP_HOST: '10.0.0.4', VIGIL_INTAKE_HOST: '10.0.0.5', VIGIL_INTAKE_PORT: '9464', VIGIL_INTAKE_TOKEN: token }).intake.port).toBe(9464);
    expect(loadConfig({ VIGIL_HTTP_HOST: '0.0.0.0', VIGIL_INTAKE_HOST: '::1', VIGIL_INTAKE_PORT: '9464', VIGIL_INTAKE_TOKEN: token }).intake.port).toBe(9464);
  });

  it('checks invariants only once every setting is valid', () => {
    expect(configErrorOf({ ELASTICSEARCH_USERNAME: 'vigil', VIGIL_ALERT_RESOLVE_AFTER_MS: 'x' }).issues).toEqual(['VIGIL_ALERT_RESOLVE_AFTER_MS: expected a whole number (decimal digits)']);
    expect(configErrorOf({ ELASTICSEARCH_USERNAME: 'vigil' }).issues).toEqual(['ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together: set both or neither']);
  });
});

describe('VIGIL_ADAPT_GROUPS', () => {
  it('parses the group map', () => {
    const config = loadConfig({ VIGIL_ADAPT_SERVICE: 'edge-kong', VIGIL_ADAPT_GROUPS: '{"routes":{"orders":"orders"},"tags":{"pay":"payments"},"default":"edge"}' });
    expect(config.adapt).toStrictEqual({ service: 'edge-kong', kind: 'gateway', kongUserHeader: false, apisixAnonymousConsumers: ['anonymous'], envoyClientIp: 'remote', derivedPolicies: 'all', groups: { routes: { orders: 'orders' }, tags: { pay: 'payments' }, default: 'edge' } });
  });

  it.each([
    ['{"routes":', /^VIGIL_ADAPT_GROUPS: not valid JSON: /],
    ['[]', /^VIGIL_ADAPT_GROUPS: expected a JSON object$/],
    ['{"route":{"a":"b"}}', /^VIGIL_ADAPT_GROUPS: unknown key\(s\) route: expected routes, services, apis, tags or default$/],
    ['{"services":{"shop":""}}', /^VIGIL_ADAPT_GROUPS\.services\.shop: /],
    ['{"default":"a\\nb"}', /^VIGIL_ADAPT_GROUPS\.default: must not contain control characters$/],
  ])('refuses %s naming what is wrong', (value, message) => {
    expect(configErrorOf({ VIGIL_ADAPT_GROUPS: value }).issues).toEqual([expect.stringMatching(message) as unknown]);
  });
});

describe('REDIS_URL', () => {
  it.each([
    ['redis://127.0.0.1:notaport', 'REDIS_URL: not a URL (expected redis://host:port, the port 1–65535)'],
    ['redis://127.0.0.1:99999', 'REDIS_URL: not a URL (expected redis://host:port, the port 1–65535)'],
    ['redis://127.0.0.1:0', 'REDIS_URL: port 0 (expected 1–65535)'],
    ['redis://127.0.0.1:6379/notadb', 'REDIS_URL: database "notadb" is not a whole number (expected redis://host:port/0)'],
    // A malformed escape threw a bare URIError out of loadConfig (exit 1, no variable named).
    ['redis://127.0.0.1:6379/%zz', 'REDIS_URL: database "%zz" is not a whole number (expected redis://host:port/0)'],
    // ioredis takes query parameters as options (a password logged in, then printed in every error).
    ['rediss://cache:6380?password=hunter22&family=6', 'REDIS_URL: holds "password" in its query string: set REDIS_PASSWORD, REDIS_USERNAME and REDIS_TLS_CA_FILE instead, and rediss:// for TLS'],
    // ioredis threw "URI malformed" at connect for a literal % in the password.
    ['redis://:50%off@cache:6379', 'REDIS_URL: its password holds a malformed %-escape (a literal % is written %25)'],
  ])('refuses %s, naming what is wrong', (url, problem) => {
    expect(configErrorOf({ REDIS_URL: url }).issues).toEqual([problem]);
  });

  it.each(['redis://127.0.0.1', 'redis://127.0.0.1:6379/', 'redis://cache:6380/2', 'rediss://cache.internal:6380', 'redis://cache.internal:6379?family=6'])('takes %s', (url) => {
    expect(loadConfig({ REDIS_URL: url }).redis.url).toBe(url);
  });
});

describe('secured connections: settings that cannot work together are refused, naming them', () => {
  const folder = mkdtempSync(join(tmpdir(), 'vigil-config-'));
  const ca = join(folder, 'ca.pem');
  writeFileSync(ca, `${PEM_HEADER}\nMIIB\n-----END CERTIFICATE-----\n`);
  const der = join(folder, 'ca.der');
  writeFileSync(der, Buffer.from([0x30, 0x82, 0x01, 0x0a, 0x02, 0x82]));

  it('refuses Kafka SASL credentials without a mechanism: they were silently not sent', () => {
    expect(configErrorOf({ KAFKA_SASL_USERNAME: 'vigil', KAFKA_SASL_PASSWORD: 'password-1' }).issues).toEqual([
      'KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is none (its default): the credentials would not be sent; set the mechanism the brokers use (plain, scram-sha-256, scram-sha-512)',
    ]);
    expect(configErrorOf({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'vigil' }).issues).toEqual(['KAFKA_SASL_MECHANISM is scram-sha-512: set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD too']);
    expect(loadConfig({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'vigil', KAFKA_SASL_PASSWORD: 'password-1' }).kafka.sasl.mechanism).toBe('scram-sha-512');
  });

  it('refuses an Elasticsearch user without a password, and an API key beside a user', () => {
    expect(configErrorOf({ ELASTICSEARCH_USERNAME: 'vigil' }).issues).toEqual(['ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together: set both or neither']);
    expect(configErrorOf({ ELASTICSEARCH_USERNAME: 'vigil', ELASTICSEARCH_PASSWORD: 'password-1', ELASTICSEARCH_API_KEY: 'c2VjcmV0' }).issues).toEqual([
      'ELASTICSEARCH_API_KEY and ELASTICSEARCH_USERNAME are both set: choose one way to authenticate',
    ]);
  });

  // The URL's user won over ELASTICSEARCH_USERNAME, and an API key over the URL's user, without a word.
  it('refuses credentials both in ELASTICSEARCH_URL and beside it, and takes each alone', () => {
    expect(configErrorOf({ ELASTICSEARCH_URL: 'https://elastic:pw123456@es:9200', ELASTICSEARCH_USERNAME: 'other', ELASTICSEARCH_PASSWORD: 'x123456' }).issues).toEqual([
      'ELASTICSEARCH_URL holds a user or a password and ELASTICSEARCH_USERNAME or ELASTICSEARCH_PASSWORD is set too: the URL’s would win without a word; keep the credentials in ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD only',
    ]);
    expect(configErrorOf({ ELASTICSEARCH_URL: 'https://elastic:pw123456@es:9200', ELASTICSEARCH_API_KEY: 'c2VjcmV0' }).issues).toEqual([
      'ELASTICSEARCH_URL holds a user or a password and ELASTICSEARCH_API_KEY is set too: the API key would win without a word; choose one way to authenticate, and keep credentials out of the URL',
    ]);
    expect(loadConfig({ ELASTICSEARCH_URL: 'https://elastic:pw123456@es:9200' }).elasticsearch.url).toBe('https://elastic:pw123456@es:9200');
    expect(loadConfig({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_API_KEY: 'c2VjcmV0' }).elasticsearch.apiKey).toBe('c2VjcmV0');
    expect(loadConfig({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_USERNAME: 'vigil', ELASTICSEARCH_PASSWORD: 'password-1' }).elasticsearch.username).toBe('vigil');
  });

  it('refuses credentials both in REDIS_URL and beside it, and takes an ACL user alone (a nopass user)', () => {
    expect(loadConfig({ REDIS_USERNAME: 'vigil' }).redis.username).toBe('vigil');
    expect(configErrorOf({ REDIS_URL: 'redis://:from-url@cache:6379', REDIS_PASSWORD: 'from-setting' }).issues).toEqual([
      'REDIS_URL holds a user or a password and REDIS_USERNAME or REDIS_PASSWORD is set too: the URL’s would win without a word; keep the credentials in REDIS_USERNAME and REDIS_PASSWORD only',
    ]);
    expect(loadConfig({ REDIS_URL: 'redis://:from-url@cache:6379' }).redis.url).toBe('redis://:from-url@cache:6379');
    expect(loadConfig({ REDIS_USERNAME: 'vigil', REDIS_PASSWORD: 'password-1' }).redis.username).toBe('vigil');
  });

  it('refuses a CA file that is a directory, holds no PEM certificate or cannot be read, and a CA on a plain URL', () => {
    expect(configErrorOf({ KAFKA_TLS_CA_FILE: folder }).issues).toEqual([`KAFKA_TLS_CA_FILE: ${folder} is a directory, not a file`]);
    expect(configErrorOf({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_CA_FILE: der }).issues).toEqual([
      `ELASTICSEARCH_CA_FILE: no PEM certificate in ${der} (expected ${PEM_HEADER}; convert a DER file with openssl x509 -inform der)`,
    ]);
    expect(configErrorOf({ REDIS_URL: 'rediss://cache:6380', REDIS_TLS_CA_FILE: join(folder, 'missing.pem') }).issues).toEqual([`REDIS_TLS_CA_FILE: cannot read ${join(folder, 'missing.pem')}`]);
    expect(configErrorOf({ ELASTICSEARCH_CA_FILE: ca }).issues).toEqual(['ELASTICSEARCH_CA_FILE is set but ELASTICSEARCH_URL is not https://']);
    expect(configErrorOf({ REDIS_TLS_CA_FILE: ca }).issues).toEqual(['REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss://']);
    // A scheme is case-insensitive: HTTPS:// was refused as "not https://".
    expect(loadConfig({ ELASTICSEARCH_URL: 'HTTPS://es:9200', ELASTICSEARCH_CA_FILE: ca }).elasticsearch.caFile).toBe(ca);
    expect(loadConfig({ KAFKA_TLS: 'on', KAFKA_TLS_CA_FILE: ca, REDIS_URL: 'rediss://cache:6380', REDIS_TLS_CA_FILE: ca }).redis.caFile).toBe(ca);
    // OpenSSL's trusted-certificate form (RHEL's ca-bundle.trust.crt), which Node reads too.
    const trusted = join(folder, 'ca.trust.crt');
    writeFileSync(trusted, `# bundle\n-----BEGIN TRUSTED ${PEM_HEADER.slice('-----BEGIN '.length)}\nMIIB\n`);
    expect(loadConfig({ KAFKA_TLS_CA_FILE: trusted }).kafka.caFile).toBe(trusted);
  });
});

describe('REDIS_CLUSTER_NODES', () => {
  it('is unset by default: one Redis at REDIS_URL', () => {
    expect(loadConfig({}).redis.cluster).toBeUndefined();
  });

  it('reads the seeds, with or without a scheme, and rediss:// as TLS', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7001, redis-b:7002 ,' }).redis.cluster).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7001 },
        { host: 'redis-b', port: 7002 },
      ],
      tls: false,
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'rediss://a:7001,rediss://b:7002' }).redis.cluster).toEqual({ nodes: [{ host: 'a', port: 7001 }, { host: 'b', port: 7002 }], tls: true });
  });

  it.each([
    [',', /at least one node/],
    ['a:7001,b', /expected host:port/],
    ['redis://user:pw@a:7001', /expected host:port/],
    ['rediss://a:7001,b:7002', /mixes rediss:\/\/ and plain seeds/],
    // Ports KAFKA_BROKERS and REDIS_URL refuse were taken here, and failed only at connect.
    ['r1:7000,r2:99999', /^REDIS_CLUSTER_NODES\.1: the port is not within 1–65535$/],
    ['r1:0', /^REDIS_CLUSTER_NODES\.0: the port is not within 1–65535$/],
    ['rediss://r1:65536', /the port is not within 1–65535/],
  ])('refuses %p with a readable reason', (value, reason) => {
    const error = configErrorOf({ REDIS_CLUSTER_NODES: value });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.startsWith('REDIS_CLUSTER_NODES')).toBe(true);
    expect(error.issues[0]).toMatch(reason);
  });

  it('takes REDIS_TLS_CA_FILE only with rediss:// seeds', () => {
    const ca = join(mkdtempSync(join(tmpdir(), 'vigil-config-')), 'ca.pem');
    writeFileSync(ca, `${PEM_HEADER}\nMIIB\n-----END CERTIFICATE-----\n`);
    expect(configErrorOf({ REDIS_CLUSTER_NODES: 'a:7001', REDIS_TLS_CA_FILE: ca }).issues).toEqual(['REDIS_TLS_CA_FILE is set but REDIS_CLUSTER_NODES are not rediss://']);
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'rediss://a:7001', REDIS_TLS_CA_FILE: ca }).redis.caFile).toBe(ca);
    expect(configErrorOf({ REDIS_CLUSTER_NODES: 'rediss://a:7001', REDIS_TLS_CA_FILE: join(__dirname, 'config.test.ts') }).issues).toHaveLength(1);
  });
});

describe('shortSecretSettings: secrets too short to be looked for in log lines', () => {
  // A 5-character REDIS_PASSWORD was left out of the secrets the logger blanks (a value that short
  // would blank every line holding it) without a word: an error message quoting it went out whole.
  it('names each setting whose secret is under 6 characters, and those alone, once', () => {
    const config = loadConfig({
      REDIS_PASSWORD: 'pw123',
      ELASTICSEARCH_USERNAME: 'elastic',
      ELASTICSEARCH_PASSWORD: 'long-enough-password',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'vigil',
      KAFKA_SASL_PASSWORD: 'abc',
      REDIS_URL: 'redis://127.0.0.1:6379',
      VIGIL_ALERT_DESTINATIONS: JSON.stringify([{ type: 'webhook', name: 'hook', url: 'http://127.0.0.1:9/h', secret: 'k1' }]),
    });
    expect(shortSecretSettings(config)).toEqual(['KAFKA_SASL_PASSWORD', 'REDIS_PASSWORD', 'VIGIL_ALERT_DESTINATIONS']);
    expect(secretsOf(config)).toContain('long-enough-password');
    expect(secretsOf(config)).not.toEqual(expect.arrayContaining(['pw123']));
    expect(shortSecretSettings(loadConfig({ ELASTICSEARCH_URL: 'http://elastic:pw@127.0.0.1:9200' }))).toEqual(['ELASTICSEARCH_URL']);
    // A short password in a destination's URL, which urlSecrets leaves out of the scrubbed values.
    const hook = JSON.stringify([{ type: 'webhook', name: 'hook', url: 'https://u:pw@hooks.example.com/in', secret: 'a-long-enough-secret' }]);
    expect(shortSecretSettings(loadConfig({ VIGIL_ALERT_DESTINATIONS: hook }))).toEqual(['VIGIL_ALERT_DESTINATIONS']);
    expect(shortSecretSettings(loadConfig({ REDIS_PASSWORD: 'sixsix' }))).toEqual([]);
    expect(shortSecretSettings(loadConfig({}))).toEqual([]);
  });

  it('says what is and is not redacted, without the values', () => {
    expect(shortSecretsWarning(['REDIS_PASSWORD'])).toBe(
      'REDIS_PASSWORD holds a secret shorter than 6 characters, which log lines are not searched for: only fields redacted by name (a password, a token) hide it, and an error message or a URL quoting it shows it; use a longer one',
    );
    expect(shortSecretsWarning(['KAFKA_SASL_PASSWORD', 'REDIS_PASSWORD'])).toMatch(/^KAFKA_SASL_PASSWORD, REDIS_PASSWORD hold secrets shorter than 6 characters, /);
  });
});

describe('secretsOf: the secrets inside VIGIL_ALERT_DESTINATIONS', () => {
  const secret = 'Tr0ub4dor&3/"webhook-key';
  const url = 'https://hooks.example.com/in/XOXBSECRETTOKEN123456?key=querysecret1';
  const routingKey = 'R0UT1NGKEY&0000000000000000000000';
  const text = `refused: signature key ${secret}, routing_key ${routingKey}, POST /in/XOXBSECRETTOKEN123456`;
  const scrubbed = 'refused: signature key [redacted], routing_key [redacted], POST [redacted]';

  // Go's encoding/json and Helm's toJson write & as \u0026 (and < > likewise), some encoders / as
  // \/: a search of the text found the escaped spelling, and the logger blanked a string the log
  // never holds while the secret itself went out.
  it('are the values as parsed, however the JSON text spells them', () => {
    const destinations = [
      { type: 'webhook', name: 'hook', url, secret },
      { type: 'pagerduty', name: 'pager', url: 'https://events.pagerduty.com/v2/enqueue', routingKey },
    ];
    const escaped = JSON.stringify(destinations).replace(/&/g, '\\u0026').replace(/\//g, '\\/');
    expect(escaped).not.toContain(secret);
    for (const json of [JSON.stringify(destinations), escaped, JSON.stringify(destinations, null, 2)]) {
      const secrets = secretsOf(loadConfig({ VIGIL_ALERT_DESTINATIONS: json }));
      expect(secrets).toEqual(expect.arrayContaining([secret, routingKey, url, '/in/XOXBSECRETTOKEN123456', 'XOXBSECRETTOKEN123456', 'querysecret1']));
      expect(scrubSecrets(text, secrets)).toBe(scrubbed);
    }
  });

  it('are searched for in the text as written when it is no JSON (the alerting refuses it after the logger is made)', () => {
    const secrets = secretsOf(loadConfig({ VIGIL_ALERT_DESTINATIONS: '[{"type":"pagerduty","routingKey":"R0UT1NGKEY0000000000000000000000"' }));
    expect(secrets).toStrictEqual(['R0UT1NGKEY0000000000000000000000']);
  });
});
