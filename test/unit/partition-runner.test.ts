import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { createLogger, createPartitionRunner } from '../../platform';

/** One partition's batch as kafkajs hands it to eachBatch, recording the calls it receives. */
function batch(messages: number): { payload: EachBatchPayload; heartbeats: () => number; events: string[] } {
  const events: string[] = [];
  let heartbeats = 0;
  const payload = {
    batch: { topic: 'events', partition: 0, messages: Array.from({ length: messages }, (_, offset) => ({ offset: String(offset), value: Buffer.from('{}') })) as unknown as KafkaMessage[] },
    pause: () => () => undefined,
    resolveOffset: (offset: string) => events.push(`resolve ${offset}`),
    commitOffsetsIfNecessary: () => {
      events.push('commit');
      return Promise.resolve();
    },
    heartbeat: () => {
      heartbeats++;
      return Promise.resolve();
    },
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  return { payload, heartbeats: () => heartbeats, events };
}

describe('the partition runner', () => {
  afterEach(() => jest.useRealTimers());

  it('says whether each chunk ends at the high watermark of the fetch: a backlog until the last one', async () => {
    const { payload } = batch(5);
    (payload.batch as { highWatermark: string }).highWatermark = '5';
    const seen: boolean[] = [];
    const runner = createPartitionRunner({
      component: 'test',
      chunkSize: 2,
      handle: (chunk) => Promise.resolve(void seen.push(chunk.caughtUp)),
      logger: createLogger({ level: 'silent' }),
    });
    await runner.eachBatch(payload);
    expect(seen).toStrictEqual([false, false, true]);
    // More written since: the batch's end is no longer the partition's end.
    const { payload: behind } = batch(2);
    (behind.batch as { highWatermark: string }).highWatermark = '9';
    await runner.eachBatch(behind);
    expect(seen.slice(3)).toStrictEqual([false]);
  });

  it('calls what a chunk resolved with once its offsets are committed, and not when the commit fails', async () => {
    const { payload, events } = batch(3);
    const runner = createPartitionRunner({
      component: 'test',
      chunkSize: 2,
      handle: (chunk) => Promise.resolve(() => void events.push(`committed ${chunk.messages.map((message) => message.offset).join(',')}`)),
      logger: createLogger({ level: 'silent' }),
    });
    await runner.eachBatch(payload);
    expect(events).toStrictEqual(['resolve 1', 'commit', 'committed 0,1', 'resolve 2', 'commit', 'committed 2']);

    const { payload: refused, events: refusedEvents } = batch(2);
    (refused as { commitOffsetsIfNecessary: () => Promise<void> }).commitOffsetsIfNecessary = () => Promise.reject(new Error('the group is rebalancing'));
    await expect(runner.eachBatch(refused)).rejects.toThrow('rebalancing');
    expect(refusedEvents).toStrictEqual(['resolve 1']);
  });

  it('keeps asking kafkajs to heartbeat while a slow chunk is handled, so the member is not dropped from its group', async () => {
    jest.useFakeTimers();
    const { payload, heartbeats, events } = batch(3);
    let finish: () => void = () => undefined;
    const runner = createPartitionRunner({
      component: 'test',
      chunkSize: 10,
      handle: () => new Promise<void>((resolve) => (finish = resolve)),
      backoff: { initialDelayMs: 10, maxDelayMs: 20 },
      logger: createLogger({ level: 'silent' }),
    });
    const running = runner.eachBatch(payload);
    // Longer than kafkajs's 30 s session timeout.
    await jest.advanceTimersByTimeAsync(45_000);
    expect(heartbeats()).toBeGreaterThanOrEqual(30);
    expect(events).toStrictEqual([]);
    finish();
    await running;
    expect(events).toStrictEqual(['resolve 2', 'commit']);
    // Once the chunk is done, no timer asks any more.
    const after = heartbeats();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(heartbeats()).toBe(after);
  });

  it('stops asking when the chunk fails', async () => {
    jest.useFakeTimers();
    const { payload, heartbeats } = batch(1);
    const runner = createPartitionRunner({
      component: 'test',
      chunkSize: 10,
      handle: () => Promise.reject(new TypeError('a bug')),
      backoff: { initialDelayMs: 10, maxDelayMs: 20 },
      logger: createLogger({ level: 'silent' }),
    });
    await expect(runner.eachBatch(payload)).rejects.toThrow('a bug');
    await jest.advanceTimersByTimeAsync(10_000);
    expect(heartbeats()).toBe(0);
  });
});
