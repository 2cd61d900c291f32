import type { KafkaMessage, Message } from 'kafkajs';
import type { z } from 'zod';

/**
 * A message of one of Vigil's own topics (detections, the notification outbox), parsed as JSON
 * and checked against its schema. Not JSON at all is a failed result like any other, so the
 * caller logs and skips it in one place: a bad message of our own is a bug upstream, never a jam.
 */
export function parseOwnMessage<S extends z.ZodType>(message: KafkaMessage, schema: S): ReturnType<S['safeParse']> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.value?.toString('utf8') ?? 'null');
  } catch {
    parsed = undefined;
  }
  return schema.safeParse(parsed) as ReturnType<S['safeParse']>;
}

/** What one send may weigh: half the broker's default `max.message.bytes` (1 MiB). */
export const SEND_BATCH_BYTES = 512 * 1024;

/** Bytes on the wire: a string's UTF-8 length, not its count of UTF-16 units. */
function bytesOf(value: Buffer | string | (Buffer | string)[] | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (Array.isArray(value)) return value.reduce((sum, item) => sum + bytesOf(item), 0);
  return Buffer.isBuffer(value) ? value.length : Buffer.byteLength(value, 'utf8');
}

function weight(message: Message): number {
  let bytes = bytesOf(message.value) + bytesOf(message.key);
  for (const [name, value] of Object.entries(message.headers ?? {})) bytes += Buffer.byteLength(name, 'utf8') + bytesOf(value);
  return bytes;
}

/**
 * Cuts messages into sends of at most `maxBytes` (a larger message goes alone), in order. The
 * broker refuses a partition batch above its `max.message.bytes` for good (kafkajs does not split
 * one), so a send of many large messages to one partition would fail on every retry and stall
 * what waits on it: a chunk of large refused messages (dead letters), a burst of notification
 * outbox records for one destination.
 */
export function sendBatches<M extends Message>(messages: readonly M[], maxBytes = SEND_BATCH_BYTES): M[][] {
  const batches: M[][] = [];
  let batch: M[] = [];
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
