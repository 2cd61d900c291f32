import { createHash } from 'node:crypto';
import type { IHeaders, Message } from 'kafkajs';
import type { DeadLetterReason } from './classify';

/** What the dead-letter topic says about a message it holds. */
export interface DeadLetterRecord {
  reasonCode: DeadLetterReason;
  reason: string;
  topic: string;
  partition: number;
  offset: string;
  /**
   * The original bytes, untouched, so the message can be fixed and replayed; for a `too_large`
   * message only its first {@link DEAD_LETTER_PREFIX_BYTES}, described by `truncated`.
   */
  value: Buffer | null;
  /**
   * Set when `value` is only the first bytes of the original: its whole size and SHA-256, so a
   * redrive can read the whole message back from its source position and know it is the same.
   */
  truncated?: Truncated;
  originalKey: Buffer | null;
  deadLetteredAt: string;
  /**
   * Set when the refused message was itself a redrive (`vigil deadletters redrive`): where its
   * previous dead letter sat and how many times it has been sent back, so a message that fails
   * again is recognisable and can't be redriven forever.
   */
  redrive?: Redrive;
}

/** What a truncated dead letter says about the whole message it stands for. */
export interface Truncated {
  /** The original value's size in bytes. */
  bytes: number;
  /** The original value's SHA-256, hex. */
  sha256: string;
}

/**
 * How much of a `too_large` message its dead letter keeps: enough to see what it was. The
 * message is over `VIGIL_MAX_MESSAGE_BYTES` by definition, and copying it whole made a flood of
 * oversized messages cost more than everything else the pipeline did (docs/hostile-input.md); a
 * message near the broker's own limit, plus the dead letter's headers, could even exceed it and
 * be refused on every retry. The whole message stays on its source topic, where a redrive reads
 * it back (docs/dead-letters.md).
 */
export const DEAD_LETTER_PREFIX_BYTES = 16 * 1024;

/** The most of an original key a dead letter keeps (in a header): what a key of a sane producer never reaches. */
export const DEAD_LETTER_KEY_MAX_BYTES = 16 * 1024;

/** The largest original (value and key together) a dead letter of another reason carries whole: under the broker's 1 MiB default, with room for headers. */
export const DEAD_LETTER_WHOLE_MAX_BYTES = 900 * 1024;

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
  originalBytes: 'vigil-original-bytes',
  originalSha256: 'vigil-original-sha256',
} as const;

const MAX_REASON_LENGTH = 2000;

/**
 * The dead-letter message for a refused one: the value is the original bytes; the reason and
 * the position ride in headers. Keyed by topic/partition/offset, so a redelivered batch writes
 * the same key again and a compacting or deduplicating reader keeps one.
 */
export function toDeadLetterMessage(record: Omit<DeadLetterRecord, 'deadLetteredAt' | 'truncated'>, now: Date): Message {
  const { value } = record;
  // An oversized message keeps its first bytes; so does any other refused message too large for
  // the dead-letter topic itself (VIGIL_MAX_MESSAGE_BYTES may exceed the broker's 1 MiB limit, and
  // a dead letter the broker refuses for good would stop the partition). Redrive reads the whole
  // original back from its source position. The original key rides along in a header: it is
  // counted, and kept to its first DEAD_LETTER_KEY_MAX_BYTES (a longer one is a producer's
  // mistake or an attack; redriven, the message goes back under the kept part).
  const key = record.originalKey && record.originalKey.length > DEAD_LETTER_KEY_MAX_BYTES ? record.originalKey.subarray(0, DEAD_LETTER_KEY_MAX_BYTES) : record.originalKey;
  const keyBytes = key?.length ?? 0;
  const truncate =
    value !== null && value.length > DEAD_LETTER_PREFIX_BYTES && (record.reasonCode === 'too_large' || value.length + keyBytes > DEAD_LETTER_WHOLE_MAX_BYTES);
  return {
    key: `${record.topic}:${record.partition}:${record.offset}`,
    value: truncate ? value.subarray(0, DEAD_LETTER_PREFIX_BYTES) : value,
    headers: {
      [HEADER.reasonCode]: record.reasonCode,
      [HEADER.reason]: record.reason.slice(0, MAX_REASON_LENGTH),
      [HEADER.topic]: record.topic,
      [HEADER.partition]: String(record.partition),
      [HEADER.offset]: record.offset,
      [HEADER.at]: now.toISOString(),
      ...(key ? { 'vigil-original-key': key } : {}),
      ...(record.redrive ? { [REDRIVE_HEADER.from]: record.redrive.from, [REDRIVE_HEADER.count]: String(record.redrive.count) } : {}),
      ...(truncate ? { [HEADER.originalBytes]: String(value.length), [HEADER.originalSha256]: valueDigest(value) } : {}),
    },
  };
}

/** The hex SHA-256 of a value: how a truncated dead letter names the whole message. */
export function valueDigest(value: Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

function truncatedOf(headers: IHeaders | undefined): Truncated | undefined {
  const bytes = header(headers, HEADER.originalBytes);
  const digest = header(headers, HEADER.originalSha256);
  if (!/^[1-9][0-9]{0,12}$/.test(bytes) || !/^[0-9a-f]{64}$/.test(digest)) return undefined;
  return { bytes: Number(bytes), sha256: digest };
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
  if (record.truncated) {
    // Sending the prefix back would refuse it as not_json, and lose the message for good.
    throw new Error(`the dead letter at ${position.topic}/${position.partition}/${position.offset} holds only the first bytes of its message: read the whole message from its source first`);
  }
  return {
    key: record.originalKey,
    value: record.value,
    headers: {
      [REDRIVE_HEADER.from]: `${position.topic}/${position.partition}/${position.offset}`,
      [REDRIVE_HEADER.count]: String((record.redrive?.count ?? 0) + 1),
    },
  };
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
  const truncated = truncatedOf(message.headers);
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
    ...(truncated ? { truncated } : {}),
  };
}
