import type { IHeaders, Message } from 'kafkajs';
import type { DeadLetterReason } from './classify';

/** What the dead-letter topic says about a message it holds. */
export interface DeadLetterRecord {
  reasonCode: DeadLetterReason;
  reason: string;
  topic: string;
  partition: number;
  offset: string;
  /** The original bytes, untouched, so the message can be fixed and replayed. */
  value: Buffer | null;
  originalKey: Buffer | null;
  deadLetteredAt: string;
}

const HEADER = {
  reasonCode: 'vigil-reason-code',
  reason: 'vigil-reason',
  topic: 'vigil-source-topic',
  partition: 'vigil-source-partition',
  offset: 'vigil-source-offset',
  at: 'vigil-dead-lettered-at',
} as const;

const MAX_REASON_LENGTH = 2000;

/**
 * The dead-letter message for a refused one: the value is the original bytes; the reason and
 * the position ride in headers. Keyed by topic/partition/offset, so a redelivered batch writes
 * the same key again and a compacting or deduplicating reader keeps one.
 */
export function toDeadLetterMessage(record: Omit<DeadLetterRecord, 'deadLetteredAt'>, now: Date): Message {
  return {
    key: `${record.topic}:${record.partition}:${record.offset}`,
    value: record.value,
    headers: {
      [HEADER.reasonCode]: record.reasonCode,
      [HEADER.reason]: record.reason.slice(0, MAX_REASON_LENGTH),
      [HEADER.topic]: record.topic,
      [HEADER.partition]: String(record.partition),
      [HEADER.offset]: record.offset,
      [HEADER.at]: now.toISOString(),
      ...(record.originalKey ? { 'vigil-original-key': record.originalKey } : {}),
    },
  };
}

/** What one dead-letter send may weigh: half the broker's default `max.message.bytes` (1 MiB). */
export const DEAD_LETTER_BATCH_BYTES = 512 * 1024;

function weight(message: Message): number {
  let bytes = (message.value?.length ?? 0) + String(message.key ?? '').length;
  for (const [name, value] of Object.entries(message.headers ?? {})) bytes += name.length + (Buffer.isBuffer(value) ? value.length : String(value).length);
  return bytes;
}

/**
 * Cuts a chunk's dead letters into sends of at most `maxBytes` (a larger letter goes alone). The
 * broker refuses a partition batch above its `max.message.bytes` for good, so a chunk of large
 * refused messages sent at once would fail on every retry and stall its partition.
 */
export function deadLetterBatches(messages: readonly Message[], maxBytes = DEAD_LETTER_BATCH_BYTES): Message[][] {
  const batches: Message[][] = [];
  let batch: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = weight(message);
    if (batch.length > 0 && bytes + size > maxBytes) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(message);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function header(headers: IHeaders | undefined, name: string): string {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? '' : first.toString();
}

/** Reads a dead-letter message back (the CLI, the demo and tests use it). */
export function fromDeadLetterMessage(message: { value: Buffer | null; headers?: IHeaders }): DeadLetterRecord {
  const originalKey = message.headers?.['vigil-original-key'];
  return {
    reasonCode: header(message.headers, HEADER.reasonCode) as DeadLetterReason,
    reason: header(message.headers, HEADER.reason),
    topic: header(message.headers, HEADER.topic),
    partition: Number(header(message.headers, HEADER.partition)),
    offset: header(message.headers, HEADER.offset),
    value: message.value,
    originalKey: Buffer.isBuffer(originalKey) ? originalKey : null,
    deadLetteredAt: header(message.headers, HEADER.at),
  };
}
