import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { EventTimeAligner, createLogger, createPartitionRunner } from '../../platform';
import { messageEventTime } from '../../ingest/event-time';

const T0 = Date.parse('2026-03-01T12:00:00Z');

/** An aligner on a clock the test moves. */
function aligner(maxSkewMs = 1000, idleMs = 5000): { aligner: EventTimeAligner; clock: { now: number } } {
  const clock = { now: 0 };
  return { aligner: new EventTimeAligner({ maxSkewMs, idleMs, now: () => clock.now }), clock };
}

describe('the event-time aligner', () => {
  it('lets a partition go only to the end of the skew-long period the slowest other partition with data is in', () => {
    const { aligner: align } = aligner(1000);
    align.seen('policy:0', T0);
    align.seen('device:0', T0 + 60_000);
    // The slow partition may go up to the end of the other one's period (60 s to 60.999 s).
    expect(align.admit('policy:0', [T0, T0 + 500, T0 + 60_999, T0 + 61_000])).toBe(3);
    // The fast one: nothing past the slow one's period (0 s to 0.999 s).
    expect(align.admit('device:0', [T0 + 60_000])).toBe(0);
    // At 59.5 s the slow one is still in the period before the fast one's first event: it waits.
    align.advanced('policy:0', { next: T0 + 59_500, caughtUp: false });
    expect(align.admit('device:0', [T0 + 60_000])).toBe(0);
    // Once the slow one is in the 60 s period, the fast one goes to its end, never further.
    align.advanced('policy:0', { next: T0 + 60_200, caughtUp: false });
    expect(align.admit('device:0', [T0 + 60_000, T0 + 60_400, T0 + 61_000])).toBe(2);
  });

  it('with the other instances\' watermark, keeps within the skew of it too, publishes its own apart from it, and resumes on refresh', () => {
    const shared = { value: T0 };
    const clock = { now: 0 };
    const align = new EventTimeAligner({ maxSkewMs: 1000, idleMs: 5000, now: () => clock.now, shared: { low: () => shared.value } });
    align.seen('policy:0', T0 + 10_000);
    align.seen('device:0', T0 + 10_000);
    // Locally both are at 10 s; another instance is at 0 s: nothing past its period goes.
    expect(align.admit('policy:0', [T0 + 10_000])).toBe(0);
    // What this instance writes for the others is its own partitions' watermark alone.
    expect(align.localLow()).toBe(T0 + 10_000);
    let resumed = 0;
    align.hold('policy:0', T0 + 10_000, () => () => resumed++);
    align.refresh();
    expect(resumed).toBe(0);
    shared.value = T0 + 10_500;
    align.refresh();
    expect(resumed).toBe(1);
    expect(align.admit('device:0', [T0 + 10_000, T0 + 10_999, T0 + 11_000])).toBe(2);
    // An instance that read everything writes Infinity: only the local partitions count then.
    shared.value = Infinity;
    expect(align.admit('device:0', [T0 + 10_000, T0 + 10_999, T0 + 11_000])).toBe(2);
    align.close();
  });

  it('resumes a held partition once the others caught up, and not before', () => {
    const { aligner: align } = aligner(1000);
    align.seen('policy:0', T0);
    align.seen('device:0', T0 + 10_000);
    let resumed = 0;
    let paused = 0;
    align.hold('device:0', T0 + 10_000, () => {
      paused++;
      return () => resumed++;
    });
    expect([paused, resumed, align.stats().held]).toStrictEqual([1, 0, 1]);
    align.advanced('policy:0', { next: T0 + 5_000, caughtUp: false });
    expect(resumed).toBe(0);
    align.advanced('policy:0', { next: T0 + 9_900, caughtUp: false });
    expect(resumed).toBe(0);
    align.advanced('policy:0', { next: T0 + 10_000, caughtUp: false });
    expect(resumed).toBe(1);
    expect(align.stats()).toStrictEqual({ holds: 1, waits: 0, held: 0, partitions: 2, checks: 0, withdrawn: 0 });
    align.close();
  });

  it('is not held back by a partition that read everything it had, nor by one idle for longer than the idle time', () => {
    const { aligner: align, clock } = aligner(1000, 5000);
    align.seen('policy:0', T0);
    align.seen('invocation:0', T0);
    align.seen('device:0', T0 + 3_600_000);
    expect(align.admit('device:0', [T0 + 3_600_000])).toBe(0);
    // policy:0 read up to its high watermark; invocation:0 still has data.
    align.advanced('policy:0', { last: T0 + 100, caughtUp: true });
    expect(align.admit('device:0', [T0 + 3_600_000])).toBe(0);
    // invocation:0 stalls (a store outage paused it, its batch given up): after the idle time it holds nobody back.
    align.left('invocation:0');
    clock.now += 4_999;
    expect(align.admit('device:0', [T0 + 3_600_000])).toBe(0);
    clock.now += 1;
    expect(align.admit('device:0', [T0 + 3_600_000])).toBe(1);
  });

  it('checks a claim to be caught up with Kafka before letting another partition run ahead of it', async () => {
    let answer: (latest: ReadonlyMap<string, string>) => void = () => undefined;
    const asked: string[][] = [];
    const confirm = (keys: readonly string[]): Promise<ReadonlyMap<string, string>> => {
      asked.push([...keys]);
      return new Promise((resolve) => (answer = resolve));
    };
    const align = new EventTimeAligner({ maxSkewMs: 60_000, idleMs: 5000, now: () => 0, confirm });
    align.seen('invocation:0', T0);
    align.seen('invocation:1', T0);
    // invocation:1 read to its high watermark (offset 10) at 19 s: a claim, not yet a fact.
    align.advanced('invocation:1', { last: T0 + 19_000, caughtUp: true, end: '10' });
    align.left('invocation:1');
    // invocation:0 may finish the minute invocation:1 is in, not go seven minutes on.
    expect(align.admit('invocation:0', [T0 + 20_000, T0 + 420_000])).toBe(1);
    expect(asked).toStrictEqual([['invocation:1']]);
    // The check needs no fetch: invocation:0 waits for it with its batch in hand.
    expect(align.canWait('invocation:0')).toBe(true);
    const changed = align.changed();
    // Kafka has more for invocation:1 (offsets 10 to 24, written after the fetch): it holds the others until it read them.
    answer(new Map([['invocation:1', '25']]));
    await changed;
    expect(align.admit('invocation:0', [T0 + 420_000])).toBe(0);
    expect(align.canWait('invocation:0')).toBe(false);
    expect(align.stats()).toMatchObject({ checks: 1, withdrawn: 1 });
    // Its next batch reads them and reaches the high watermark again; this time Kafka confirms it.
    align.seen('invocation:1', T0 + 20_000);
    align.advanced('invocation:1', { last: T0 + 59_000, caughtUp: true, end: '25' });
    align.left('invocation:1');
    expect(align.admit('invocation:0', [T0 + 420_000])).toBe(0);
    const confirmed = align.changed();
    answer(new Map([['invocation:1', '25']]));
    await confirmed;
    expect(align.admit('invocation:0', [T0 + 420_000])).toBe(1);
    expect(align.stats()).toMatchObject({ checks: 2, withdrawn: 1 });
  });

  it('leaves a claim it could not check to idleness, and takes claims at their word without a way to check them', async () => {
    const clock = { now: 0 };
    const align = new EventTimeAligner({ maxSkewMs: 60_000, idleMs: 5000, now: () => clock.now, confirm: () => Promise.reject(new Error('broker away')) });
    align.seen('a:0', T0);
    align.advanced('a:0', { last: T0, caughtUp: true, end: '3' });
    align.left('a:0');
    expect(align.admit('b:0', [T0 + 600_000])).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(align.canWait('b:0')).toBe(false);
    clock.now += 5000;
    expect(align.admit('b:0', [T0 + 600_000])).toBe(1);
    const unchecked = new EventTimeAligner({ maxSkewMs: 60_000, idleMs: 5000, now: () => 0 });
    unchecked.advanced('a:0', { last: T0, caughtUp: true, end: '3' });
    expect(unchecked.admit('b:0', [T0 + 600_000])).toBe(1);
  });

  it('does not count a partition idle while its batch is in hand, however long it takes, and lets the others wait for it in hand', () => {
    const { aligner: align, clock } = aligner(1000, 5000);
    align.seen('policy:0', T0);
    align.seen('device:0', T0 + 60_000);
    expect(align.admit('policy:0', [T0])).toBe(1);
    clock.now += 60_000;
    expect(align.admit('device:0', [T0 + 60_000])).toBe(0);
    expect(align.canWait('device:0')).toBe(true);
    align.left('policy:0');
    // Done with its batch: policy:0 needs a fetch (device:0 must let go) and, after the idle time, holds nobody back.
    expect(align.canWait('device:0')).toBe(false);
    expect(align.admit('device:0', [T0 + 60_000])).toBe(1);
  });

  it('holds every partition back while an assigned one was never seen, until that one is idle', () => {
    const { aligner: align, clock } = aligner(1000, 5000);
    align.assign({ policy: [0, 1], device: [0] });
    align.seen('policy:0', T0);
    align.seen('device:0', T0);
    expect(align.lowWatermark('device:0')).toBe(-Infinity);
    expect(align.admit('device:0', [T0])).toBe(0);
    clock.now += 5000;
    align.seen('policy:0', T0);
    // policy:1 (empty, never fetched) is idle now; policy:0, just fetched again, still counts.
    expect(align.lowWatermark('device:0')).toBe(T0);
    expect(align.admit('device:0', [T0, T0 + 2000])).toBe(1);
  });

  it('always lets the partition furthest behind go, so holding never deadlocks', () => {
    const { aligner: align } = aligner(0);
    const times = { 'a:0': T0 + 3, 'b:0': T0 + 1, 'c:0': T0 + 2 };
    for (const [key, time] of Object.entries(times)) align.seen(key, time);
    const admitted = Object.entries(times).map(([key, time]) => align.admit(key, [time]));
    expect(admitted).toStrictEqual([0, 1, 0]);
  });

  it('refuses a negative skew and a zero idle time, naming them', () => {
    expect(() => new EventTimeAligner({ maxSkewMs: -1, idleMs: 1000 })).toThrow('maxSkewMs must be 0 or more, got -1');
    expect(() => new EventTimeAligner({ maxSkewMs: 0, idleMs: 0 })).toThrow('idleMs must be more than 0, got 0');
  });
});

