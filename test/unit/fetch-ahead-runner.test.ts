import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { EventTimeAligner, StoreUnavailableError, createFetchAheadRunner, createLogger, type Chunk, type FetchAheadControl, type FetchAheadRunner } from '../../platform';
import { messageEventTime } from '../../ingest/event-time';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const logger = createLogger({ level: 'silent' });

/** A batch of one partition as kafkajs hands it to eachBatch, from `first` on, recording what it is told. */
function batch(topic: string, first: number, count: number, options: { highWatermark?: number; times?: number[] } = {}): { payload: EachBatchPayload; resolved: string[] } {
  const resolved: string[] = [];
  const messages = Array.from({ length: count }, (_, index) => {
    const time = options.times?.[index];
    return { offset: String(first + index), value: Buffer.from(time === undefined ? '{}' : `{"id":"e${first + index}","time":"${new Date(time).toISOString()}"}`) };
  }) as unknown as KafkaMessage[];
  const payload = {
    batch: { topic, partition: 0, messages, highWatermark: String(options.highWatermark ?? first + count) },
    resolveOffset: (offset: string) => resolved.push(offset),
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  return { payload, resolved };
}

/** The consumer's side, recorded. With `gateCommits`, each commit request waits until `answer()` answers the oldest. */
function control(options: { failCommit?: boolean; gateCommits?: boolean } = {}): FetchAheadControl & { calls: string[]; answer: () => void } {
  const calls: string[] = [];
  const gates: (() => void)[] = [];
  return {
    calls,
    answer: () => gates.shift()?.(),
    commit: (offsets) => {
      calls.push(`commit ${offsets.map(({ topic, partition, offset }) => `${topic}:${partition}@${offset}`).join(' ')}`);
      if (options.failCommit) return Promise.reject(new Error('the group is rebalancing'));
      return options.gateCommits ? new Promise<void>((resolve) => gates.push(resolve)) : Promise.resolve();
    },
    pause: (topic, partition) => void calls.push(`pause ${topic}:${partition}`),
    resume: (topic, partition) => void calls.push(`resume ${topic}:${partition}`),
    seek: (topic, partition, offset) => void calls.push(`seek ${topic}:${partition}@${offset}`),
  };
}

/** A handler whose chunks wait until released, in the order they came. */
function gatedHandler(): { handle: (chunk: Chunk) => Promise<void>; chunks: string[]; release: () => void; waiting: () => number } {
  const chunks: string[] = [];
  const gates: (() => void)[] = [];
  return {
    chunks,
    handle: (chunk) => {
      chunks.push(`${chunk.topic}:${chunk.messages.map((message) => message.offset).join(',')}${chunk.caughtUp ? ' (caught up)' : ''}`);
      return new Promise<void>((resolve) => gates.push(resolve));
    },
    release: () => gates.shift()?.(),
    waiting: () => gates.length,
  };
}

/**
 * A runner of chunks of two whose chunks and commit requests both wait until released; `done`
 * records each chunk's callback as `<topic>@<last offset>`.
 */
function gatedCommits(): { consumer: ReturnType<typeof control>; gated: ReturnType<typeof gatedHandler>; done: string[]; runner: FetchAheadRunner } {
  const consumer = control({ gateCommits: true });
  const gated = gatedHandler();
  const done: string[] = [];
  const handle = (chunk: Chunk): Promise<() => void> => gated.handle(chunk).then(() => () => void done.push(`${chunk.topic}@${chunk.messages.at(-1)?.offset ?? ''}`));
  const runner = createFetchAheadRunner({ component: 'test', chunkSize: 2, maxQueued: 100, handle, logger, control: consumer });
  return { consumer, gated, done, runner };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Stops the runner and checks that its drain waits until `release` (a chunk, a commit) lets it finish. */
async function stopsOnlyOnce(runner: FetchAheadRunner, release: () => void): Promise<void> {
  runner.stop();
  let drained = false;
  const draining = runner.drain().then(() => (drained = true));
  await turn();
  expect(drained).toBe(false);
  release();
  await draining;
}
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`never happened within 2 s: ${what}`);
}

