import type { Admin, Consumer, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import { describeIssues, eventSchema, type Family, type PolicyKind } from '../schemas';
import { createPartitionRunner, createProducer, ensureTopics, sendBatches, watchDecodeFailures, type Chunk, type Config, type Instrumentation, type Logger, type PartitionRunner } from '../platform';
import { partitionKeyOf } from './sdk';
import type { AdapterRejectReason, AdapterSettings, GatewayAdapter } from './adapters';
import type { DeadLetterReason } from './classify';
import { redriveOf, toDeadLetterMessage } from './dead-letter';

/** Counters of one adapt consumer since it started, counted once a chunk is acknowledged. */
export interface AdaptStats {
  /** Raw messages read (each may hold many records). */
  messages: number;
  /** Contract events produced to the family topics. */
  events: number;
  eventsByFamily: Partial<Record<Family, number>>;
  /** Records refused, by reason (`adapter_unparseable`, `adapter_unmapped`), and built events that failed the contract (`schema_invalid`). */
  rejectedByReason: Partial<Record<AdapterRejectReason | 'schema_invalid', number>>;
  /** Records skipped on purpose, by reason (`method_unsupported`, `not_http`). */
  skippedByReason: Record<string, number>;
  /** Raw messages sent to the dead-letter topic (one per message, however many of its records were refused). */
  deadLettered: number;
  /** Derived policy events not produced, by kind, because `VIGIL_ADAPT_DERIVED_POLICIES` leaves their kind out. */
  derivedDroppedByKind: Partial<Record<PolicyKind, number>>;
}

/** Dependencies of {@link createAdaptConsumer}. */
export interface AdaptConsumerDeps {
  config: Config;
  kafka: Kafka;
  logger: Logger;
  adapter: GatewayAdapter;
  settings: AdapterSettings;
  /** The raw topic the gateway writes to. */
  topic: string;
  groupId: string;
  /**
   * A group whose offsets on `topic` this one takes over when it has none of its own (the default
   * group's former name, `vigil-adapt-<format>`), so a default that changed does not read the raw
   * topic again from its start.
   */
  inheritOffsetsFrom?: string;
  instrumentation?: Instrumentation;
  /** @defaultValue () => new Date() */
  clock?: () => Date;
}

/** A running `vigil adapt`. */
export interface AdaptConsumer {
  /** Creates the missing topics (the raw one too), joins the group and starts consuming. */
  start(): Promise<void>;
  /** Stops after the chunk in hand (committed) and disconnects. */
  stop(): Promise<void>;
  stats(): AdaptStats;
}

/** Raw messages per chunk: a Kong or APISIX batch can hold a thousand records each. */
const CHUNK_MESSAGES = 100;
/** What one produce request may weigh: half the broker's default `max.message.bytes`. */
const SEND_BYTES = 512 * 1024;

/** One refusal of a raw message: a record the adapter refused, or an event it built that the contract refuses. */
interface Problem {
  reasonCode: DeadLetterReason;
  message: string;
}

/** Whether a group has committed an offset on any partition of the topic. */
async function committedOn(admin: Admin, groupId: string, topic: string): Promise<{ partition: number; offset: string }[]> {
  const [found] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (found?.partitions ?? []).filter(({ offset }) => Number(offset) >= 0).map(({ partition, offset }) => ({ partition, offset }));
}

/**
 * Gives `groupId`, when it has no offsets on the topic, the offsets `from` committed there. A
 * failure fails the start: read from the beginning instead, the whole raw topic would go through
 * the rules again.
 */
async function inheritOffsets(kafka: Kafka, topic: string, groupId: string, from: string, logger: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if ((await committedOn(admin, groupId, topic)).length > 0) return;
    const partitions = await committedOn(admin, from, topic);
    if (partitions.length === 0) return;
    try {
      await admin.setOffsets({ groupId, topic, partitions });
    } catch (error) {
      // Another instance of this group, starting at the same time, joined first: it took them over.
      if ((await committedOn(admin, groupId, topic)).length > 0) return;
      throw error;
    }
    logger.info({ group: groupId, from, partitions: partitions.length }, `group ${groupId} takes over the offsets ${from} committed on ${topic}, and goes on from there`);
  } finally {
    await admin.disconnect();
  }
}

