import type { KafkaMessage } from 'kafkajs';
import type { Correlated, DetectionInput } from '../detectors';
import type { Correlator } from '../detectors';
import type { Family, VigilEvent } from '../schemas';
import type { Config } from '../platform';
import { classifyMessage, type DeadLetterReason } from './classify';
import { toDetectionInput } from './detection-input';
import { enrich, type Enrichment, type GeoLookup } from './enrich';

/**
 * The stages of the ingest pipeline that decide what an event is, shared by the consumer and
 * by replay so the two can't disagree. Per message: decode (classify, then enrich); per chunk:
 * correlate and build what the rules see. The consumer then fans out to its sinks (events
 * index, the engine with its detections index and topic, the dead-letter topic) behind one
 * commit barrier; replay runs the engine only.
 */

/** A message that passed classification, with what enrichment added. */
export interface Decoded<M = KafkaMessage> {
  event: VigilEvent;
  enrichment: Enrichment;
  message: M;
}

/** A message that can never pass, and why. */
export interface Refused<M = KafkaMessage> {
  message: M;
  reasonCode: DeadLetterReason;
  reason: string;
}

/** Classifies and enriches each message of a chunk. Pure but for the geo lookup. */
export function decode<M extends { value: Buffer | null }>(
  messages: readonly M[],
  /** `now` undefined: no time-range check (replay of a file: its events may be dated any time). */
  options: { limits: Config['limits']; family: Family | undefined; now: Date | undefined; geoLookup: GeoLookup },
): { decoded: Decoded<M>[]; refused: Refused<M>[] } {
  const decoded: Decoded<M>[] = [];
  const refused: Refused<M>[] = [];
  for (const message of messages) {
    const verdict = classifyMessage(message.value, options.limits, options.family, options.now);
    if (verdict.ok) decoded.push({ event: verdict.event, enrichment: enrich(verdict.event, options.geoLookup), message });
    else refused.push({ message, reasonCode: verdict.reasonCode, reason: verdict.message });
  }
  return { decoded, refused };
}

/**
 * Correlates a chunk (one Redis round trip; retriable when Redis is away) and builds the rules'
 * inputs. Without a correlator every context is undefined; without rules, no inputs are built.
 */
export async function correlate(
  decoded: readonly Pick<Decoded<unknown>, 'event' | 'enrichment'>[],
  options: { correlator: Correlator | undefined; detecting: boolean },
): Promise<{ contexts: (Correlated | undefined)[]; inputs: DetectionInput[] }> {
  const contexts = options.correlator ? await options.correlator.correlate(decoded) : decoded.map(() => undefined);
  const inputs = options.detecting ? decoded.map(({ event, enrichment }, position) => toDetectionInput(event, enrichment, contexts[position])) : [];
  return { contexts, inputs };
}
