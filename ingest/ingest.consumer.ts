import { randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { PartitionAssigners, type Consumer, type ConsumerConfig, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import { FAMILIES, TEMPLATE_VERSION, detectionIndexName, detectionMessage, eventIndexNameAt, type Detection, type EventDocument, type Family } from '../schemas';
import { toDetectionDocument, type BatchClock, type Correlator, type DetectionEngine, type DetectionStats } from '../detectors';
import {
  BulkIndexer,
  CO_PARTITION_PROTOCOL,
  EventTimeAligner,
  latestOffsets,
  SharedWatermark,
  checkCoPartitioned,
  coPartitionAssigner,
  createFetchAheadRunner,
  createPartitionRunner,
  type AlignmentStats,
  createProducer,
  ensureTopicStates,
  installTemplates,
  type BulkItem,
  type BulkItemResult,
  type Chunk,
  type Config,
  type Instrumentation,
  type Logger,
  type FetchAheadRunner,
  type PartitionRunner,
  type PartitionRunnerOptions,
  type PipelineStage,
  type WatermarkStore,
  sendBatches,
  watchDecodeFailures,
} from '../platform';
import { correlationDocument } from './correlation';
import type { DeadLetterReason } from './classify';
import { redriveOf, toDeadLetterMessage } from './dead-letter';
import type { GeoLookup } from './enrich';
import { toEventDocument } from './event-document';
import { conflictReason, resolveDuplicates, type HashedItem } from './id-conflicts';
import { RecentIds } from './recent-ids';
import { correlate, decode, type Refused } from './stages';
import { messageEventTime } from './event-time';

/**
 * The most documents remembered as created by a chunk that then failed, until its redo counts
 * them: a few chunks' worth (a redo follows within the partition's backoff; one another instance
 * takes over after a rebalance counts them as duplicates, and they age out here).
 */
const CREATED_BEFORE_REDO_MAX = 20_000;

/** Dead-letter sends the broker may hold at once (every partition's chunks share the producer). */
const DEAD_LETTER_SENDS_IN_FLIGHT = 5;

/** Counters of one pipeline instance since it started. */
export interface IngestStats {
  consumed: number;
  /** Messages consumed (and committed) per family of their topic: events in. */
  consumedByFamily: Partial<Record<Family, number>>;
  indexed: number;
  /** Events Elasticsearch created a document for, per family. */
  indexedByFamily: Partial<Record<Family, number>>;
  /** Events already indexed with the same content (redeliveries); a same id with other content is an `id_conflict` dead letter. */
  duplicates: number;
  deadLettered: number;
  deadLetteredByReason: Partial<Record<DeadLetterReason, number>>;
  pauses: number;
  /** Detections produced (after Elasticsearch and the detections topic acknowledged them). */
  detections: number;
  detectionsByRule: Record<string, number>;
  /** The engine's own counters (late events, degraded evaluations, round trips), when detection is on. */
  engine?: DetectionStats;
  /** Event-time alignment across the partitions this instance holds, when it is on (see docs/event-time.md). */
  alignment?: AlignmentStats;
}

/** Dependencies of {@link createIngestPipeline}: everything injected, nothing global. */
export interface IngestPipelineDeps {
  config: Config;
  kafka: Kafka;
  elasticsearch: Client;
  logger: Logger;
  /** Where client addresses are located (the composition root opens the database). */
  geoLookup: GeoLookup;
  /** @defaultValue () => new Date() */
  clock?: () => Date;
  /** Correlates each chunk (request view, session device) before detection and indexing. */
  correlator?: Correlator;
  /** Runs the rules on every batch; without it the pipeline only indexes. */
  detection?: DetectionEngine;
  /**
   * Where the group's instances share their event-time watermarks (the rules' Redis), so that
   * none reads a backlog more than the skew ahead of another (see shared-watermark.ts).
   */
  watermarkStore?: WatermarkStore;
  /** Called with every batch's detections once they are indexed and published. */
  onDetections?: (detections: readonly Detection[]) => void;
  /** Receives `runner.*` and `pipeline.stage` events. */
  instrumentation?: Instrumentation;
  /**
   * What must be ready before the first chunk (the composition root opens the geo database
   * here). start() runs it beside its own set-up (topics, templates, producers) and joins the
   * group only once both are done; a rejection fails start().
   */
  prepare?: () => Promise<unknown>;
}

/** A running ingest consumer. */
export interface IngestPipeline {
  /** Creates missing topics and templates, joins the group, and starts consuming. */
  start(): Promise<void>;
  /** Stops consuming after the batch in hand, flushes, and disconnects. */
  stop(): Promise<void>;
  stats(): IngestStats;
}

/**
 * The ingest consumer's settings. What one fetch may bring comes from `config.fetch`: kafkajs
 * reads each fetch response into one Buffer (and each compressed batch into another), and the
 * messages decoded from it reference it until the last of them is handled, so these bound the
 * memory a fetch holds.
 */
export function ingestConsumerConfig(config: Config): ConsumerConfig {
  return {
    groupId: config.consumerGroup,
    allowAutoTopicCreation: false,
    sessionTimeout: 30_000,
    maxBytesPerPartition: config.fetch.maxBytesPerPartition,
    maxBytes: config.fetch.maxBytes,
    // How long the broker may hold a fetch open when none of its partitions has data (it answers
    // as soon as one byte is there). A partition resumed after an event-time hold is fetched only
    // with the next request: at kafkajs's 5 s, each hold cost up to 5 s, and a backlog read by
    // several instances moves in holds, one skew period at a time (docs/event-time.md).
    maxWaitTimeInMs: 250,
    // Partition N of the three topics goes to one instance, so each instance aligns whole keys
    // (docs/scaling.md). Round robin second: the group falls back to it while an instance of
    // an older version is still a member, during a rolling upgrade.
    partitionAssigners: [coPartitionAssigner, PartitionAssigners.roundRobin],
  };
}

/**
 * The ingest consumer group: decode (validate, enrich) → dead-letter what can never pass →
 * correlate → index and detect, side by side → commit.
 *
 * Offsets are committed only after Elasticsearch acknowledged the documents (and the dead-letter
 * topic the refused messages): at-least-once, and since the event id is the document id and
 * writes are `create`, a redelivery changes nothing. When a store pushes back, the partition
 * runner pauses the partition with backoff; its unacknowledged messages are fetched again.
 */
export function createIngestPipeline(deps: IngestPipelineDeps): IngestPipeline {
  const { config, kafka, elasticsearch, geoLookup, instrumentation } = deps;
  const logger = deps.logger.child({ component: 'ingest' });
  const clock = deps.clock ?? (() => new Date());
  const familyOfTopic = new Map<string, Family>(FAMILIES.map((family) => [config.topics[family], family]));
  const indexer = new BulkIndexer(elasticsearch, config.bulk, deps.logger.child({ component: 'bulk-indexer' }));
  const stats: IngestStats = {
    consumed: 0,
    consumedByFamily: {},
    indexed: 0,
    indexedByFamily: {},
    duplicates: 0,
    deadLettered: 0,
    deadLetteredByReason: {},
    pauses: 0,
    detections: 0,
    detectionsByRule: {},
  };
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  // Dead letters have a producer of their own: under hostile traffic they are most of the bytes
  // written, and behind them in one request queue the detections of good events would wait.
  let deadLetterProducer: Producer | undefined;

  /** Runs one stage and reports it, when anyone listens (the ids are listed only then). */
  async function timed<T>(stage: PipelineStage, chunk: Chunk, items: number, run: () => Promise<T> | T, events: readonly { event: { id: string } }[] = []): Promise<T> {
    if (!instrumentation?.has('pipeline.stage')) return run();
    const startedAt = performance.now();
    try {
      return await run();
    } finally {
      const { topic, partition } = chunk;
      const eventIds = events.map(({ event }) => event.id);
      instrumentation.emit('pipeline.stage', { stage, topic, partition, items, startedAt, durationMs: performance.now() - startedAt, eventIds });
    }
  }

  function publish(detections: readonly Detection[]): Promise<unknown> {
    if (detections.length === 0 || !producer) return Promise.resolve();
    return producer.send({
      topic: config.topics.detections,
      acks: -1,
      messages: detections.map(detectionMessage),
    });
  }

  /** Sends refused messages to the dead-letter topic, cut under the broker's batch limit. */
  async function sendDeadLetters(chunk: Chunk, refusedMessages: readonly Refused[], now: Date): Promise<void> {
    if (refusedMessages.length === 0) return;
    const { topic, partition } = chunk;
    const deadLetters = refusedMessages.map(({ message, reasonCode, reason }) => {
      // A redriven message that fails again keeps its trail, so the next redrive counts on.
      const redrive = redriveOf(message.headers);
      return toDeadLetterMessage({ reasonCode, reason, topic, partition, offset: message.offset, value: message.value, originalKey: message.key, ...(redrive ? { redrive } : {}) }, now);
    });
    const sender = deadLetterProducer;
    // A chunk is handled only after start() connected the producers.
    if (!sender) throw new Error('the ingest pipeline handled a chunk before it started');
    await timed('dead-letter', chunk, deadLetters.length, async () => {
      // The sends of a chunk go out together: each dead letter has a key of its own (its source
      // position), so no order among them is worth a round trip per send.
      await Promise.all(sendBatches(deadLetters).map((batch) => sender.send({ topic: config.topics.deadLetter, messages: batch, acks: -1 })));
    });
  }

  // Ids this process saw acknowledged, with their content hash: a redelivery or an id collision
  // of one of them is decided before correlation, rules and indexing (see recent-ids.ts).
  const recentIds = new RecentIds(config.recentIds);
  // Documents Elasticsearch created in a chunk that then failed (others of it still pushed back
  // after the retries), with their content hash. Nothing was counted for that chunk; its redo
  // finds them indexed (a 409 with the same content) and counts them here as indexed, once, not
  // as duplicates: the counters stay those of the events, not of the attempts.
  const createdBeforeRedo = new RecentIds(CREATED_BEFORE_REDO_MAX);

  /**
   * One chunk, once. When it fails, the rules' clock goes back to where the chunk found it: the
   * chunk is redone, and the redo must read the same clock (the same events late, or not).
   */
  async function handle(chunk: Chunk): Promise<() => void> {
    let ruleClock: BatchClock | undefined;
    try {
      return await handleOnce(chunk, (clock) => (ruleClock = clock));
    } catch (error) {
      if (ruleClock) deps.detection?.rewind(ruleClock);
      throw error;
    }
  }

  async function handleOnce(chunk: Chunk, clocked: (clock: BatchClock) => void): Promise<() => void> {
    const { topic, partition, messages } = chunk;
    const now = clock();
    const { decoded, refused } = await timed('decode', chunk, messages.length, () =>
      decode(messages, { limits: config.limits, family: familyOfTopic.get(topic), now, geoLookup }),
    );
    // One line per chunk, not per message: under hostile traffic most messages are refused, and a
    // line each would cost more than refusing them. Each dead letter names its own position.
    if (refused.length > 0 && logger.isLevelEnabled('debug')) {
      const reasons: Partial<Record<DeadLetterReason, number>> = {};
      for (const { reasonCode } of refused) reasons[reasonCode] = (reasons[reasonCode] ?? 0) + 1;
      logger.debug({ topic, partition, firstOffset: messages[0]?.offset, messages: messages.length, refused: refused.length, reasons }, 'dead-lettering refused messages');
    }
    // An id this process saw acknowledged is decided here, as Elasticsearch would decide it after
    // the rules: the same content is a duplicate (a redelivery), other content an id conflict.
    // Neither is correlated, evaluated or indexed. So is a later copy of an id that came earlier
    // in this chunk (a twin): it is decided by what Elasticsearch answers for the first copy.
    const hashed: HashedItem[] = [];
    const documents: EventDocument[] = [];
    const fresh: typeof decoded = [];
    const known: Refused[] = [];
    const twins: { message: KafkaMessage; item: HashedItem; first: number }[] = [];
    const firstOfId = new Map<string, number>();
    let knownDuplicates = 0;
    for (const entry of decoded) {
      const { event, enrichment, message } = entry;
      const document = toEventDocument(event, enrichment, { topic, partition, offset: message.offset }, now, { original: config.indices.eventOriginal });
      // `@timestamp` is the event time in UTC: the index's day without parsing the time again.
      const index = eventIndexNameAt(config.indices.prefix, event.family, document['@timestamp']);
      const storedHash = recentIds.get(index, event.id);
      const idKey = `${index}\u0000${event.id}`;
      const first = firstOfId.get(idKey);
      const item: HashedItem = { index, id: event.id, contentHash: document.vigil.content_hash };
      if (storedHash === item.contentHash) knownDuplicates++;
      else if (storedHash !== undefined) known.push({ message, reasonCode: 'id_conflict', reason: conflictReason(item, storedHash) });
      else if (first !== undefined) twins.push({ message, item, first });
      else {
        firstOfId.set(idKey, fresh.length);
        fresh.push(entry);
        hashed.push(item);
        documents.push(document);
      }
    }

    // What decode refused is dead-lettered while the rest is correlated, indexed and detected,
    // not after: under hostile traffic these sends would otherwise stand in the good events' way.
    // The ids decided above as conflicts go in the same sends: they need no answer from
    // Elasticsearch, and a second send would be a second acknowledgement to wait for before the
    // commit. The commit barrier below still waits for them.
    const deadLettering = sendDeadLetters(chunk, [...refused, ...known], now);
    deadLettering.catch(() => undefined); // awaited below; handled here in case a stage throws first

    const { contexts, inputs } = await timed(
      'correlate',
      chunk,
      fresh.length,
      () => correlate(fresh, { correlator: deps.correlator, detecting: deps.detection !== undefined }),
      fresh,
    );
    // The rules' clock, read before indexing: an event too late for the stateful rules is indexed
    // with `vigil.late` (never dropped), and evaluated with this same reading.
    const stream = `${topic}:${partition}`;
    const ruleClock = deps.detection && inputs.length > 0 ? deps.detection.clockBatch(inputs, stream) : undefined;
    if (ruleClock) clocked(ruleClock);
    const items: BulkItem[] = documents.map((document, position) => {
      const correlation = correlationDocument(contexts[position]);
      if (correlation) document.vigil.correlation = correlation;
      if (ruleClock?.late[position] === true) document.vigil.late = true;
      const { index, id } = hashed[position] ?? { index: '', id: '' };
      return { index, id, document };
    });

    // The events are indexed while the rules run: both are idempotent (documents are created
    // with the event id; detections have ids of their own), and the offsets are committed only
    // once both are done. If rule state is unavailable, evaluateBatch throws: the chunk is not
    // committed and is redone later, its events then counting as duplicates.
    // A 409 is a redelivery only if the stored document holds the same content: the chunk's
    // 409s are read back in one mget and compared by content hash (see id-conflicts.ts).
    const indexing = timed(
      'index',
      chunk,
      items.length,
      async () => {
        if (items.length === 0) return [];
        const settled = await indexer.indexSettled(items);
        const pushedBack = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
        if (pushedBack !== undefined) {
          settled.forEach((outcome, position) => {
            const item = hashed[position];
            if (item && outcome.status === 'fulfilled' && outcome.value.status === 'created') createdBeforeRedo.remember(item.index, item.id, item.contentHash);
          });
          throw pushedBack.reason;
        }
        const acknowledged = settled.map((outcome) => (outcome as PromiseFulfilledResult<BulkItemResult>).value);
        return resolveDuplicates((request) => elasticsearch.mget(request), hashed, acknowledged);
      },
      fresh,
    );
    // Handled here too: it may fail while the rules still run, before anything awaits it.
    indexing.catch(() => undefined);
    let detections: Detection[];
    try {
      detections =
        deps.detection && inputs.length > 0
          ? await timed('detect', chunk, inputs.length, () => deps.detection?.evaluateBatch(inputs, { stream, ...(ruleClock ? { clock: ruleClock } : {}) }) ?? [], inputs)
          : [];
    } catch (error) {
      // Settled before the chunk is redone.
      await Promise.allSettled([indexing, deadLettering]);
      throw error;
    }
    // The chunk's events by id, for the address a takeover's final sign-in came from.
    let clientIps: Map<string, string> | undefined;
    const clientIpOf = (eventId: string): string | undefined => {
      clientIps ??= new Map(inputs.flatMap(({ event }) => (event.client.ip === undefined ? [] : [[event.id, event.client.ip] as const])));
      return clientIps.get(eventId);
    };
    const detectionItems: BulkItem[] = detections.map((detection) => ({
      index: detectionIndexName(config.indices.prefix, detection.time),
      id: detection.id,
      document: toDetectionDocument(detection, clock(), { clientIpOf }),
    }));
    // Publishing detections does not wait for indexing: on-call hears of them sooner, and a chunk
    // redone after a failed index publishes the same detection ids again (consumers dedupe by id).
    const [results, detectionResults] = await Promise.all([
      indexing,
      detectionItems.length > 0 ? indexer.index(detectionItems) : Promise.resolve([]),
      timed('publish', chunk, detections.length, () => publish(detections)),
    ]);
    detectionResults.forEach((result, position) => {
      if (result.status === 'rejected') {
        logger.error({ detectionId: detections[position]?.id, reason: result.reason }, 'Elasticsearch refused a detection document');
      }
    });
    let created = 0;
    let duplicates = knownDuplicates;
    const rejected: Refused[] = [];
    // What Elasticsearch acknowledged holds, per id, the hash it now stores; remembered once the
    // chunk is done with (committed, or, fetching ahead, its commit queued: see the runners).
    const acknowledged: { item: HashedItem; storedHash: string }[] = [];
    const createdByFamily: Partial<Record<Family, number>> = {};
    results.forEach((result, position) => {
      const item = hashed[position];
      if (item && (result.status === 'created' || result.status === 'duplicate')) acknowledged.push({ item, storedHash: item.contentHash });
      else if (item && result.status === 'conflict' && result.storedHash !== 'none') acknowledged.push({ item, storedHash: result.storedHash });
      // Created by an earlier attempt at this chunk, which failed before it was counted.
      const createdEarlier = result.status === 'duplicate' && item !== undefined && createdBeforeRedo.take(item.index, item.id) === item.contentHash;
      if (result.status === 'created' || createdEarlier) {
        created++;
        const family = fresh[position]?.event.family;
        if (family) createdByFamily[family] = (createdByFamily[family] ?? 0) + 1;
      }
      else if (result.status === 'duplicate') duplicates++;
      else {
        const message: KafkaMessage | undefined = fresh[position]?.message;
        if (!message) return;
        if (result.status === 'conflict') rejected.push({ message, reasonCode: 'id_conflict', reason: result.reason });
        else rejected.push({ message, reasonCode: 'index_rejected', reason: `Elasticsearch refused the document: ${result.reason}` });
      }
    });
    // A twin meets the content Elasticsearch holds for its id once the first copy was answered.
    for (const { message, item, first } of twins) {
      const outcome = results[first];
      const firstItem = hashed[first];
      const storedHash =
        outcome?.status === 'created' || outcome?.status === 'duplicate' ? firstItem?.contentHash : outcome?.status === 'conflict' && outcome.storedHash !== 'none' ? outcome.storedHash : undefined;
      if (storedHash === item.contentHash) duplicates++;
      else if (storedHash !== undefined) rejected.push({ message, reasonCode: 'id_conflict', reason: conflictReason(item, storedHash) });
      // The id is taken by a document whose content is unknown (neither hash nor original kept): an
      // id conflict too, as its first copy was.
      else if (outcome?.status === 'conflict') rejected.push({ message, reasonCode: 'id_conflict', reason: outcome.reason });
      // The first copy was refused: this one is kept with it, to be redriven once the cause is fixed.
      else rejected.push({ message, reasonCode: 'index_rejected', reason: `an earlier copy of event id ${item.id} in the same chunk was refused (${outcome && 'reason' in outcome ? String(outcome.reason) : 'no answer'}); this one was not sent` });
    }
    // Unlike a decode refusal, a document Elasticsearch refuses is a mapping or template matter an
    // operator should see: one line per chunk, with the first reason.
    const indexRefused = rejected.filter(({ reasonCode }) => reasonCode === 'index_rejected');
    if (indexRefused.length > 0) {
      logger.warn({ topic, partition, firstOffset: messages[0]?.offset, refused: indexRefused.length, reason: indexRefused[0]?.reason }, 'Elasticsearch refused documents for good: dead-lettered as index_rejected');
    }
    await Promise.all([deadLettering, sendDeadLetters(chunk, rejected, now)]);
    if (detections.length > 0) deps.onDetections?.(detections);
    // Counted once the chunk is done with (its commit made or queued), not when handled: a chunk
    // whose commit a rebalance dropped is handled again by the partition's next owner, and was
    // counted twice (events in, detections per rule) while Kafka's own count was not.
    return () => {
      for (const { item, storedHash } of acknowledged) recentIds.remember(item.index, item.id, storedHash);
      stats.consumed += messages.length;
      const topicFamily = familyOfTopic.get(topic);
      if (topicFamily) stats.consumedByFamily[topicFamily] = (stats.consumedByFamily[topicFamily] ?? 0) + messages.length;
      stats.indexed += created;
      for (const [family, count] of Object.entries(createdByFamily) as [Family, number][]) stats.indexedByFamily[family] = (stats.indexedByFamily[family] ?? 0) + count;
      stats.duplicates += duplicates;
      for (const { reasonCode } of [...refused, ...known, ...rejected]) {
        stats.deadLettered++;
        stats.deadLetteredByReason[reasonCode] = (stats.deadLetteredByReason[reasonCode] ?? 0) + 1;
      }
      stats.detections += detections.length;
      for (const detection of detections) stats.detectionsByRule[detection.ruleId] = (stats.detectionsByRule[detection.ruleId] ?? 0) + 1;
    };
  }

  // The rules that combine families see each key's events in event-time order, within the
  // skew, however far apart the topics' backlogs are (docs/event-time.md). Only the rules need
  // it: an indexing-only pipeline reads each partition as fast as it goes.
  // With several instances in the group, each also keeps within the skew of the others' lowest
  // watermark, shared through Redis: a rule keyed by endpoint is fed by every instance.
  const aligning = config.detection.alignEventTime && deps.detection !== undefined;
  let aligner: EventTimeAligner | undefined;
  const offsets = latestOffsets(kafka);
  const shared =
    aligning && deps.watermarkStore
      ? new SharedWatermark({
          store: deps.watermarkStore,
          key: `${config.redis.prefix}:align:${config.consumerGroup}`,
          member: randomUUID(),
          local: () => aligner?.localLow() ?? Infinity,
          onChange: () => aligner?.refresh(),
          // A stopped instance holds the others for at most twice the idleness bound.
          ttlMs: Math.max(2000, config.detection.eventTimeIdleMs * 2),
          logger,
        })
      : undefined;
  if (aligning) {
    aligner = new EventTimeAligner({
      maxSkewMs: config.detection.eventTimeSkewMs,
      idleMs: config.detection.eventTimeIdleMs,
      ...(shared ? { shared } : {}),
      // A partition's claim to be caught up is checked with Kafka before another runs ahead of it.
      confirm: (keys) => offsets.read(keys),
    });
  }
  const runnerOptions: PartitionRunnerOptions = {
    component: 'ingest',
    // One chunk fills one bulk request, sent at once (VIGIL_BULK_FLUSH_MS 0, the default).
    chunkSize: config.bulk.maxDocs,
    handle,
    logger,
    ...(instrumentation ? { instrumentation } : {}),
    // The same clock and size limit as decode: what it will refuse by either never holds a partition back.
    ...(aligner
      ? { alignment: { aligner, eventTime: (message: KafkaMessage) => messageEventTime(message.value, { now: clock().getTime(), maxMessageBytes: config.limits.maxMessageBytes }) } }
      : {}),
  };
  // Fetching ahead, Vigil commits each chunk itself: the consumer is made at start.
  const fetchAhead: FetchAheadRunner | undefined = config.fetch.ahead
    ? createFetchAheadRunner({
        ...runnerOptions,
        control: {
          commit: (offsets) => requireConsumer().commitOffsets([...offsets]),
          pause: (topic, partition) => requireConsumer().pause([{ topic, partitions: [partition] }]),
          resume: (topic, partition) => requireConsumer().resume([{ topic, partitions: [partition] }]),
          seek: (topic, partition, offset) => requireConsumer().seek({ topic, partition, offset }),
        },
      })
    : undefined;
  const runner: PartitionRunner = fetchAhead ?? createPartitionRunner(runnerOptions);
  function requireConsumer(): Consumer {
    if (consumer === undefined) throw new Error('the ingest consumer is not started');
    return consumer;
  }

  return {
    async start() {
      const topicsReady = async (): Promise<void> => {
        const topics = await ensureTopicStates(kafka, config);
        const created = topics.filter((topic) => topic.state === 'created').map((topic) => topic.topic);
        if (created.length > 0) logger.info({ topics: created }, 'created topics');
        // A key's three families are on one partition number only if the topics have as many
        // partitions; the co-partitioning assignor would refuse them at the first rebalance anyway.
        const familyTopics = new Set(FAMILIES.map((family) => config.topics[family]));
        checkCoPartitioned(Object.fromEntries(topics.filter((topic) => familyTopics.has(topic.topic)).map((topic) => [topic.topic, topic.partitions])));
      };
      // Dead letters are keyed by source position: a duplicate from a retry is recognisable.
      producer = createProducer(kafka);
      deadLetterProducer = createProducer(kafka, { maxInFlightRequests: DEAD_LETTER_SENDS_IN_FLIGHT });
      // Topics (Kafka), templates (Elasticsearch), the producers' connections and the caller's
      // preparation (the geo database) don't depend on one another: started together, start-up
      // waits for the slowest rather than their sum (docs/performance.md, start-up). All of them
      // settle before a failure is thrown, and the producers are closed then: a failed start
      // leaves no connection behind (the caller never calls stop() after it).
      const setUp = await Promise.allSettled([topicsReady(), installTemplates(elasticsearch, config), producer.connect(), deadLetterProducer.connect(), deps.prepare?.()]);
      const failed = setUp.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failed) {
        await Promise.allSettled([producer.disconnect(), deadLetterProducer.disconnect()]);
        throw failed.reason;
      }
      const templates = setUp[1];
      if (templates.status === 'fulfilled' && templates.value.newer !== undefined) {
        logger.warn(
          { templates: templates.value.newer, version: TEMPLATE_VERSION },
          "Elasticsearch holds a later Vigil's index templates: left as they are (a rolling upgrade); this build writes the fields it knows, which they hold",
        );
      }
      consumer = kafka.consumer(ingestConsumerConfig(config));
      // A batch no codec can decompress stops the consumer: say which codec, where.
      watchDecodeFailures(consumer, logger, config.consumerGroup);
      // Each assignment (the first join, every rebalance) restarts the alignment: the partitions
      // it holds wait for one another from their committed offsets.
      if (aligner) consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => aligner.assign(payload.memberAssignment));
      if (fetchAhead) consumer.on(consumer.events.GROUP_JOIN, () => fetchAhead.assigned());
      // A chunk redone after a rebalance is redone by its partition's new owner, from the committed offsets.
      consumer.on(consumer.events.GROUP_JOIN, () => deps.detection?.forgetCarried());
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        if (payload.groupProtocol !== CO_PARTITION_PROTOCOL) {
          logger.warn(
            { group: config.consumerGroup, protocol: payload.groupProtocol },
            'the ingest group is not co-partitioned (a member of an older version is in it): a key\'s families may be on different instances until every instance runs this version',
          );
        }
      });
      await shared?.start();
      await consumer.connect();
      await consumer.subscribe({ topics: FAMILIES.map((family) => config.topics[family]), fromBeginning: true });
      await consumer.run({
        eachBatchAutoResolve: false,
        // Commit after every acknowledged chunk: a restart then redoes at most one chunk. Fetching
        // ahead, offsets are resolved when fetched and the runner commits each chunk's own.
        autoCommit: fetchAhead === undefined,
        autoCommitThreshold: 1,
        partitionsConsumedConcurrently: Math.max(1, config.topics.partitions * FAMILIES.length),
        eachBatch: (payload) => runner.eachBatch(payload),
      });
      logger.info({ group: config.consumerGroup, topics: config.topics }, 'ingest pipeline started');
    },
    async stop() {
      runner.stop();
      // kafkajs waits for its own loop's batches; the chunks a fetch-ahead runner has in hand commit before it disconnects.
      await fetchAhead?.drain();
      await consumer?.disconnect();
      await shared?.stop();
      await offsets.close();
      await indexer.flush();
      await Promise.all([producer?.disconnect(), deadLetterProducer?.disconnect()]);
      logger.info({ stats: this.stats() }, 'ingest pipeline stopped');
    },
    stats: () => ({
      ...structuredClone(stats),
      pauses: runner.pauses(),
      ...(deps.detection ? { engine: deps.detection.stats() } : {}),
      ...(aligner ? { alignment: aligner.stats() } : {}),
    }),
  };
}
