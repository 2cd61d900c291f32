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
 * Elasticsearch and Redis. The consumer has the pipeline's settings (`ingestConsumerConfig`:
 * fetch bounds from the configuration, its wait, its assigner), and the aligner checks claims to
 * be caught up with Kafka's latest offsets, as the pipeline's does.
 *
 * Printed, per run: messages per second and the ratio to the unaligned run; the chunks, pauses,
 * and claims to be caught up checked (and withdrawn); how far ahead in event time the fastest
 * partition got of the slowest (the disorder the rules would see); the messages fetched again
 * (a held partition's batch is dropped and fetched again on resume), as a share of the events;
 * and the memory held for reordering: the most bytes of fetched messages (values and keys) in
 * hand at once, taken at every batch's arrival in both runs (kafkajs's batches, which alignment
 * holds rather than copies), with its ratio to the unaligned run. The aligner's own state is
 * measured once, as the heap a fresh aligner holds per partition over many synthetic ones.
 *
 *   npm run bench:event-time -- [events=20000] [chunkMs=5] [eventUs=100]
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { EventTimeAligner, createKafka, createLogger, createPartitionRunner, ensureTopics, latestOffsets, loadConfig, partitionKey, sleep, type Config } from '../platform';
import { FAMILIES } from '../schemas';
import { ingestConsumerConfig } from '../ingest';
import { messageEventTime } from '../ingest/event-time';
import { deleteTopics } from '../scripts/cleanup';
import { positiveInteger } from './arguments';

const EVENTS = positiveInteger(process.argv[2], 20_000, 'events');
const CHUNK_MS = positiveInteger(process.argv[3], 5, 'chunkMs');
const EVENT_US = positiveInteger(process.argv[4], 100, 'eventUs');
const HOUR = 3_600_000;
const START = Date.parse('2026-03-01T10:00:00Z');
/** Synthetic partitions the aligner's state is measured over. */
const SYNTHETIC_PARTITIONS = 5000;
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
  /** Claims to be caught up checked with Kafka, and how many had more to read. */
  checks: number;
  withdrawn: number;
  /** The largest gap in event time between the partitions' latest handled events, ms. */
  maxAheadMs: number;
  /** Messages handed over in batches but not handled from them: fetched again later. */
  refetched: number;
  /** The most bytes of fetched messages (values and keys) in hand at once, and how many messages. */
  inHandBytes: number;
  inHandMessages: number;
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(0);
const messageBytes = (message: KafkaMessage): number => (message.value?.length ?? 0) + (message.key?.length ?? 0);

async function consume(kafka: Kafka, name: string, skewMs: number | undefined): Promise<Result> {
  // The pipeline's aligner: idleness from the configuration, claims checked with Kafka.
  const offsets = latestOffsets(kafka);
  const aligner =
    skewMs === undefined ? undefined : new EventTimeAligner({ maxSkewMs: skewMs, idleMs: config.detection.eventTimeIdleMs, confirm: (keys) => offsets.read(keys) });
  const latest = new Map<string, number>();
  const inHand = new Map<string, { bytes: number; messages: number }>();
  let seen = 0;
  let handled = 0;
  let chunks = 0;
  let maxAheadMs = 0;
  let inHandBytes = 0;
  let inHandMessages = 0;
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
      handled += messages.length;
      chunks++;
    },
    ...(aligner ? { alignment: { aligner, eventTime: (message: KafkaMessage) => messageEventTime(message.value) } } : {}),
  });
  // The pipeline's consumer (fetch bounds, wait, assigner) under a group of the bench's own.
  const consumer = kafka.consumer({ ...ingestConsumerConfig(config), groupId: `bench-${id}-${name}` });
  await consumer.connect();
  await consumer.subscribe({ topics: FAMILIES.map((family) => config.topics[family]), fromBeginning: true });
  if (aligner) consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => aligner.assign(payload.memberAssignment));
  // Timed from the first batch: the group join before it is no part of the reading.
  let began: number | undefined;
  await consumer.run({
    eachBatchAutoResolve: false,
    autoCommitThreshold: 1,
    partitionsConsumedConcurrently: Math.max(1, config.topics.partitions * FAMILIES.length),
    eachBatch: async (payload) => {
      began ??= performance.now();
      const key = partitionKey(payload.batch.topic, payload.batch.partition);
      const { messages } = payload.batch;
      seen += messages.length;
      // Taken whenever a batch arrives (the only moment the sum grows), the same way in every run.
      inHand.set(key, { bytes: messages.reduce((sum, message) => sum + messageBytes(message), 0), messages: messages.length });
      const held = [...inHand.values()];
      inHandBytes = Math.max(inHandBytes, held.reduce((sum, batch) => sum + batch.bytes, 0));
      inHandMessages = Math.max(inHandMessages, held.reduce((sum, batch) => sum + batch.messages, 0));
      try {
        await runner.eachBatch(payload);
      } finally {
        inHand.delete(key);
      }
    },
  });
  while (handled < EVENTS) await sleep(20);
  const seconds = (performance.now() - (began ?? 0)) / 1000;
  const stats = aligner?.stats();
  runner.stop();
  await consumer.disconnect();
  await offsets.close();
  return {
    name,
    seconds,
    chunks,
    holds: stats?.holds ?? 0,
    checks: stats?.checks ?? 0,
    withdrawn: stats?.withdrawn ?? 0,
    maxAheadMs,
    refetched: seen - handled,
    inHandBytes,
    inHandMessages,
  };
}

