import { VigilError } from '../../platform/errors';
import { createEmitter } from '../../ingest/sdk';
import { assertRdkafkaInstalled, librdkafkaConfig, librdkafkaHeaders, rdkafkaClient } from '../../ingest/sdk/rdkafka';

const brokers = ['k1:9092', 'k2:9092'];

describe('librdkafkaConfig: the emitter\'s options as librdkafka properties', () => {
  it('plain: murmur2 partitioning as kafkajs and Java, idempotent, the batch\'s acks and compression; topic-level properties apart', () => {
    expect(librdkafkaConfig({ brokers }, 1, -1)).toStrictEqual({
      global: {
        'metadata.broker.list': 'k1:9092,k2:9092',
        'client.id': 'vigil-sdk',
        dr_cb: true,
        'delivery.report.only.error': true,
        event_cb: true,
        'enable.idempotence': true,
        'compression.codec': 'gzip',
        'queue.buffering.max.messages': 1_000_000,
        'linger.ms': 5,
      },
      // node-rdkafka ignores these in the global configuration (a partitioner set there left kafkajs's placement).
      topic: { partitioner: 'murmur2_random', 'request.required.acks': -1, 'message.timeout.ms': 30_000 },
    });
  });

  it.each([
    [0, 'none'],
    [1, 'gzip'],
    [2, 'snappy'],
    [3, 'lz4'],
  ])('kafkajs compression %d is librdkafka\'s %s', (compression, codec) => {
    expect(librdkafkaConfig({ brokers }, compression, 1).global['compression.codec']).toBe(codec);
  });

  it('refuses a compression it does not write (ZSTD), naming it, and an empty broker list', () => {
    expect(() => librdkafkaConfig({ brokers }, 4, -1)).toThrow(new VigilError('kafka (rdkafka): compression 4 is not one librdkafka writes here (none, gzip, snappy, lz4)', { code: 'config_invalid', retriable: false }));
    expect(() => librdkafkaConfig({ brokers: [] }, 0, -1)).toThrow('kafka (rdkafka): no brokers given');
  });

  it('SASL/SCRAM over TLS with a CA, a client certificate and key, as PEM text', () => {
    const { global: config } = librdkafkaConfig(
      {
        brokers,
        clientId: 'gateway-7',
        ssl: { ca: [Buffer.from('CA-ONE'), 'CA-TWO'], cert: Buffer.from('CERT'), key: 'KEY' },
        sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 's3cret' },
      },
      0,
      -1,
    );
    expect(config).toMatchObject({
      'client.id': 'gateway-7',
      'security.protocol': 'sasl_ssl',
      'ssl.ca.pem': 'CA-ONE\nCA-TWO',
      'ssl.certificate.pem': 'CERT',
      'ssl.key.pem': 'KEY',
      'sasl.mechanisms': 'SCRAM-SHA-512',
      'sasl.username': 'svc',
      'sasl.password': 's3cret',
    });
    expect(config).not.toHaveProperty('enable.ssl.certificate.verification');
  });

  it('TLS alone, SASL alone, and TLS without verification', () => {
    expect(librdkafkaConfig({ brokers, ssl: true }, 0, -1).global['security.protocol']).toBe('ssl');
    expect(librdkafkaConfig({ brokers, sasl: { mechanism: 'plain', username: 'u', password: 'p' } }, 0, -1).global).toMatchObject({ 'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': 'PLAIN' });
    expect(librdkafkaConfig({ brokers, ssl: { rejectUnauthorized: false } }, 0, -1).global).toMatchObject({
      'security.protocol': 'ssl',
      'enable.ssl.certificate.verification': false,
      'ssl.endpoint.identification.algorithm': 'none',
    });
    expect(librdkafkaConfig({ brokers, ssl: false }, 0, -1).global).not.toHaveProperty('security.protocol');
  });

  it('librdkafka properties given by name are set last, over the options, each where librdkafka reads it', () => {
    const config = librdkafkaConfig({ brokers, deliveryTimeoutMs: 5_000, librdkafka: { 'linger.ms': 20, 'batch.size': 2_000_000, partitioner: 'consistent_random', acks: 1 } }, 0, -1);
    expect(config.global).toMatchObject({ 'linger.ms': 20, 'batch.size': 2_000_000 });
    expect(config.topic).toStrictEqual({ partitioner: 'consistent_random', 'request.required.acks': -1, acks: 1, 'message.timeout.ms': 5_000 });
  });
});

describe('librdkafkaHeaders', () => {
  it('one { key: value } per header, in order, repeated keys for arrays, undefined ones left out', () => {
    expect(librdkafkaHeaders({ 'vigil-family': 'policy', trace: [Buffer.from('a'), 'b'], gone: undefined })).toStrictEqual([
      { 'vigil-family': 'policy' },
      { trace: Buffer.from('a') },
      { trace: 'b' },
    ]);
    expect(librdkafkaHeaders(undefined)).toBeUndefined();
  });
});

