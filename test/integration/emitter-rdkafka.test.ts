import { pbkdf2 } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { ensureTopics } from '../../platform';
import { createEmitter, type Emitter, type EmitterBatch } from '../../ingest/sdk';
import { rdkafkaClient } from '../../ingest/sdk/rdkafka';
import type { VigilEvent } from '../../schemas';
import { freePort, isolatedConfig, openStack, readTopic, type Stack } from '../support/harness';

const BROKERS = ['127.0.0.1:9092'];
const source = { service: 'rdkafka-test', kind: 'service' } as const;
const resource = { api: 'a', method: 'GET', path: '/x' } as const;

interface Read {
  id: string;
  partition: number;
  key: string | undefined;
  family: string | undefined;
  event: VigilEvent;
}

/** Every message of `topic` until `expected` distinct event ids are read, with its partition, by id. */
async function readWithPartitions(kafka: Kafka, topic: string, expected: number): Promise<Map<string, Read>> {
  const idOf = (message: KafkaMessage): string => (JSON.parse(message.value?.toString() ?? '{}') as VigilEvent).id;
  const read = new Map<string, Read>();
  // Delivery is at least once: a copy of an id already read is the same event.
  for (const message of await readTopic(kafka, topic, expected, 30_000, idOf)) {
    const event = JSON.parse(message.value?.toString() ?? '{}') as VigilEvent;
    read.set(event.id, { id: event.id, partition: message.partition, key: message.key?.toString(), family: message.headers?.['vigil-family']?.toString(), event });
  }
  return read;
}

/** `count` invocation events, each from a user of its own (`u-<n>`, the partition key), ids `<prefix>-<n>`. */
function emitUsers(emitter: Emitter, count: number, prefix: string): void {
  for (let n = 0; n < count; n++) {
    emitter.invocation({ id: `${prefix}-${n}`, actor: { userId: `u-${n}` }, invocation: { resource, route: '/x', status: 200, latencyMs: n } });
  }
}