/** A batch of one partition as kafkajs hands it over, each message an event at the given time. */
function batch(topic: string, times: readonly number[], highWatermark = times.length): { payload: EachBatchPayload; events: string[]; resume: () => void } {
  const events: string[] = [];
  let resumeIt: () => void = () => undefined;
  const messages = times.map((time, offset) => ({ offset: String(offset), value: Buffer.from(JSON.stringify({ id: `${topic}-${offset}`, time: new Date(time).toISOString() })) }));
  const payload = {
    batch: { topic, partition: 0, highWatermark: String(highWatermark), messages: messages as unknown as KafkaMessage[] },
    pause: () => {
      events.push('pause');
      return () => {
        events.push('resume');
        resumeIt();
      };
    },
    resolveOffset: (offset: string) => events.push(`resolve ${offset}`),
    commitOffsetsIfNecessary: () => Promise.resolve(),
    heartbeat: () => Promise.resolve(),
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  return { payload, events, resume: () => (resumeIt = () => undefined) };
}

describe('the partition runner with alignment', () => {
  it('cuts a chunk where its partition would run ahead, pauses the partition, and hands the rest on once the other caught up', async () => {
    const align = new EventTimeAligner({ maxSkewMs: 1000, idleMs: 60_000 });
    const handled: string[] = [];
    const runner = createPartitionRunner({
      component: 'test',
      chunkSize: 100,
      handle: ({ topic, messages }) => {
        handled.push(`${topic}:${messages.map((message) => message.offset).join(',')}`);
        return Promise.resolve();
      },
      logger: createLogger({ level: 'silent' }),
      alignment: { aligner: align, eventTime: (message) => messageEventTime(message.value) },
    });
    // A large topic at 0..4 s and (more to come); a small one whose second event is a minute later.
    const policy = batch('policy', [T0, T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000], 10);
    const device = batch('device', [T0 + 500, T0 + 60_000]);
    await Promise.all([runner.eachBatch(policy.payload), runner.eachBatch(device.payload)]);
    // device went up to 0.5 s, then waited: its event at 60 s is ahead of policy's 4 s by more than the skew.
    expect(device.events).toStrictEqual(['resolve 0', 'pause']);
    // policy went in two chunks: to the end of device's first period (0.999 s), then (device now waiting) the rest.
    expect(policy.events).toStrictEqual(['resolve 0', 'resolve 4']);
    expect(handled).toContain('device:0');
    expect(align.stats()).toMatchObject({ holds: 1, held: 1 });
    // kafkajs fetches policy again from offset 5: it reaches the 60 s period, and device is resumed.
    const more = batch('policy', [T0 + 30_000, T0 + 60_000], 10);
    await runner.eachBatch(more.payload);
    expect(device.events).toStrictEqual(['resolve 0', 'pause', 'resume']);
    expect(align.stats().held).toBe(0);
    runner.stop();
  });
});

describe('the event time of a raw message', () => {
  it('reads the envelope time, with or without spaces, and none from what is not an event', () => {
    expect(messageEventTime(Buffer.from('{"id":"e1","time":"2026-03-01T12:00:00.250Z","family":"policy"}'))).toBe(T0 + 250);
    expect(messageEventTime(Buffer.from('{"id": "e1", "time": "2026-03-01T13:00:00+01:00"}'))).toBe(T0);
    // A label named time: the envelope's own time counts, not the label's.
    expect(messageEventTime(Buffer.from('{"labels":{"time":"2020-01-01T00:00:00Z"},"time":"2026-03-01T12:00:00Z"}'))).toBe(T0);
    expect(messageEventTime(Buffer.from('not json'))).toBeUndefined();
    expect(messageEventTime(Buffer.from('{"time":"yesterday"}'))).toBeUndefined();
    expect(messageEventTime(null)).toBeUndefined();
  });

  it('has none for a message decode is bound to refuse by its time or its size, so it holds no partition back', () => {
    const bounds = { now: T0, maxMessageBytes: 1024 };
    const at = (time: string, padding = ''): Buffer => Buffer.from(`{"id":"e1","time":"${time}","labels":{"pad":"${padding}"}}`);
    expect(messageEventTime(at('2026-03-02T11:59:59Z'), bounds)).toBe(T0 + 86_399_000);
    // More than a day ahead of the clock, or before 2000: time_out_of_range in decode.
    expect(messageEventTime(at('2199-01-01T00:00:00Z'), bounds)).toBeUndefined();
    expect(messageEventTime(at('2026-03-02T12:00:01Z'), bounds)).toBeUndefined();
    expect(messageEventTime(at('1999-12-31T23:59:59Z'), bounds)).toBeUndefined();
    // The parser's path too (spaces around the colon).
    expect(messageEventTime(Buffer.from('{"time" : "2199-01-01T00:00:00Z"}'), bounds)).toBeUndefined();
    // Over the size limit: too_large in decode, whatever its time.
    expect(messageEventTime(at('2026-03-01T12:00:00Z', 'x'.repeat(1024)), bounds)).toBeUndefined();
    // Without bounds (replay, the benches) the time is read as written.
    expect(messageEventTime(at('2199-01-01T00:00:00Z'))).toBe(Date.parse('2199-01-01T00:00:00Z'));
  });
});
