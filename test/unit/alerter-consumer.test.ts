import type { EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { StoreUnavailableError, createLogger } from '../../platform';
import { createPartitionLoop } from '../../detectors/alerting/alerter.consumer';

/** A kafkajs stand-in: records the eachBatch handler so a test can feed it batches. */
function fakeKafka(): { kafka: Kafka; eachBatch: () => (payload: EachBatchPayload) => Promise<void>; disconnected: () => boolean } {
  let handler: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  let disconnected = false;
  const consumer = {
    connect: () => Promise.resolve(),
    subscribe: () => Promise.resolve(),
    run: (config: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) => {
      handler = config.eachBatch;
      return Promise.resolve();
    },
    disconnect: () => {
      disconnected = true;
      return Promise.resolve();
    },
  };
  return {
    kafka: { consumer: () => consumer } as unknown as Kafka,
    eachBatch: () => {
      if (handler === undefined) throw new Error('not started');
      return handler;
    },
    disconnected: () => disconnected,
  };
}

/** One batch of one partition, with the calls it receives. */
function batch(partition: number): { payload: EachBatchPayload; resumed: jest.Mock; paused: jest.Mock; resolved: string[] } {
  const resumed = jest.fn();
  const paused = jest.fn(() => resumed);
  const resolved: string[] = [];
  const messages = [{ offset: '7', value: Buffer.from('{}') }] as unknown as KafkaMessage[];
  const payload = {
    batch: { topic: 'detections', partition, messages },
    pause: paused,
    resolveOffset: (offset: string) => resolved.push(offset),
    commitOffsetsIfNecessary: () => Promise.resolve(),
    heartbeat: () => Promise.resolve(),
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  return { payload, resumed, paused, resolved };
}

describe('the alerter partition loop', () => {
  afterEach(() => jest.useRealTimers());

  function loopWith(handle: (messages: readonly KafkaMessage[]) => Promise<void>): {
    loop: ReturnType<typeof createPartitionLoop>;
    fake: ReturnType<typeof fakeKafka>;
    attempts: () => Array<{ partition: number; attempt: number }>;
  } {
    const lines: string[] = [];
    const fake = fakeKafka();
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const loop = createPartitionLoop({ kafka: fake.kafka, groupId: 'g', topic: 'detections', logger, handle, backoff: { initialDelayMs: 1000, maxDelayMs: 60_000 } });
    const attempts = (): Array<{ partition: number; attempt: number }> =>
      lines.map((line) => JSON.parse(line) as { partition: number; attempt: number }).map(({ partition, attempt }) => ({ partition, attempt }));
    return { loop, fake, attempts };
  }

  it('counts failures per partition, so one partition’s outage does not lengthen another’s pause', async () => {
    jest.useFakeTimers();
    const { loop, fake, attempts } = loopWith(() => Promise.reject(new StoreUnavailableError('redis', 'down')));
    await loop.start();
    await fake.eachBatch()(batch(0).payload);
    await fake.eachBatch()(batch(0).payload);
    await fake.eachBatch()(batch(1).payload);
    expect(attempts()).toEqual([
      { partition: 0, attempt: 1 },
      { partition: 0, attempt: 2 },
      { partition: 1, attempt: 1 },
    ]);
    await loop.stop();
  });

  it('starts counting again after a partition succeeds, and commits the batch', async () => {
    jest.useFakeTimers();
    let fail = true;
    const { loop, fake, attempts } = loopWith(() => (fail ? Promise.reject(new StoreUnavailableError('redis', 'down')) : Promise.resolve()));
    await loop.start();
    await fake.eachBatch()(batch(0).payload);
    fail = false;
    const ok = batch(0);
    await fake.eachBatch()(ok.payload);
    expect(ok.resolved).toEqual(['7']);
    fail = true;
    await fake.eachBatch()(batch(0).payload);
    expect(attempts().map(({ attempt }) => attempt)).toEqual([1, 1]);
    await loop.stop();
  });

  it('resumes a paused partition after the backoff, and stop() cancels a pending resume', async () => {
    jest.useFakeTimers();
    const { loop, fake } = loopWith(() => Promise.reject(new StoreUnavailableError('redis', 'down')));
    await loop.start();
    const first = batch(0);
    await fake.eachBatch()(first.payload);
    expect(first.paused).toHaveBeenCalledTimes(1);
    expect(first.resolved).toEqual([]);
    jest.advanceTimersByTime(1000);
    expect(first.resumed).toHaveBeenCalledTimes(1);

    const second = batch(0);
    await fake.eachBatch()(second.payload);
    await loop.stop();
    expect(fake.disconnected()).toBe(true);
    jest.advanceTimersByTime(120_000);
    expect(second.resumed).not.toHaveBeenCalled();
  });

  it('throws what retrying can not fix to kafkajs, without pausing', async () => {
    const { loop, fake } = loopWith(() => Promise.reject(new TypeError('a bug')));
    await loop.start();
    const failing = batch(0);
    await expect(fake.eachBatch()(failing.payload)).rejects.toThrow('a bug');
    expect(failing.paused).not.toHaveBeenCalled();
    await loop.stop();
  });
});

describe('createPartitionLoop start', () => {
  // An outbox topic deleted after the start created it stopped Vigil with only kafkajs's
  // "This server does not host this topic-partition", naming neither the topic nor the fix.
  it('names the missing topic and the command that creates it', async () => {
    const consumer = {
      connect: () => Promise.resolve(),
      subscribe: () => Promise.reject(Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' })),
      run: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
    };
    const kafka = { consumer: () => consumer } as unknown as Kafka;
    const loop = createPartitionLoop({ kafka, groupId: 'g', topic: 'vigil.notifications', logger: createLogger({ level: 'silent' }), handle: () => Promise.resolve() });
    await expect(loop.start()).rejects.toThrow('kafka: the topic vigil.notifications does not exist (deleted since it was created, or another name configured); `vigil topics ensure` creates Vigil\'s topics');
  });
});
