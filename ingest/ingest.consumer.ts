import type { Client } from '@elastic/elasticsearch';
import { Partitioners, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Message, type Producer } from 'kafkajs';
import { FAMILIES, detectionIndexName, eventIndexName, type Detection, type Family, type VigilEvent } from '../schemas';
import { toDetectionDocument, type Correlator, type DetectionEngine, type DetectionInput, type DetectionStats } from '../detectors';
import { toDetectionInput } from './detection';
import { correlationDocument } from './correlation';
import type { Enrichment } from './enrich';
import { backoffDelay, errorMessage, isRetriable, type Config, type Logger } from '../platform';
import { BulkIndexer, type BulkItem } from './bulk-indexer';
import { classifyMessage, type DeadLetterReason } from './classify';
import { toDeadLetterMessage } from './dead-letter';
import { enrich, geoipLiteLookup, type GeoLookup } from './enrich';
import { toEventDocument } from './event-document';
import { ensureTopics, installTemplates } from './infrastructure';

/** Counters of one pipeline instance since it started. */
export interface IngestStats {
  consumed: number;
  indexed: number;
  duplicates: number;
  deadLettered: number;
  deadLetteredByReason: Partial<Record<DeadLetterReason, number>>;
  pauses: number;
  /** Detections produced (after Elasticsearch and the detections topic acknowledged them). */
  detections: number;
  detectionsByRule: Record<string, number>;
  /** The engine's own counters (late events, degraded evaluations, round trips), when detection is on. */
  engine?: DetectionStats;
}

