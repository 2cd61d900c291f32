import type { KafkaMessage } from 'kafkajs';
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