describe('rdkafkaClient', () => {
  // Without node-rdkafka the client took every event, then retried for ever, delivering nothing.
  it('refuses to be created without node-rdkafka, saying how to install it; finds it when installed', () => {
    const missing = (): string => {
      throw Object.assign(new Error("Cannot find module 'node-rdkafka'"), { code: 'MODULE_NOT_FOUND' });
    };
    let thrown: unknown;
    try {
      assertRdkafkaInstalled(missing);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(VigilError);
    expect(thrown).toMatchObject({ code: 'config_invalid', retriable: false, message: expect.stringContaining('node-rdkafka is not installed; `npm install node-rdkafka`') as unknown });
    expect(() => assertRdkafkaInstalled()).not.toThrow();
  });

  it('takes batches of up to 16 MiB (librdkafka cuts them into requests) and connects nothing until a batch', async () => {
    const client = rdkafkaClient({ brokers: ['127.0.0.1:1'] });
    expect(client.maxSendBytes).toBe(16 * 1024 * 1024);
    const producer = client.producer();
    // connect() only loads node-rdkafka: no broker is needed for it.
    await producer.connect();
    await producer.disconnect();
  });

  // Checked at the first send only, a client without brokers accepted every event and retried for ever.
  it('refuses options librdkafka cannot use when the client is made, not at the first send', () => {
    let thrown: unknown;
    try {
      rdkafkaClient({ brokers: [] });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(VigilError);
    expect(thrown).toMatchObject({ code: 'config_invalid', retriable: false, message: 'kafka (rdkafka): no brokers given' });
  });

  /** The error a call throws; fails the test when it throws nothing. */
  function thrownBy(call: () => unknown): unknown {
    try {
      call();
    } catch (error) {
      return error;
    }
    throw new Error('expected it to throw');
  }

  // librdkafka refuses these only when a producer is made: at the first send, where they were
  // retried for ever as temporary failures ("will retry") while every event was accepted.
  it('refuses a property librdkafka does not know, and timeouts it cannot take, when the client is made', () => {
    const typo = thrownBy(() => rdkafkaClient({ brokers, librdkafka: { 'linger.msx': 5 } }));
    expect(typo).toBeInstanceOf(VigilError);
    expect(typo).toMatchObject({ code: 'config_invalid', retriable: false, message: 'kafka (rdkafka): librdkafka refused the configuration: No such configuration property: "linger.msx"' });
    expect(thrownBy(() => rdkafkaClient({ brokers, librdkafka: { 'linger.ms': 'soon' } }))).toMatchObject({ code: 'config_invalid', retriable: false });
    for (const [name, value] of [
      ['deliveryTimeoutMs', Number.NaN],
      ['deliveryTimeoutMs', 0],
      ['deliveryTimeoutMs', 1.5],
      ['connectTimeoutMs', -1],
      ['connectTimeoutMs', 2 ** 31],
    ] as const) {
      expect(thrownBy(() => rdkafkaClient({ brokers, [name]: value }))).toMatchObject({
        code: 'config_invalid',
        retriable: false,
        message: `kafka (rdkafka): ${name} must be a whole number from 1 to 2147483647, got ${String(value)}`,
      });
    }
    expect(() => rdkafkaClient({ brokers, deliveryTimeoutMs: 2_147_483_647, connectTimeoutMs: 1 })).not.toThrow();
  });

  // A producer librdkafka refuses when a batch opens it (its properties changed after the check
  // at creation, here) was a send failure like a broker away: retried for ever, "will retry".
  it('reports a configuration librdkafka refuses at the first send as one retrying will not fix, without a broker', async () => {
    const librdkafka: Record<string, string | number | boolean> = {};
    const client = rdkafkaClient({ brokers: ['127.0.0.1:1'], librdkafka });
    librdkafka['linger.msx'] = 5;
    const warnings: string[] = [];
    const logger = { warn: (_fields: Record<string, unknown>, message: string) => void warnings.push(message), child: () => logger };
    const emitter = createEmitter({ kafka: client, source: { service: 'unit', kind: 'service' }, logger, closeAtExit: false });
    emitter.policy({ policy: { kind: 'authn', name: 'password', outcome: 'fail', group: 'accounts', resource: { api: 'accounts', method: 'POST', path: '/login' } } });
    const failed: unknown = await emitter.flush().then(
      () => undefined,
      (error: unknown) => error,
    );
    await emitter.close({ timeoutMs: 10 }).catch(() => undefined);
    expect(failed).toBeInstanceOf(VigilError);
    expect(failed).toMatchObject({ code: 'config_invalid', retriable: false });
    // Each try (the flush, then close()'s) says so.
    expect([...new Set(warnings.filter((message) => message.startsWith('event delivery failed')))]).toStrictEqual([
      'event delivery failed, and retrying alone will not fix it (kafka (rdkafka): librdkafka refused the configuration: No such configuration property: "linger.msx"): fix the Kafka configuration; the events wait in the buffer meanwhile',
    ]);
  });

  it('writes LZ4 and Snappy besides none and gzip, and has the emitter default to LZ4', () => {
    const client = rdkafkaClient({ brokers: ['127.0.0.1:1'] });
    expect(client.compressions).toStrictEqual(['none', 'gzip', 'snappy', 'lz4']);
    expect(client.defaultCompression).toBe('lz4');
  });
});
