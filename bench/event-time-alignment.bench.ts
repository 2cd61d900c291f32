/**
 * The cost of event-time alignment (docs/event-time.md) on a backlog, on the real Kafka.
 *
 * One hour of traffic is produced before anything consumes it, as after an outage: three topics
 * of two partitions, the policy topic large, the invocation topic a little smaller, the device
 * topic small (so, unaligned, it is read minutes of event time ahead of the others). Then the
 * same backlog is consumed from the beginning by fresh consumer groups through the partition
 * runner, without alignment and with it (at the default skew, and at a looser one): every
 * message's JSON is parsed and costs `eventUs` of CPU (validation, enrichment, documents), and
 * each chunk waits `chunkMs` for a store round trip, as the pipeline's chunks wait for
 * Elasticsearch and Redis.
 *
 * Printed: messages per second of each run, and its ratio to the unaligned one; how far ahead in
 * event time the fastest partition got of the slowest (the disorder the rules would see); the
 * chunks and pauses; and the memory held for reordering: the largest number of bytes of fetched
 * messages waiting in hand (kafkajs's batches, which alignment holds rather than copies) and the
 * aligner's own state.
 *
 *   npm run bench:event-time -- [events=20000] [chunkMs=5] [eventUs=100]
 */
import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { EventTimeAligner, createKafka, createLogger, createPartitionRunner, ensureTopics, loadConfig, partitionKey, sleep, type Config } from '../platform';
import { messageEventTime } from '../ingest/event-time';
import { deleteTopics } from '../scripts/cleanup';
import { positiveInteger } from './arguments';

const EVENTS = positiveInteger(process.argv[2], 20_000, 'events');
const CHUNK_MS = positiveInteger(process.argv[3], 5, 'chunkMs');
const EVENT_US = positiveInteger(process.argv[4], 100, 'eventUs');
const HOUR = 3_600_000;
const START = Date.parse('2026-03-01T10:00:00Z');
const SHARES = { policy: 0.6, invocation: 0.35, device: 0.05 } as const;

const id = randomBytes(4).toString('hex');
const config: Config = loadConfig({
  ...process.env,
  VIGIL_TOPIC_POLICY: `bench-${id}.policy`,
  VIGIL_TOPIC_INVOCATION: `bench-${id}.invocation`,
  VIGIL_TOPIC_DEVICE: `bench-${id}.device`,
  VIGIL_TOPIC_DEADLETTER: `bench-${id}.deadletter`,
  VIGIL_TOPIC_DETECTIONS: `bench-${id}.detections`,
  VIGIL_TOPIC_NOTIFICATIONS: `bench-${id}.notifications`,
  VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `bench-${id}.notifications-deadletter`,
  VIGIL_TOPIC_PARTITIONS: '2',
});
const logger = createLogger({ level: 'error' });

async function produceBacklog(kafka: Kafka): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (const family of ['policy', 'invocation', 'device'] as const) {
      const count = Math.round(EVENTS * SHARES[family]);
      for (let from = 0; from < count; from += 2000) {
        const messages = [];
        for (let index = from; index < Math.min(count, from + 2000); index++) {
          const user = `u-${index % 200}`;
          const time = new Date(START + Math.floor((index / count) * HOUR)).toISOString();
          messages.push({ key: user, value: JSON.stringify({ id: `evt-${family}-${index}`, schemaVersion: 1, family, time, actor: { userId: user }, client: { ip: '81.2.69.142' } }) });
        }
        await producer.send({ topic: config.topics[family], acks: -1, messages });
      }
    }
  } finally {
    await producer.disconnect();
  }
}

interface Result {
  name: string;
  seconds: number;
  chunks: number;
  holds: number;
  /** The largest gap in event time between the partitions' latest handled events, ms. */
  maxAheadMs: number;
  /** The most bytes of fetched messages waiting in hand at once. */
  waitingBytes: number;
  alignerBytes: number;
}

