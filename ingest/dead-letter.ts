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
  /**
   * Set when the refused message was itself a redrive (`vigil deadletters redrive`): where its
   * previous dead letter sat and how many times it has been sent back, so a message that fails
   * again is recognisable and can't be redriven forever.
   */
  redrive?: Redrive;
}

/** A redriven message's trail, carried in its headers and into its next dead letter. */
export interface Redrive {
  /** The previous dead letter's position, `deadLetterTopic/partition/offset`. */
  from: string;
  /** How many times the message has been sent back, this time included (1 on the first redrive). */
  count: number;
}

/** The headers a redriven message carries (and its dead letter, if it fails again). */
export const REDRIVE_HEADER = { from: 'vigil-redriven-from', count: 'vigil-redrive-count' } as const;

// The headers come from whoever produced to the topic: bounded so a hostile header can't bloat
// the dead letter, and a count that isn't a small integer is not a redrive at all.
const MAX_REDRIVE_FROM_LENGTH = 300;
const MAX_REDRIVE_COUNT = 1_000_000;

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
      ...(record.redrive ? { [REDRIVE_HEADER.from]: record.redrive.from, [REDRIVE_HEADER.count]: String(record.redrive.count) } : {}),
    },
  };
}

/**
 * The redrive trail of a consumed message, read from its headers; `undefined` when it was not
 * redriven or the headers are not a trail Vigil wrote (a count that isn't an integer from 1 up).
 */
export function redriveOf(headers: IHeaders | undefined): Redrive | undefined {
  const from = header(headers, REDRIVE_HEADER.from);
  const countText = header(headers, REDRIVE_HEADER.count);
  if (from === '' || !/^[1-9][0-9]{0,6}$/.test(countText)) return undefined;
  const count = Number(countText);
  if (count > MAX_REDRIVE_COUNT) return undefined;
  return { from: from.slice(0, MAX_REDRIVE_FROM_LENGTH), count };
}

/** Where a dead letter sits in the dead-letter topic. */
export interface DeadLetterPosition {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * The message that sends a dead letter back to its source topic: the original bytes under the
 * original key, with the redrive trail (this dead letter's position, the count one higher) in
 * headers. The event id is unchanged, so a redrive of an event that was indexed after all is a
 * duplicate, not a new document.
 */
export function toRedriveMessage(record: DeadLetterRecord, position: DeadLetterPosition): Message {
  return {
    key: record.originalKey,
    value: record.value,
    headers: {
      [REDRIVE_HEADER.from]: `${position.topic}/${position.partition}/${position.offset}`,
      [REDRIVE_HEADER.count]: String((record.redrive?.count ?? 0) + 1),
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
  const redrive = redriveOf(message.headers);
  return {
    reasonCode: header(message.headers, HEADER.reasonCode) as DeadLetterReason,
    reason: header(message.headers, HEADER.reason),
    topic: header(message.headers, HEADER.topic),
    partition: Number(header(message.headers, HEADER.partition)),
    offset: header(message.headers, HEADER.offset),
    value: message.value,
    originalKey: Buffer.isBuffer(originalKey) ? originalKey : null,
    deadLetteredAt: header(message.headers, HEADER.at),
    ...(redrive ? { redrive } : {}),
  };
}
