import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Client } from '@elastic/elasticsearch';
import { createVigil, type Vigil } from '../../app';
import { createEmitter } from '../../ingest/sdk';
import { rdkafkaClient, type RdkafkaClientOptions } from '../../ingest/sdk/rdkafka';
import { ConnectionError, createElasticsearch, createKafka, createLogger, ensureTopics, loadConfig, secretsOf, type Config } from '../../platform';
import { indexNames } from '../../schemas';
import { deleteTopics, removeIndicesAndTemplates } from '../../scripts/cleanup';
import { runRuleTests } from '../../scripts/rule-fixtures';
import { isolatedConfig, readTopic, testLogger, waitFor } from '../support/harness';

/** The secured copies of the stack (TLS, SASL/SCRAM, users), started beside the plain one. */
function secureStack(): Record<string, string> {
  const result = spawnSync('bash', [join(__dirname, '..', '..', 'scripts', 'stack.sh'), 'up-secure'], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`scripts/stack.sh up-secure failed with exit code ${String(result.status)}`);
  const file = readFileSync(join(process.env.VIGIL_STATE_DIR ?? '/var/lib/vigil', 'secure', 'credentials.env'), 'utf8');
  return Object.fromEntries(file.split('\n').flatMap((line) => (line.includes('=') ? [[line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]] : [])));
}

/** Sends one policy event through a started Vigil and waits until `reader` counts it indexed. */
async function indexOneEvent(vigil: Vigil, config: Config, reader: Client): Promise<void> {
  const emitter = createEmitter({ kafka: vigil.kafka, topics: config.topics, source: { service: 'secured-test', kind: 'gateway' } });
  emitter.policy({
    id: 'evt-secured-1',
    actor: { userId: 'u-secured' },
    client: { ip: '81.2.69.142' },
    policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', reason: 'invalid_credentials', group: 'accounts', resource: { api: 'accounts-v1', method: 'POST', path: '/v1/login' } },
  });
  await emitter.close();
  const index = indexNames(config.indices.prefix).eventPattern;
  await waitFor('the event indexed on the secured Elasticsearch', async () => {
    await reader.indices.refresh({ index, allow_no_indices: true });
    return (await reader.count({ index, allow_no_indices: true })).count === 1;
  });
  expect(vigil.stats().ingest?.indexed).toBe(1);
}