async function consume(kafka: Kafka, name: string, skewMs: number | undefined): Promise<Result> {
  const aligner = skewMs === undefined ? undefined : new EventTimeAligner({ maxSkewMs: skewMs, idleMs: 5000 });
  const latest = new Map<string, number>();
  const inHand = new Map<string, number>();
  let handled = 0;
  let chunks = 0;
  let maxAheadMs = 0;
  let waitingBytes = 0;
  let alignerBytes = 0;
  const runner = createPartitionRunner({
    component: 'bench',
    chunkSize: config.bulk.maxDocs,
    logger,
    async handle({ topic, partition, messages }) {
      let last = 0;
      for (const message of messages) {
        const event = JSON.parse(message.value?.toString() ?? '{}') as { time: string };
        last = Math.max(last, Date.parse(event.time));
        // The CPU each event costs the pipeline (validation, enrichment, documents), on the event loop.
        const until = performance.now() + EVENT_US / 1000;
        while (performance.now() < until);
      }
      await sleep(CHUNK_MS);
      latest.set(partitionKey(topic, partition), last);
      const times = [...latest.values()];
      if (latest.size === 6) maxAheadMs = Math.max(maxAheadMs, Math.max(...times) - Math.min(...times));
      // What waits in hand while this chunk ran: the other batches' bytes.
      waitingBytes = Math.max(waitingBytes, [...inHand.values()].reduce((sum, bytes) => sum + bytes, 0));
      handled += messages.length;
      chunks++;
    },
    ...(aligner ? { alignment: { aligner, eventTime: (message: KafkaMessage) => messageEventTime(message.value) } } : {}),
  });
  const consumer = kafka.consumer({ groupId: `bench-${id}-${name}`, allowAutoTopicCreation: false, maxBytesPerPartition: 8 * 1024 * 1024, maxBytes: 50 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topics: [config.topics.policy, config.topics.invocation, config.topics.device], fromBeginning: true });
  if (aligner) consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => aligner.assign(payload.memberAssignment));
  // Timed from the first batch: the group join before it is no part of the reading.
  let began: number | undefined;
  await consumer.run({
    eachBatchAutoResolve: false,
    autoCommitThreshold: 1,
    partitionsConsumedConcurrently: 6,
    eachBatch: async (payload) => {
      began ??= performance.now();
      const key = partitionKey(payload.batch.topic, payload.batch.partition);
      inHand.set(key, payload.batch.messages.reduce((sum, message) => sum + (message.value?.length ?? 0), 0));
      try {
        await runner.eachBatch(payload);
      } finally {
        inHand.delete(key);
      }
    },
  });
  while (handled < EVENTS) await sleep(20);
  const seconds = (performance.now() - (began ?? 0)) / 1000;
  if (aligner) alignerBytes = Buffer.byteLength(JSON.stringify(aligner.stats())) + aligner.stats().partitions * 64;
  runner.stop();
  await consumer.disconnect();
  return { name, seconds, chunks, holds: aligner?.stats().holds ?? 0, maxAheadMs, waitingBytes, alignerBytes };
}

async function main(): Promise<void> {
  const kafka = createKafka(config, logger, `bench-${id}`);
  await ensureTopics(kafka, config);
  try {
    await produceBacklog(kafka);
    const runs = [
      await consume(kafka, 'unaligned', undefined),
      await consume(kafka, 'aligned-60s', config.detection.eventTimeSkewMs),
      await consume(kafka, 'aligned-300s', 300_000),
    ];
    const baseline = runs[0] as Result;
    console.log(`event-time alignment: ${EVENTS} events (one hour; policy 60%, invocation 35%, device 5%), 3 topics × 2 partitions, ${CHUNK_MS} ms per chunk, ${EVENT_US} µs per event`);
    for (const run of runs) {
      const rate = EVENTS / run.seconds;
      console.log(
        `  ${run.name.padEnd(12)} ${rate.toFixed(0).padStart(7)} msg/s  ratio ${(rate / (EVENTS / baseline.seconds)).toFixed(2)}  chunks ${String(run.chunks).padStart(5)}  pauses ${String(run.holds).padStart(4)}  max ahead ${(run.maxAheadMs / 1000).toFixed(0).padStart(5)} s  waiting in hand ≤ ${(run.waitingBytes / 1024).toFixed(0)} KiB  aligner ${run.alignerBytes} B`,
      );
    }
  } finally {
    await deleteTopics(kafka, config);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