describe('the fetch-ahead runner', () => {
  it('resolves a batch as soon as it is queued, hands it on in chunks in order, and commits each chunk once acknowledged', async () => {
    const consumer = control();
    const gated = gatedHandler();
    const runner = createFetchAheadRunner({ component: 'test', chunkSize: 4, maxQueued: 10, handle: gated.handle, logger, control: consumer });
    const first = batch('events', 0, 3, { highWatermark: 10 });
    await runner.eachBatch(first.payload);
    // Returned before the chunk was acknowledged: kafkajs fetches on from offset 3.
    expect(first.resolved).toStrictEqual(['2']);
    await until(() => gated.waiting() === 1, 'the first chunk');
    // Fetched while the first chunk is in hand: the next chunk takes from both batches.
    const second = batch('events', 3, 7, { highWatermark: 10 });
    await runner.eachBatch(second.payload);
    expect(second.resolved).toStrictEqual(['9']);
    expect(consumer.calls).toStrictEqual([]);
    gated.release();
    await until(() => gated.waiting() === 1 && gated.chunks.length === 2, 'the second chunk');
    gated.release();
    await until(() => gated.chunks.length === 3, 'the third chunk');
    gated.release();
    runner.stop();
    await runner.drain();
    expect(gated.chunks).toStrictEqual(['events:0,1,2', 'events:3,4,5,6', 'events:7,8,9 (caught up)']);
    expect(consumer.calls).toStrictEqual(['commit events:0@3', 'commit events:0@7', 'commit events:0@10']);
  });

  it('pauses fetching a partition whose queue is full, and resumes it once a chunk is taken from it', async () => {
    const consumer = control();
    const gated = gatedHandler();
    const runner = createFetchAheadRunner({ component: 'test', chunkSize: 2, maxQueued: 3, handle: gated.handle, logger, control: consumer });
    await runner.eachBatch(batch('events', 0, 2).payload);
    await until(() => gated.waiting() === 1, 'the first chunk');
    await runner.eachBatch(batch('events', 2, 3).payload);
    expect(consumer.calls).toStrictEqual(['pause events:0']);
    gated.release();
    await until(() => gated.chunks.length === 2, 'the second chunk');
    // Three wait beyond the chunk in hand until the next chunk takes two of them: under the bound.
    // The commit goes once the next chunk is taken (it is not waited for).
    expect(consumer.calls).toStrictEqual(['pause events:0', 'resume events:0', 'commit events:0@2']);
    gated.release();
    await until(() => gated.chunks.length === 3, 'the third chunk');
    gated.release();
    runner.stop();
    await runner.drain();
    expect(gated.chunks).toStrictEqual(['events:0,1 (caught up)', 'events:2,3', 'events:4 (caught up)']);
  });

  // Between a consumer's crash and its restart kafkajs throws on resume ("Consumer group was not
  // initialized"): a worker draining its queue resumed its partition, and the rejection, unhandled,
  // took the process down with no graceful stop.
  it('goes on draining its queue when the consumer refuses a resume (it is restarting), with no unhandled rejection', async () => {
    const consumer = control();
    consumer.resume = () => {
      throw new Error('Consumer group was not initialized, consumer#run must be called first');
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const gated = gatedHandler();
      const runner = createFetchAheadRunner({ component: 'test', chunkSize: 2, maxQueued: 3, handle: gated.handle, logger, control: consumer });
      await runner.eachBatch(batch('events', 0, 2).payload);
      await until(() => gated.waiting() === 1, 'the first chunk');
      await runner.eachBatch(batch('events', 2, 3).payload);
      expect(consumer.calls).toStrictEqual(['pause events:0']);
      gated.release();
      await until(() => gated.chunks.length === 2, 'the second chunk');
      gated.release();
      await until(() => gated.chunks.length === 3, 'the third chunk');
      gated.release();
      runner.stop();
      await runner.drain();
      await turn();
      expect(gated.chunks).toStrictEqual(['events:0,1 (caught up)', 'events:2,3', 'events:4 (caught up)']);
      expect(unhandled).toStrictEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('retries a chunk a store refused from its queue after the backoff, without fetching it again', async () => {
    const consumer = control();
    let calls = 0;
    const handled: string[] = [];
    const runner = createFetchAheadRunner({
      component: 'test',
      chunkSize: 10,
      backoff: { initialDelayMs: 5, maxDelayMs: 5 },
      handle: (chunk) => {
        handled.push(chunk.messages.map((message) => message.offset).join(','));
        return ++calls === 1 ? Promise.reject(new StoreUnavailableError('elasticsearch', 'down for a moment')) : Promise.resolve();
      },
      logger,
      control: consumer,
    });
    await runner.eachBatch(batch('events', 0, 3).payload);
    await until(() => consumer.calls.length === 1, 'the commit');
    expect(handled).toStrictEqual(['0,1,2', '0,1,2']);
    expect(consumer.calls).toStrictEqual(['commit events:0@3']);
    expect(runner.pauses()).toBe(1);
    runner.stop();
  });


  it('drains on stop even when a backoff an assignment cut short ends during the next backoff (its timer wakes nothing later)', async () => {
    const consumer = control();
    let calls = 0;
    const runner = createFetchAheadRunner({
      component: 'test',
      chunkSize: 10,
      // The first backoff half the ceiling (200 ms), the second the whole of it (400 ms).
      backoff: { initialDelayMs: 400, maxDelayMs: 400, random: ((draws) => () => draws.shift() ?? 1)([0, 1]) },
      handle: () => {
        calls++;
        return Promise.reject(new StoreUnavailableError('elasticsearch', 'down'));
      },
      logger,
      control: consumer,
    });
    await runner.eachBatch(batch('events', 0, 2).payload);
    await until(() => calls === 1, 'the first refusal');
    // Backing off (200 ms): a new assignment wakes the lane and drops its queue.
    runner.assigned();
    await runner.eachBatch(batch('events', 0, 2).payload);
    await until(() => calls === 2, 'the second refusal');
    // Past the first backoff's end, within the second's.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(calls).toBe(2);
    runner.stop();
    const drained = await Promise.race([runner.drain().then(() => 'drained'), new Promise((resolve) => setTimeout(() => resolve('still draining after 2 s'), 2_000))]);
    expect(drained).toBe('drained');
    expect(consumer.calls).toStrictEqual([]);
  });
  it('makes kafkajs read a partition again from a chunk that failed for good, and throws the error from that batch until the next assignment', async () => {
    const consumer = control();
    const runner = createFetchAheadRunner({
      component: 'test',
      chunkSize: 2,
      maxQueued: 100,
      handle: (chunk) => (chunk.messages[0]?.offset === '2' ? Promise.reject(new TypeError('a bug')) : Promise.resolve()),
      logger,
      control: consumer,
    });
    await runner.eachBatch(batch('events', 0, 5).payload);
    await until(() => consumer.calls.some((call) => call.startsWith('seek')), 'the seek');
    expect(consumer.calls).toStrictEqual(['commit events:0@2', 'seek events:0@2']);
    await expect(runner.eachBatch(batch('events', 2, 3).payload)).rejects.toThrow('a bug');
    // The consumer restarted and joined again: batches are taken again.
    runner.assigned();
    const again = batch('other', 0, 1);
    await runner.eachBatch(again.payload);
    expect(again.resolved).toStrictEqual(['0']);
    runner.stop();
    await runner.drain();
  });

  it('after a chunk fails for good, reads every partition again from its first dropped message, so an idle one is fetched and throws too', async () => {
    const consumer = control();
    const gated = gatedHandler();
    const runner = createFetchAheadRunner({
      component: 'test',
      chunkSize: 2,
      maxQueued: 100,
      handle: (chunk) => (chunk.topic === 'other' ? gated.handle(chunk) : chunk.messages[0]?.offset === '2' ? Promise.reject(new TypeError('a bug')) : Promise.resolve()),
      logger,
      control: consumer,
    });
    // The other partition: its first chunk in hand, three more messages queued; no more will come.
    await runner.eachBatch(batch('other', 0, 5).payload);
    await until(() => gated.waiting() === 1, 'the other partition\'s chunk in hand');
    await runner.eachBatch(batch('events', 0, 5).payload);
    await until(() => consumer.calls.some((call) => call.startsWith('seek events')), 'the seek');
    expect(consumer.calls.filter((call) => call.startsWith('seek'))).toStrictEqual(['seek other:0@0', 'seek events:0@2']);
    await expect(runner.eachBatch(batch('other', 0, 5).payload)).rejects.toThrow('a bug');
    gated.release();
    runner.stop();
    await runner.drain();
    // The other partition's chunk, done after the failure, is not committed: it is read again.
    expect(consumer.calls.filter((call) => call.includes('other') && call.startsWith('commit'))).toStrictEqual([]);
  });

  it('drops what was queued at a new assignment, and does not commit a chunk taken under the old one', async () => {
    const consumer = control();
    const gated = gatedHandler();
    const runner = createFetchAheadRunner({ component: 'test', chunkSize: 2, maxQueued: 100, handle: gated.handle, logger, control: consumer });
    await runner.eachBatch(batch('events', 0, 5).payload);
    await until(() => gated.waiting() === 1, 'the first chunk');
    runner.assigned();
    // kafkajs reads on from the committed offset (0): the redo is queued behind the chunk in hand.
    await runner.eachBatch(batch('events', 0, 2).payload);
    gated.release();
    await until(() => gated.chunks.length === 2, 'the redo');
    gated.release();
    runner.stop();
    await runner.drain();
    expect(gated.chunks).toStrictEqual(['events:0,1', 'events:0,1 (caught up)']);
    expect(consumer.calls).toStrictEqual(['commit events:0@2']);
  });

  it('finishes and commits the chunk in hand when stopped, and hands on nothing queued', async () => {
    const consumer = control();
    const gated = gatedHandler();
    const runner = createFetchAheadRunner({ component: 'test', chunkSize: 2, maxQueued: 100, handle: gated.handle, logger, control: consumer });
    await runner.eachBatch(batch('events', 0, 6).payload);
    await until(() => gated.waiting() === 1, 'the first chunk');
    await stopsOnlyOnce(runner, () => gated.release());
    expect(gated.chunks).toStrictEqual(['events:0,1']);
    expect(consumer.calls).toStrictEqual(['commit events:0@2']);
    // A batch after the stop is left alone (not resolved: the group reads it again).
    const late = batch('events', 6, 1);
    await runner.eachBatch(late.payload);
    expect(late.resolved).toStrictEqual([]);
  });

  it('calls what a chunk resolved with once the chunk is done and its commit queued, not for a chunk whose partition was assigned again while in hand', async () => {
    // The commit fails: the chunk is done with all the same (its next chunk must see it).
    const failing = control({ failCommit: true });
    const done: string[] = [];
    const handle = (chunk: Chunk): Promise<() => void> => Promise.resolve(() => void done.push(`${chunk.topic}@${chunk.messages.at(-1)?.offset ?? ''}`));
    const runner = createFetchAheadRunner({ component: 'test', chunkSize: 10, handle, logger, control: failing });
    await runner.eachBatch(batch('events', 0, 2).payload);
    await until(() => failing.calls.length === 1, 'the commit');
    expect(done).toStrictEqual(['events@1']);
    runner.stop();
    await runner.drain();

    // Assigned again while the chunk is in hand: neither committed nor called.
    const consumer = control();
    const gated = gatedHandler();
    const other = createFetchAheadRunner({ component: 'test', chunkSize: 10, handle: (chunk) => gated.handle(chunk).then(() => () => void done.push('stale')), logger, control: consumer });
    await other.eachBatch(batch('events', 0, 2).payload);
    await until(() => gated.waiting() === 1, 'the chunk');
    other.assigned();
    gated.release();
    other.stop();
    await other.drain();
    expect(done).toStrictEqual(['events@1']);
    expect(consumer.calls).toStrictEqual([]);
  });

  it('starts a partition\'s next chunk while its commit is out, and commits what finished meanwhile together, each partition\'s latest offset', async () => {
    const { consumer, gated, done, runner } = gatedCommits();
    await runner.eachBatch(batch('events', 0, 6).payload);
    await until(() => gated.waiting() === 1, 'the first chunk');
    gated.release();
    await until(() => consumer.calls.length === 1, 'the first commit');
    // The commit is out, unanswered, and the next chunk is in hand already.
    await until(() => gated.waiting() === 1 && gated.chunks.length === 2, 'the second chunk');
    expect(consumer.calls).toStrictEqual(['commit events:0@2']);
    gated.release();
    await until(() => gated.chunks.length === 3, 'the third chunk');
    await runner.eachBatch(batch('other', 0, 2).payload);
    await until(() => gated.waiting() === 2, 'the other partition\'s chunk');
    gated.release();
    gated.release();
    await until(() => gated.waiting() === 0, 'both chunks done');
    await turn();
    // Three chunks finished while the first commit was out: their commits wait for it, and each
    // chunk was done with as it finished.
    expect(consumer.calls).toStrictEqual(['commit events:0@2']);
    expect(done).toStrictEqual(['events@1', 'events@3', 'events@5', 'other@1']);
    consumer.answer();
    await until(() => consumer.calls.length === 2, 'the second commit');
    // One request, one offset per partition, the newest.
    expect(consumer.calls[1]).toBe('commit events:0@6 other:0@2');
    // Stopping waits for the commit that is out.
    await stopsOnlyOnce(runner, () => consumer.answer());
    expect(consumer.calls).toHaveLength(2);
  });

  it('drops a commit still waiting for its request when the partition is assigned again', async () => {
    const { consumer, gated, done, runner } = gatedCommits();
    await runner.eachBatch(batch('events', 0, 4).payload);
    await until(() => gated.waiting() === 1, 'the first chunk');
    gated.release();
    await until(() => gated.chunks.length === 2, 'the second chunk');
    gated.release();
    await until(() => gated.waiting() === 0, 'the second chunk done');
    await turn();
    // Its offset (4) waits behind the first commit when the group assigns the partition again.
    runner.assigned();
    consumer.answer();
    runner.stop();
    await runner.drain();
    expect(consumer.calls).toStrictEqual(['commit events:0@2']);
    expect(done).toStrictEqual(['events@1', 'events@3']);
  });

  it('keeps the messages of a partition that runs ahead in event time, and hands them on once the other caught up, without a fetch', async () => {
    const aligner = new EventTimeAligner({ maxSkewMs: 1000, idleMs: 60_000 });
    const consumer = control();
    const handled: string[] = [];
    const runner = createFetchAheadRunner({
      component: 'test',
      chunkSize: 100,
      handle: ({ topic, messages }) => {
        handled.push(`${topic}:${messages.map((message) => message.offset).join(',')}`);
        return Promise.resolve();
      },
      logger,
      control: consumer,
      alignment: { aligner, eventTime: (message) => messageEventTime(message.value) },
    });
    runner.assigned();
    aligner.assign({ policy: [0], device: [0] });
    // A large topic at 0..4 s, more to come; a small one whose second event is a minute later.
    const policy = batch('policy', 0, 5, { times: [T0, T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000], highWatermark: 10 });
    const device = batch('device', 0, 2, { times: [T0 + 500, T0 + 60_000] });
    await Promise.all([runner.eachBatch(policy.payload), runner.eachBatch(device.payload)]);
    await until(() => aligner.stats().held === 1, 'device held');
    expect(handled).toContain('device:0');
    expect(handled).not.toContain('device:1');
    // policy is fetched on (offset 5): it reaches the 60 s period, and device hands on its queued message.
    await runner.eachBatch(batch('policy', 5, 2, { times: [T0 + 30_000, T0 + 60_000], highWatermark: 10 }).payload);
    await until(() => handled.includes('device:1'), 'device going on');
    expect(aligner.stats().held).toBe(0);
    // Nothing was asked of kafkajs but commits: device was never paused, sought or fetched again.
    expect(consumer.calls.filter((call) => !call.startsWith('commit'))).toStrictEqual([]);
    expect(consumer.calls).toContain('commit device:0@2');
    runner.stop();
    await runner.drain();
  });
});