describe('the SDK emitter on librdkafka (@vigil/sdk/rdkafka) against the real Kafka', () => {
  let stack: Stack;

  beforeAll(async () => {
    // Seven partitions: a partitioner other than kafkajs's would place most keys elsewhere.
    stack = openStack(isolatedConfig({ VIGIL_TOPIC_PARTITIONS: '7' }));
    await ensureTopics(stack.kafka, stack.config);
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  it('delivers every event with its key and family header, each key on the partition kafkajs puts it on', async () => {
    const count = 200;
    const viaKafkajs = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source });
    const viaRdkafka = createEmitter({ kafka: rdkafkaClient({ brokers: BROKERS }), topics: stack.config.topics, source });
    emitUsers(viaKafkajs, count, 'kafkajs');
    emitUsers(viaRdkafka, count, 'rdkafka');
    await Promise.all([viaKafkajs.close(), viaRdkafka.close()]);
    expect(viaRdkafka.stats()).toMatchObject({ accepted: count, delivered: count, dropped: 0, buffered: 0, sendFailures: 0 });

    const read = await readWithPartitions(stack.kafka, stack.config.topics.invocation, 2 * count);
    const partitions = new Set<number>();
    for (let n = 0; n < count; n++) {
      const mine = read.get(`rdkafka-${n}`);
      const theirs = read.get(`kafkajs-${n}`);
      expect(mine).toMatchObject({ key: `u-${n}`, family: 'invocation', event: { family: 'invocation', source: { service: 'rdkafka-test' }, invocation: { latencyMs: n } } });
      expect(mine?.partition).toBe(theirs?.partition);
      partitions.add(mine?.partition ?? -1);
    }
    // The keys spread over the partitions: equal partitions are not all one partition.
    expect(partitions.size).toBe(7);
  });

  it.each([
    [0, 'none'],
    [1, 'gzip'],
    [2, 'snappy'],
    [3, 'lz4'],
  ])('compression %d (%s): the batch is acknowledged and read back whole by kafkajs with Vigil\'s codecs', async (compression, codec) => {
    const producer = rdkafkaClient({ brokers: BROKERS }).producer();
    await producer.connect();
    const topic = stack.config.topics.device;
    const ids = Array.from({ length: 50 }, (_, n) => `${codec}-${n}`);
    const batch: EmitterBatch = {
      acks: -1,
      compression,
      topicMessages: [{ topic, messages: ids.map((id) => ({ key: id, value: JSON.stringify({ id, family: 'device' }), headers: { 'vigil-family': 'device' } })) }],
    };
    try {
      await producer.sendBatch(batch);
    } finally {
      await producer.disconnect();
    }
    const read = await readWithPartitions(stack.kafka, topic, ids.length);
    for (const id of ids) expect(read.get(id)).toMatchObject({ key: id, family: 'device' });
  });

  it('messages Kafka will not take: only failures have delivery reports, and the batch rejects with a retriable error naming the topic; the next batch is unaffected by any of its reports', async () => {
    const missing = `${stack.config.topics.policy}.absent`;
    const producer = rdkafkaClient({ brokers: BROKERS, deliveryTimeoutMs: 2_000 }).producer();
    await producer.connect();
    try {
      // The broker does not create topics: librdkafka holds the message, then times it out.
      // More failures than node-rdkafka brings to JavaScript in one turn of the event loop (100).
      const refused = Array.from({ length: 350 }, (_, n) => ({ key: `k${n}`, value: 'v' }));
      const failure = await producer.sendBatch({ acks: -1, compression: 0, topicMessages: [{ topic: missing, messages: refused }] }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toMatchObject({ name: 'VigilError', code: 'kafka_unavailable', retriable: true });
      expect((failure as Error).message).toMatch(new RegExp(`^kafka \\(rdkafka\\): delivery to ${missing.replace(/\./g, '\\.')}: `));
      // The failure belonged to that batch alone.
      await producer.sendBatch({ acks: -1, compression: 0, topicMessages: [{ topic: stack.config.topics.policy, messages: [{ key: 'k', value: 'after' }] }] });
      const [read] = await readTopic(stack.kafka, stack.config.topics.policy, 1, 30_000);
      expect(read?.value?.toString()).toBe('after');
    } finally {
      await producer.disconnect();
    }
  });

  it('a batch waiting on Kafka does not hold a thread of libuv\'s pool: with four stuck at once, the service\'s own pool work runs long before any of them gives up', async () => {
    const missing = `${stack.config.topics.policy}.absent-pool`;
    // libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise: one stuck batch per thread.
    const producers = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, () => rdkafkaClient({ brokers: BROKERS, deliveryTimeoutMs: 5_000 }).producer());
    try {
      await Promise.all(producers.map((producer) => producer.connect()));
      const gaveUp: number[] = [];
      const stuck = producers.map((producer) =>
        producer.sendBatch({ acks: -1, compression: 0, topicMessages: [{ topic: missing, messages: [{ key: 'k', value: 'v' }] }] }).then(
          () => expect('delivered').toBe('refused: the topic does not exist'),
          () => gaveUp.push(performance.now()),
        ),
      );
      // Let every flush reach the pool, then ask the pool for work of the service's own.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const own = new Promise<number>((resolve, reject) => pbkdf2('secret', 'salt', 1, 32, 'sha256', (error) => (error ? reject(error) : resolve(performance.now()))));
      const [ownDone] = await Promise.all([own, ...stuck]);
      expect(gaveUp).toHaveLength(producers.length);
      // One flush per thread for the whole 5 s would have kept it waiting until the first gave up.
      expect(Math.min(...gaveUp) - ownDone).toBeGreaterThan(2_000);
    } finally {
      await Promise.all(producers.map((producer) => producer.disconnect()));
    }
  });

  it('a broker that is not there: sendBatch fails within the connect timeout with a retriable error naming Kafka and the address; the emitter keeps the events', async () => {
    const port = await freePort();
    const client = rdkafkaClient({ brokers: [`127.0.0.1:${port}`], connectTimeoutMs: 1_500 });
    const producer = client.producer();
    await producer.connect();
    const started = Date.now();
    const failure = await producer.sendBatch({ acks: -1, compression: 0, topicMessages: [{ topic: 't', messages: [{ key: 'k', value: 'v' }] }] }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(failure).toMatchObject({ name: 'VigilError', code: 'kafka_unavailable', retriable: true });
    expect((failure as Error).message).toMatch(new RegExp(`^kafka \\(rdkafka\\): connecting to 127\\.0\\.0\\.1:${port}: `));
    await producer.disconnect();

    const emitter = createEmitter({ kafka: client, topics: stack.config.topics, source });
    emitUsers(emitter, 3, 'unreachable');
    await expect(emitter.flush()).rejects.toThrow(/^kafka \(rdkafka\): connecting to/);
    expect(emitter.stats()).toMatchObject({ accepted: 3, delivered: 0, dropped: 0, buffered: 3, sendFailures: 1 });
    // Closing tries once more, then counts what it could not send as dropped: nothing unaccounted for.
    await expect(emitter.close()).rejects.toThrow(/^kafka \(rdkafka\): connecting to/);
    expect(emitter.stats()).toMatchObject({ accepted: 3, delivered: 0, dropped: 3, buffered: 0 });
  });
});