/**
 * `vigil adapt`: reads a gateway's raw topic, translates each message with the adapter, checks
 * every event against the contract, produces the valid ones to the family topics (keyed as the
 * SDK keys them, so one entity's events stay in order) and dead-letters each message with a
 * refused record, untouched, with the reasons. Offsets are committed only once Kafka has
 * acknowledged both, so a crash redoes the chunk; the event ids are deterministic, so the
 * redone events are duplicates the pipeline recognises, never new documents.
 */
export function createAdaptConsumer(deps: AdaptConsumerDeps): AdaptConsumer {
  const { config, kafka, adapter, settings, topic, groupId, instrumentation } = deps;
  const logger = deps.logger.child({ component: 'adapt', format: adapter.format, topic });
  const clock = deps.clock ?? (() => new Date());
  const stats: AdaptStats = { messages: 0, events: 0, eventsByFamily: {}, rejectedByReason: {}, skippedByReason: {}, deadLettered: 0, derivedDroppedByKind: {} };
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;

  function translate(message: KafkaMessage): { events: Message[]; families: Family[]; problems: Problem[]; skipped: string[]; droppedDerived: PolicyKind[] } {
    const events: Message[] = [];
    const families: Family[] = [];
    const problems: Problem[] = [];
    let result;
    try {
      result = adapter.translate(message.value ?? new Uint8Array(0), settings);
    } catch (error) {
      // An adapter is meant never to throw; if one does, the message is kept, not lost.
      logger.error({ err: error, offset: message.offset }, 'the adapter threw; dead-lettering the message');
      return { events, families, problems: [{ reasonCode: 'adapter_unparseable', message: `the ${adapter.format} adapter failed: ${(error as Error).message}` }], skipped: [], droppedDerived: [] };
    }
    for (const reject of result.rejected) problems.push({ reasonCode: reject.reason, message: reject.message });
    for (const built of result.events) {
      const parsed = eventSchema.safeParse(built);
      if (!parsed.success) {
        problems.push({ reasonCode: 'schema_invalid', message: `event ${String(built.id)}: ${describeIssues(parsed.error).join('; ')}` });
        continue;
      }
      const event = parsed.data;
      families.push(event.family);
      events.push({ key: partitionKeyOf(event), value: JSON.stringify(event), headers: { 'vigil-family': event.family } });
    }
    return { events, families, problems, skipped: result.skipped.map((skip) => skip.reason), droppedDerived: result.droppedDerived.map((dropped) => dropped.kind) };
  }

  /** Sends messages to one topic in requests under the broker's limit, one after the other. */
  async function send(target: string, messages: Message[]): Promise<void> {
    for (const batch of sendBatches(messages, SEND_BYTES)) await producer?.send({ topic: target, messages: batch, acks: -1 });
  }

  async function handle(chunk: Chunk): Promise<void> {
    const now = clock();
    const byFamily: Record<Family, Message[]> = { policy: [], invocation: [], device: [] };
    const deadLetters: Message[] = [];
    const counted: Required<Pick<AdaptStats, 'eventsByFamily' | 'rejectedByReason' | 'skippedByReason' | 'derivedDroppedByKind'>> = { eventsByFamily: {}, rejectedByReason: {}, skippedByReason: {}, derivedDroppedByKind: {} };
    for (const message of chunk.messages) {
      const { events, families, problems, skipped, droppedDerived } = translate(message);
      events.forEach((event, index) => {
        const family = families[index] as Family;
        byFamily[family].push(event);
        counted.eventsByFamily[family] = (counted.eventsByFamily[family] ?? 0) + 1;
      });
      for (const reason of skipped) counted.skippedByReason[reason] = (counted.skippedByReason[reason] ?? 0) + 1;
      for (const kind of droppedDerived) counted.derivedDroppedByKind[kind] = (counted.derivedDroppedByKind[kind] ?? 0) + 1;
      for (const problem of problems) {
        const code = problem.reasonCode as AdapterRejectReason | 'schema_invalid';
        counted.rejectedByReason[code] = (counted.rejectedByReason[code] ?? 0) + 1;
      }
      const first = problems[0];
      if (first !== undefined) {
        const redrive = redriveOf(message.headers);
        const reason = problems.length === 1 ? first.message : `${problems.length} refusals: ${problems.map((problem) => problem.message).join('; ')}`;
        logger.debug({ partition: chunk.partition, offset: message.offset, reasonCode: first.reasonCode, refusals: problems.length }, 'dead-lettered');
        deadLetters.push(
          toDeadLetterMessage(
            { reasonCode: first.reasonCode, reason, topic: chunk.topic, partition: chunk.partition, offset: message.offset, value: message.value, originalKey: message.key, ...(redrive ? { redrive } : {}) },
            now,
          ),
        );
      }
    }
    // Every family and the dead letters at once; the commit waits for all of them.
    await Promise.all([
      ...(Object.entries(byFamily) as [Family, Message[]][]).filter(([, messages]) => messages.length > 0).map(([family, messages]) => send(config.topics[family], messages)),
      deadLetters.length > 0 ? send(config.topics.deadLetter, deadLetters) : Promise.resolve(),
    ]);
    stats.messages += chunk.messages.length;
    stats.deadLettered += deadLetters.length;
    for (const [family, count] of Object.entries(counted.eventsByFamily) as [Family, number][]) {
      stats.events += count;
      stats.eventsByFamily[family] = (stats.eventsByFamily[family] ?? 0) + count;
    }
    for (const [reason, count] of Object.entries(counted.rejectedByReason) as [AdapterRejectReason | 'schema_invalid', number][]) stats.rejectedByReason[reason] = (stats.rejectedByReason[reason] ?? 0) + count;
    for (const [reason, count] of Object.entries(counted.skippedByReason)) stats.skippedByReason[reason] = (stats.skippedByReason[reason] ?? 0) + count;
    const dropped = stats.derivedDroppedByKind;
    for (const [kind, count] of Object.entries(counted.derivedDroppedByKind) as [PolicyKind, number][]) dropped[kind] = (dropped[kind] ?? 0) + count;
  }

  const runner: PartitionRunner = createPartitionRunner({
    component: 'adapt',
    chunkSize: CHUNK_MESSAGES,
    handle,
    logger,
    ...(instrumentation ? { instrumentation } : {}),
  });

  return {
    async start() {
      const created = await ensureTopics(kafka, config, [topic]);
      if (created.length > 0) logger.info({ topics: created }, 'created topics');
      if (deps.inheritOffsetsFrom !== undefined && deps.inheritOffsetsFrom !== groupId) await inheritOffsets(kafka, topic, groupId, deps.inheritOffsetsFrom, logger);
      producer = createProducer(kafka);
      await producer.connect();
      consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, sessionTimeout: 30_000 });
      watchDecodeFailures(consumer, logger, groupId);
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: true,
        autoCommitThreshold: 1,
        partitionsConsumedConcurrently: config.topics.partitions,
        eachBatch: (payload) => runner.eachBatch(payload),
      });
      logger.info({ group: groupId, service: settings.service, derivedPolicies: settings.derivedPolicies ?? 'all' }, `adapting ${adapter.format} records from ${topic}`);
    },
    async stop() {
      runner.stop();
      await consumer?.disconnect();
      await producer?.disconnect();
      logger.info({ stats: structuredClone(stats) }, 'adapt consumer stopped');
    },
    stats: () => structuredClone(stats),
  };
}
