import type { Kafka, Message, Producer } from 'kafkajs';
import type { Config } from '../../platform';
import type { FuzzMessage } from './fuzz';

/** Where a produced message landed: the position a dead letter names. */
export type Position = `${string}:${number}:${string}`;

/**
 * A producer for tests, idempotent: on a topic just created, the broker can answer one partition of
 * a request "not the leader" while it writes the others, and kafkajs then sends the whole request
 * again. Without idempotence the partitions that took it hold the messages twice (a test once read
 * two dead letters for one message that way); with it the broker drops the repeat.
 */
export function testProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
}

/**
 * Produces fuzz traffic in order with kafkajs and returns each message's position. Partitions are
 * chosen here (a message follows its key's first message, so a redelivery or a colliding id comes
 * after the event it repeats), and sends are cut at `maxBatchBytes`, under the broker's 1 MB limit
 * per partition batch.
 */
export async function produceTraffic(kafka: Kafka, config: Config, messages: readonly FuzzMessage[], maxBatchBytes = 600_000): Promise<Map<Position, FuzzMessage>> {
  const producer = testProducer(kafka);
  await producer.connect();
  const positions = new Map<Position, FuzzMessage>();
  const partitionOfKey = new Map<string, number>();
  const pending = new Map<string, { batch: { message: FuzzMessage; partition: number }[]; bytes: number }>();

  async function flush(topic: string): Promise<void> {
    const entry = pending.get(topic);
    if (!entry || entry.batch.length === 0) return;
    pending.delete(topic);
    const kafkaMessages: Message[] = entry.batch.map(({ message, partition }) => ({
      key: message.key,
      value: message.value,
      partition,
      ...(message.headers ? { headers: message.headers } : {}),
    }));
    const metadata = await producer.send({ topic, acks: -1, messages: kafkaMessages });
    const next = new Map(metadata.map((record) => [record.partition, BigInt(record.baseOffset ?? '0')]));
    for (const { message, partition } of entry.batch) {
      const offset = next.get(partition) ?? 0n;
      next.set(partition, offset + 1n);
      positions.set(`${topic}:${partition}:${offset.toString()}`, message);
    }
  }

  try {
    for (const message of messages) {
      const topic = config.topics[message.family];
      const keyText = `${topic}|${message.key.toString('latin1')}`;
      const partition = partitionOfKey.get(keyText) ?? message.seq % config.topics.partitions;
      partitionOfKey.set(keyText, partition);
      const bytes = message.key.length + (message.value?.length ?? 0) + Object.entries(message.headers ?? {}).reduce((sum, [name, value]) => sum + name.length + value.length, 0);
      const entry = pending.get(topic) ?? { batch: [], bytes: 0 };
      if (entry.bytes + bytes > maxBatchBytes) {
        await flush(topic);
      }
      const current = pending.get(topic) ?? { batch: [], bytes: 0 };
      current.batch.push({ message, partition });
      current.bytes += bytes;
      pending.set(topic, current);
    }
    for (const topic of [...pending.keys()]) await flush(topic);
  } finally {
    await producer.disconnect();
  }
  return positions;
}