describe('secured connections: Kafka SASL_SSL/SCRAM-SHA-512, Elasticsearch TLS with users and API keys, Redis TLS with an ACL user', () => {
  let secure: Record<string, string>;
  let env: Record<string, string>;

  beforeAll(() => {
    secure = secureStack();
    env = {
      KAFKA_BROKERS: secure.SECURE_KAFKA_BROKERS ?? '',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: secure.SECURE_KAFKA_USERNAME ?? '',
      KAFKA_SASL_PASSWORD: secure.SECURE_KAFKA_PASSWORD ?? '',
      KAFKA_TLS_CA_FILE: secure.SECURE_CA_FILE ?? '',
      ELASTICSEARCH_URL: secure.SECURE_ELASTICSEARCH_URL ?? '',
      ELASTICSEARCH_USERNAME: secure.SECURE_ELASTICSEARCH_USERNAME ?? '',
      ELASTICSEARCH_PASSWORD: secure.SECURE_ELASTICSEARCH_PASSWORD ?? '',
      ELASTICSEARCH_CA_FILE: secure.SECURE_CA_FILE ?? '',
      REDIS_URL: secure.SECURE_REDIS_URL ?? '',
      REDIS_USERNAME: secure.SECURE_REDIS_USERNAME ?? '',
      REDIS_PASSWORD: secure.SECURE_REDIS_PASSWORD ?? '',
      REDIS_TLS_CA_FILE: secure.SECURE_CA_FILE ?? '',
      VIGIL_TOPIC_PARTITIONS: '1',
    };
  }, 300_000);

  it('runs the pipeline and the alerter end to end, and no secret reaches a log line', async () => {
    const config = isolatedConfig(env);
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger({ level: 'debug', destination, secrets: secretsOf(config) });
    const vigil = createVigil(config, { logger });
    const elasticsearch = createElasticsearch(config);
    try {
      await vigil.start();
      await indexOneEvent(vigil, config, elasticsearch);
      // Debug lines with the secrets in them would be caught here: the logger blanks every value.
      logger.info({ config }, 'the configuration, logged on purpose');
      logger.error({ err: new Error(`login refused for password ${config.kafka.sasl.password ?? ''}`) }, 'an error carrying a secret');
    } finally {
      await vigil.stop();
      await removeIndicesAndTemplates(elasticsearch, config.indices.prefix);
      await deleteTopics(createKafka(config, testLogger, 'secured-cleanup'), config);
      await elasticsearch.close();
    }
    const output = lines.join('');
    expect(output).toContain('the configuration, logged on purpose');
    for (const secret of [secure.SECURE_KAFKA_PASSWORD, secure.SECURE_ELASTICSEARCH_PASSWORD, secure.SECURE_REDIS_PASSWORD]) {
      expect(secret && output.includes(secret)).toBe(false);
    }
    expect(output).toContain('[redacted]');
  });

  it('runs the pipeline with an API key minted by the secured user, over TLS with the CA file; the invalidated key no longer starts it', async () => {
    const admin = createElasticsearch(isolatedConfig(env));
    const prefix = `it-${randomBytes(4).toString('hex')}`;
    // The key is narrower than its owner (the elastic superuser): only what Vigil does with
    // Elasticsearch, cluster health and its templates, and its own indices.
    const key = await admin.security.createApiKey({
      name: `vigil-${prefix}`,
      expiration: '1h',
      role_descriptors: { vigil: { cluster: ['monitor', 'manage_index_templates'], indices: [{ names: [`${prefix}-*`], privileges: ['all'] }] } },
    });
    const withKey = { ...env, VIGIL_INDEX_PREFIX: prefix, ELASTICSEARCH_API_KEY: key.encoded, ELASTICSEARCH_USERNAME: '', ELASTICSEARCH_PASSWORD: '' };
    const config = isolatedConfig(withKey);
    expect(config.elasticsearch.username).toBeUndefined();
    expect(config.elasticsearch.caFile).toBe(secure.SECURE_CA_FILE);
    const asKey = createElasticsearch(config);
    const vigil = createVigil(config, { logger: testLogger });
    try {
      const who = await asKey.security.authenticate();
      expect(who.authentication_type).toBe('api_key');
      expect(who.api_key?.id).toBe(key.id);
      await vigil.start();
      // Read back with the key too: the key, not the user, both writes and reads the events.
      await indexOneEvent(vigil, config, asKey);
    } finally {
      await vigil.stop();
      await removeIndicesAndTemplates(admin, prefix);
      await deleteTopics(createKafka(config, testLogger, 'secured-cleanup'), config);
      await asKey.close();
    }
    // What let Vigil in was the key: once invalidated, the same settings stop the start.
    await admin.security.invalidateApiKey({ ids: [key.id] });
    await admin.close();
    const error = await startFailure(withKey);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/^elasticsearch \(https:\/\/127\.0\.0\.1:9201\): authentication failed: security_exception/);
  }, 180_000);

  it("the secured node's analysis plugin splits an e-mail address as the .security index's email analyzer asks", async () => {
    // The same analysis settings as the .security index (scripts/stack/es-analysis-plugin).
    const admin = createElasticsearch(isolatedConfig(env));
    const index = `it-${randomBytes(4).toString('hex')}-analysis`;
    try {
      await admin.indices.create({
        index,
        settings: {
          analysis: {
            filter: { email: { type: 'pattern_capture', preserve_original: true, patterns: ['([^@]+)', '(\\p{L}+)', '(\\d+)', '@(.+)'] } },
            analyzer: { email: { type: 'custom', tokenizer: 'uax_url_email', filter: ['email', 'lowercase', 'unique'] } },
          },
        },
      });
      const { tokens } = await admin.indices.analyze({ index, analyzer: 'email', text: 'John.Smith42@Example.com wrote to john.smith42@example.com' });
      expect(tokens?.map((token) => token.token)).toEqual(['john.smith42@example.com', 'john.smith42', 'john', 'smith', '42', 'example.com', 'example', 'com', 'wrote', 'to']);
    } finally {
      await admin.indices.delete({ index, ignore_unavailable: true });
      await admin.close();
    }
  }, 60_000);

  it('a made-up API key is refused by the node, naming Elasticsearch', async () => {
    const error = await startFailure({ ELASTICSEARCH_API_KEY: Buffer.from('made-up-id:made-up-key').toString('base64') }, ['ELASTICSEARCH_USERNAME', 'ELASTICSEARCH_PASSWORD']);
    expect((error as Error).message).toMatch(/^elasticsearch \(https:\/\/127\.0\.0\.1:9201\): authentication failed: security_exception/);
  }, 120_000);

  /** Starts Vigil with one setting wrong; returns what start() threw. */
  async function startFailure(overrides: Record<string, string>, drop: readonly string[] = []): Promise<unknown> {
    const settings: Record<string, string> = { ...env, ...overrides };
    for (const name of drop) settings[name] = '';
    const config: Config = isolatedConfig(settings);
    const vigil = createVigil(config, { logger: testLogger });
    try {
      await vigil.start();
    } catch (error) {
      return error;
    } finally {
      await vigil.stop();
    }
    return undefined;
  }

  it.each([
    ['kafka', { KAFKA_SASL_PASSWORD: 'not-the-password' }, /^kafka \(127\.0\.0\.1:9192\): authentication failed: /],
    ['elasticsearch', { ELASTICSEARCH_PASSWORD: 'not-the-password' }, /^elasticsearch \(https:\/\/127\.0\.0\.1:9201\): authentication failed: /],
    ['redis', { REDIS_PASSWORD: 'not-the-password' }, /^redis \(rediss:\/\/127\.0\.0\.1:6390\): authentication failed: /],
  ] as const)('a wrong %s password stops the start with an error naming the service', async (service, overrides, message) => {
    const error = await startFailure(overrides);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).service).toBe(service);
    expect((error as ConnectionError).retriable).toBe(false);
    expect((error as Error).message).toMatch(message);
  }, 120_000);

  it('a server certificate from an unknown CA stops the start, naming Elasticsearch', async () => {
    const error = await startFailure({}, ['ELASTICSEARCH_CA_FILE']);
    expect((error as Error).message).toMatch(/^elasticsearch \(https:\/\/127\.0\.0\.1:9201\): TLS failed: /);
  }, 120_000);

  // ioredis's "Reached the max retries per request limit" hid the certificate: Redis was taken
  // for unreachable, and Vigil started degraded where Kafka and Elasticsearch stopped the start.
  it('a Redis certificate from an unknown CA stops the start too, naming Redis and TLS', async () => {
    const error = await startFailure({}, ['REDIS_TLS_CA_FILE']);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).retriable).toBe(false);
    expect((error as Error).message).toMatch(/^redis \(rediss:\/\/127\.0\.0\.1:6390\): TLS failed: .*certificate/);
  }, 120_000);

  // The commands that use Redis alone (rule fixtures, replay, rules coverage) said only "Reached
  // the max retries per request limit" for a refused login or an untrusted CA, and replay wrote
  // outside VIGIL_REDIS_PREFIX, which an ACL user limited to its prefix may not.
  it('vigil rules test against the secured Redis: passes with the ACL user, names Redis and the login with a wrong password', async () => {
    const lines: string[] = [];
    const config = loadConfig({ ...env, VIGIL_REDIS_PREFIX: 'vigil' });
    await expect(runRuleTests({ config, print: (line) => lines.push(line) })).resolves.toBe(0);
    expect(lines.at(-1)).toMatch(/^\d+ cases: \d+ passed, 0 failed/);
    const refused = runRuleTests({ config: loadConfig({ ...env, REDIS_PASSWORD: 'not-the-password' }), print: () => undefined });
    await expect(refused).rejects.toBeInstanceOf(ConnectionError);
    await expect(refused).rejects.toThrow(/^redis \(rediss:\/\/127\.0\.0\.1:6390\): authentication failed: /);
  }, 120_000);

  it("the SDK's librdkafka producer logs in with SCRAM-SHA-512 over TLS with the CA; a wrong password is refused, naming Kafka and the login, not the password", async () => {
    const config = isolatedConfig(env);
    const kafka = createKafka(config, testLogger, 'secured-rdkafka');
    await ensureTopics(kafka, config);
    const options: RdkafkaClientOptions = {
      brokers: config.kafka.brokers,
      ssl: { ca: readFileSync(secure.SECURE_CA_FILE ?? '', 'utf8') },
      sasl: { mechanism: 'scram-sha-512', username: secure.SECURE_KAFKA_USERNAME ?? '', password: secure.SECURE_KAFKA_PASSWORD ?? '' },
      connectTimeoutMs: 5_000,
    };
    try {
      const emitter = createEmitter({ kafka: rdkafkaClient(options), topics: config.topics, source: { service: 'secured-rdkafka', kind: 'service' } });
      emitter.policy({
        id: 'evt-secured-rdkafka-1',
        actor: { userId: 'u-secured' },
        policy: { kind: 'authz', name: 'scope-check', outcome: 'fail', group: 'accounts', resource: { api: 'accounts-v1', method: 'GET', path: '/v1/me' } },
      });
      await emitter.close();
      expect(emitter.stats()).toMatchObject({ accepted: 1, delivered: 1, sendFailures: 0 });
      const [message] = await readTopic(kafka, config.topics.policy, 1);
      expect(JSON.parse(message?.value?.toString() ?? '{}')).toMatchObject({ id: 'evt-secured-rdkafka-1', source: { service: 'secured-rdkafka' } });

      const wrongPassword = `not-${randomBytes(6).toString('hex')}`;
      const refused = rdkafkaClient({ ...options, sasl: { mechanism: 'scram-sha-512', username: secure.SECURE_KAFKA_USERNAME ?? '', password: wrongPassword } }).producer();
      await refused.connect();
      const failure = await refused.sendBatch({ acks: -1, compression: 0, topicMessages: [{ topic: config.topics.policy, messages: [{ key: 'k', value: '{}' }] }] }).then(
        () => undefined,
        (error: unknown) => error,
      );
      await refused.disconnect();
      expect(failure).toMatchObject({ name: 'VigilError', code: 'kafka_authentication', retriable: false });
      expect((failure as Error).message).toMatch(/^kafka \(rdkafka\): connecting to 127\.0\.0\.1:\d+: .*SASL authentication error: Authentication failed .* SCRAM-SHA-512/);
      expect((failure as Error).message).not.toContain(wrongPassword);
    } finally {
      await deleteTopics(kafka, config);
    }
  }, 120_000);
});