/**
 * The heap an aligner holds per partition: a fresh aligner is given `count` partitions with the
 * bench's topic names, each with a position and a claim to be caught up (its state after a run),
 * and the heap is compared before and after, with a collection each time.
 */
function alignerBytesPerPartition(count: number): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const topics = Array.from({ length: count }, (_, index) => `${config.topics.invocation}-${index}`);
  gc();
  const before = process.memoryUsage().heapUsed;
  const aligner = new EventTimeAligner({ maxSkewMs: 60_000, idleMs: 5000, confirm: () => new Promise(() => undefined) });
  aligner.assign(Object.fromEntries(topics.map((topic) => [topic, [0]])));
  for (const topic of topics) aligner.advanced(partitionKey(topic, 0), { next: START + HOUR, caughtUp: true, end: '123456' });
  gc();
  const after = process.memoryUsage().heapUsed;
  if (aligner.stats().partitions !== count) throw new Error('the aligner lost partitions');
  aligner.close();
  return (after - before) / count;
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
    const perPartition = alignerBytesPerPartition(SYNTHETIC_PARTITIONS);
    const partitions = config.topics.partitions * FAMILIES.length;
    const alignerBytes = Math.round(perPartition * partitions);
    const baseline = runs[0] as Result;
    const consumerConfig = ingestConsumerConfig(config);
    console.log(
      `event-time alignment: ${EVENTS} events (one hour; policy 60%, invocation 35%, device 5%), 3 topics × 2 partitions, ${CHUNK_MS} ms per chunk, ${EVENT_US} µs per event; ` +
        `fetch ≤ ${kib(consumerConfig.maxBytesPerPartition ?? NaN)} KiB per partition, ≤ ${kib(consumerConfig.maxBytes ?? NaN)} KiB per fetch, wait ${consumerConfig.maxWaitTimeInMs ?? NaN} ms; default bound ${config.detection.eventTimeSkewMs / 1000} s`,
    );
    for (const run of runs) {
      const rate = EVENTS / run.seconds;
      const aligned = run !== baseline;
      // Memory held for reordering: the batches in hand, and the aligner's state when aligning.
      const held = run.inHandBytes + (aligned ? alignerBytes : 0);
      console.log(
        `  ${run.name.padEnd(12)} ${rate.toFixed(0).padStart(7)} msg/s  ratio ${(rate / (EVENTS / baseline.seconds)).toFixed(2)}  chunks ${String(run.chunks).padStart(5)}  ` +
          `pauses ${String(run.holds).padStart(4)}  checks ${String(run.checks).padStart(3)} (withdrawn ${run.withdrawn})  max ahead ${(run.maxAheadMs / 1000).toFixed(0).padStart(5)} s  ` +
          `fetched again ${String(run.refetched).padStart(6)} (${(run.refetched / EVENTS).toFixed(2)}× the events)  ` +
          `in hand ≤ ${kib(run.inHandBytes)} KiB (${run.inHandMessages} messages)  held for reordering ${kib(held)} KiB, ratio ${(held / baseline.inHandBytes).toFixed(2)}`,
      );
    }
    console.log(
      `  aligner state: ${perPartition.toFixed(0)} B per partition (heap held by a fresh aligner with ${SYNTHETIC_PARTITIONS} synthetic partitions), ${alignerBytes} B for these ${partitions}; included above`,
    );
  } finally {
    await deleteTopics(kafka, config);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