/** Dependencies of {@link createIngestPipeline}: everything injected, nothing global. */
export interface IngestPipelineDeps {
  config: Config;
  kafka: Kafka;
  elasticsearch: Client;
  logger: Logger;
  /** @defaultValue geoip-lite's bundled database */
  geoLookup?: GeoLookup;
  /** @defaultValue () => new Date() */
  clock?: () => Date;
  /** Correlates each chunk (request view, session device) before detection and indexing. */
  correlator?: Correlator;
  /** Runs the rules on every batch; without it the pipeline only indexes. */
  detection?: DetectionEngine;
  /** Called with every batch's detections once they are indexed and published. */
  onDetections?: (detections: readonly Detection[]) => void;
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
 * The ingest consumer group: validate → dead-letter what can never pass → enrich → index.
 *
 * Offsets are committed only after Elasticsearch acknowledged the documents (and the dead-letter
 * topic the refused messages): at-least-once, and since the event id is the document id and
 * writes are `create`, a redelivery changes nothing. When Elasticsearch pushes back, the
 * partition is paused with backoff and resumes by itself; its unacknowledged messages are
 * fetched again.
 */
export function createIngestPipeline(deps: IngestPipelineDeps): IngestPipeline {
  const { config, kafka, elasticsearch } = deps;
  const logger = deps.logger.child({ component: 'ingest' });
  const geoLookup = deps.geoLookup ?? geoipLiteLookup;
  const clock = deps.clock ?? (() => new Date());
  const familyOfTopic = new Map<string, Family>(FAMILIES.map((family) => [config.topics[family], family]));
  const indexer = new BulkIndexer(
    elasticsearch,
    { maxDocs: config.bulk.maxDocs, maxBytes: config.bulk.maxBytes, flushMs: config.bulk.flushMs },
    logger.child({ component: 'bulk-indexer' }),
  );
  const stats: IngestStats = {
    consumed: 0,
    indexed: 0,
    duplicates: 0,
    deadLettered: 0,
    deadLetteredByReason: {},
    pauses: 0,
    detections: 0,
    detectionsByRule: {},
  };
  const pauseAttempts = new Map<string, number>();
  const resumeTimers = new Set<NodeJS.Timeout>();
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;

  function countDeadLetter(reason: DeadLetterReason): void {
    stats.deadLettered++;
    stats.deadLetteredByReason[reason] = (stats.deadLetteredByReason[reason] ?? 0) + 1;
  }

  async function processChunk(topic: string, partition: number, messages: KafkaMessage[]): Promise<void> {
    const family = familyOfTopic.get(topic);
    const now = clock();
    const items: BulkItem[] = [];
    const itemMessages: KafkaMessage[] = [];
    const inputs: DetectionInput[] = [];
    const valid: { event: VigilEvent; enrichment: Enrichment; message: KafkaMessage }[] = [];
    const deadLetters: Message[] = [];
    const reasons: DeadLetterReason[] = [];
    const deadLetter = (message: KafkaMessage, reasonCode: DeadLetterReason, reason: string): void => {
      deadLetters.push(
        toDeadLetterMessage(
          { reasonCode, reason, topic, partition, offset: message.offset, value: message.value, originalKey: message.key },
          now,
        ),
      );
      reasons.push(reasonCode);
    };

    for (const message of messages) {
      const verdict = classifyMessage(message.value, config.limits, family, now);
      if (!verdict.ok) {
        deadLetter(message, verdict.reasonCode, verdict.message);
        logger.debug({ topic, partition, offset: message.offset, reasonCode: verdict.reasonCode }, 'dead-lettered');
        continue;
      }
      valid.push({ event: verdict.event, enrichment: enrich(verdict.event, geoLookup), message });
    }

    // One round trip for the chunk's correlation; retriable when Redis is away (the partition pauses).
    const correlated = deps.correlator ? await deps.correlator.correlate(valid) : valid.map(() => undefined);
    valid.forEach(({ event, enrichment, message }, position) => {
      const context = correlated[position];
      const document = toEventDocument(event, enrichment, { topic, partition, offset: message.offset }, now);
      const correlation = correlationDocument(context);
      if (correlation) document.vigil.correlation = correlation;
      if (deps.detection) inputs.push(toDetectionInput(event, enrichment, context));
      items.push({ index: eventIndexName(config.indices.prefix, event.family, event.time), id: event.id, document });
      itemMessages.push(message);
    });

    // The events are indexed while the rules run: both are idempotent (documents are created
    // with the event id; detections have ids of their own), and the offsets are committed only
    // once both are done. If rule state is unavailable, evaluateBatch throws: the chunk is not
    // committed and is redone later, its events then counting as duplicates.
    const indexing = items.length > 0 ? indexer.index(items) : Promise.resolve([]);
    // Handled here too: it may fail while the rules still run, before anything awaits it.
    indexing.catch(() => undefined);
    let detections: Detection[];
    try {
      detections = deps.detection && inputs.length > 0 ? await deps.detection.evaluateBatch(inputs, { stream: `${topic}:${partition}` }) : [];
    } catch (error) {
      await indexing.catch(() => undefined); // settled before the chunk is redone
      throw error;
    }
    const detectionItems: BulkItem[] = detections.map((detection) => ({
      index: detectionIndexName(config.indices.prefix, detection.time),
      id: detection.id,
      document: toDetectionDocument(detection),
    }));
    // Publishing detections does not wait for indexing: on-call hears of them sooner, and a chunk
    // redone after a failed index publishes the same detection ids again (consumers dedupe by id).
    const publishing =
      detections.length > 0 && producer
        ? producer.send({
            topic: config.topics.detections,
            acks: -1,
            messages: detections.map((detection) => ({
              key: `${detection.ruleId}|${Object.values(detection.key).join(',') || detection.id}`,
              value: JSON.stringify(detection),
              headers: { 'vigil-rule-id': detection.ruleId, 'vigil-severity': detection.severity },
            })),
          })
        : Promise.resolve(undefined);
    const [results, detectionResults] = await Promise.all([
      indexing,
      detectionItems.length > 0 ? indexer.index(detectionItems) : Promise.resolve([]),
      publishing,
    ]);
    detectionResults.forEach((result, position) => {
      if (result.status === 'rejected') {
        logger.error({ detectionId: detections[position]?.id, reason: result.reason }, 'Elasticsearch refused a detection document');
      }
    });
    let created = 0;
    let duplicates = 0;
    results.forEach((result, position) => {
      if (result.status === 'created') created++;
      else if (result.status === 'duplicate') duplicates++;
      else {
        const message = itemMessages[position];
        if (message) deadLetter(message, 'index_rejected', `Elasticsearch refused the document: ${result.reason}`);
      }
    });
    if (deadLetters.length > 0) {
      await producer?.send({ topic: config.topics.deadLetter, messages: deadLetters, acks: -1 });
    }
    // Counted only once everything is acknowledged, so a retried chunk is not counted twice.
    stats.consumed += messages.length;
    stats.indexed += created;
    stats.duplicates += duplicates;
    for (const reason of reasons) countDeadLetter(reason);
    stats.detections += detections.length;
    for (const detection of detections) stats.detectionsByRule[detection.ruleId] = (stats.detectionsByRule[detection.ruleId] ?? 0) + 1;
    if (detections.length > 0) deps.onDetections?.(detections);
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const partitionKey = `${batch.topic}:${batch.partition}`;
    // One chunk fills one bulk request, so a busy partition never waits for the flush timer.
    const chunkSize = config.bulk.maxDocs;
    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!payload.isRunning() || payload.isStale()) return;
      const chunk = batch.messages.slice(start, start + chunkSize);
      try {
        await processChunk(batch.topic, batch.partition, chunk);
      } catch (error) {
        if (!isRetriable(error)) throw error;
        const attempt = (pauseAttempts.get(partitionKey) ?? 0) + 1;
        pauseAttempts.set(partitionKey, attempt);
        const delayMs = backoffDelay(attempt, { initialDelayMs: 500, maxDelayMs: 30_000 });
        stats.pauses++;
        logger.warn(
          { err: error, topic: batch.topic, partition: batch.partition, attempt, delayMs },
          `store unavailable, pausing the partition: ${errorMessage(error)}`,
        );
        const resume = payload.pause();
        const timer = setTimeout(() => {
          resumeTimers.delete(timer);
          resume();
        }, delayMs);
        resumeTimers.add(timer);
        return;
      }
      pauseAttempts.delete(partitionKey);
      const last = chunk[chunk.length - 1];
      if (last) payload.resolveOffset(last.offset);
      await payload.commitOffsetsIfNecessary();
      await payload.heartbeat();
    }
  }

  return {
    async start() {
      const created = await ensureTopics(kafka, config);
      if (created.length > 0) logger.info({ topics: created }, 'created topics');
      await installTemplates(elasticsearch, config);
      producer = kafka.producer({
        allowAutoTopicCreation: false,
        // Dead letters are keyed by source position: a duplicate from a retry is recognisable.
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      consumer = kafka.consumer({ groupId: config.consumerGroup, allowAutoTopicCreation: false, sessionTimeout: 30_000 });
      await consumer.connect();
      await consumer.subscribe({ topics: FAMILIES.map((family) => config.topics[family]), fromBeginning: true });
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: true,
        // Commit after every acknowledged chunk: a restart then redoes at most one chunk.
        autoCommitThreshold: 1,
        partitionsConsumedConcurrently: Math.max(1, config.topics.partitions * FAMILIES.length),
        eachBatch,
      });
      logger.info({ group: config.consumerGroup, topics: config.topics }, 'ingest pipeline started');
    },
    async stop() {
      for (const timer of resumeTimers) clearTimeout(timer);
      resumeTimers.clear();
      await consumer?.disconnect();
      await indexer.flush();
      await producer?.disconnect();
      logger.info({ stats, engine: deps.detection?.stats() }, 'ingest pipeline stopped');
    },
    stats: () => ({ ...structuredClone(stats), ...(deps.detection ? { engine: deps.detection.stats() } : {}) }),
  };
}
