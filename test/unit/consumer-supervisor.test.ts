import { EventEmitter } from 'node:events';
import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs';
import { ConsumerFailedError, Instrumentation, createConsumerSupervisor, createLogger, sleep, type SupervisionPolicy } from '../../platform';

const EVENTS = { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash', END_BATCH_PROCESS: 'consumer.end_batch_process' };

/** A kafkajs consumer double: it records calls and lets the test emit its instrumentation events. */
class FakeConsumer {
  readonly bus = new EventEmitter();
  readonly events = EVENTS;
  connects = 0;
  runs = 0;
  disconnects = 0;
  /** What the next run does: join the group, or crash as kafkajs does when joining fails. */
  onRun: 'join' | { crash: Error } = 'join';

  constructor(readonly config: ConsumerConfig) {}

  on(event: string, listener: (event: { payload: unknown }) => void): () => void {
    this.bus.on(event, listener);
    return () => this.bus.off(event, listener);
  }
  emit(event: string, payload: unknown): void {
    this.bus.emit(event, { payload });
  }
  connect(): Promise<void> {
    this.connects++;
    return Promise.resolve();
  }
  run(): Promise<void> {
    this.runs++;
    const outcome = this.onRun;
    if (outcome === 'join') this.emit(EVENTS.GROUP_JOIN, { memberAssignment: { events: [0, 2] } });
    else this.emit(EVENTS.CRASH, { error: outcome.crash, groupId: this.config.groupId, restart: false });
    return Promise.resolve();
  }
  disconnect(): Promise<void> {
    this.disconnects++;
    return Promise.resolve();
  }
}

function fakeKafka(): { kafka: Kafka; made: FakeConsumer[] } {
  const made: FakeConsumer[] = [];
  const kafka = {
    consumer(config: ConsumerConfig) {
      const consumer = new FakeConsumer(config);
      made.push(consumer);
      return consumer as unknown as Consumer;
    },
  } as unknown as Kafka;
  return { kafka, made };
}

const logger = createLogger({ level: 'silent' });
const fast: SupervisionPolicy = { maxRestarts: 2, windowMs: 60_000, backoff: { initialDelayMs: 1, maxDelayMs: 2 } };

/** Waits for a state change; a bounded number of turns, so a broken supervisor fails the test instead of hanging it. */
async function until(check: () => boolean): Promise<void> {
  for (let turn = 0; !check(); turn++) {
    if (turn > 2000) throw new Error('the expected state never came');
    await sleep(1);
  }
}

function setUp(policy: SupervisionPolicy = fast, now?: () => number) {
  const { kafka, made } = fakeKafka();
  const instrumentation = new Instrumentation();
  const states: string[] = [];
  instrumentation.on('consumer.state', ({ state }) => states.push(state));
  const supervisor = createConsumerSupervisor({ policy, logger, instrumentation, ...(now ? { now } : {}) });
  const consumer = supervisor.kafkaFor('ingest', kafka).consumer({ groupId: 'group-1' });
  const fake = made[0];
  if (!fake) throw new Error('no consumer made');
  return { supervisor, consumer, fake, states, instrumentation };
}

describe('createConsumerSupervisor', () => {
  it('tells kafkajs never to restart by itself, so a restart can never race a disconnect', async () => {
    const { fake } = setUp();
    await expect(fake.config.retry?.restartOnFailure?.(new Error('x'))).resolves.toBe(false);
    expect(fake.config.retry?.retries).toBe(5);
  });

  it('restarts a consumer that kafkajs stopped for good (CRASH with restart: false), with backoff', async () => {
    const { supervisor, consumer, fake, states } = setUp();
    await consumer.connect();
    await consumer.run({ eachBatch: () => Promise.resolve() });
    expect(supervisor.statuses()[0]).toMatchObject({ component: 'ingest', groupId: 'group-1', state: 'running', restarts: 0 });

    fake.emit(EVENTS.CRASH, { error: Object.assign(new Error('LZ4 compression not implemented'), { name: 'KafkaJSNotImplemented' }), groupId: 'group-1', restart: false });
    expect(supervisor.statuses()[0]?.state).toBe('restarting');
    await until(() => supervisor.statuses()[0]?.state === 'running');
    expect(fake.runs).toBe(2);
    expect(supervisor.statuses()[0]).toMatchObject({ restarts: 1, lastError: 'LZ4 compression not implemented' });
    expect(states).toEqual(['starting', 'running', 'restarting', 'starting', 'running']);
  });

  it('rejoins after a lost group membership that kafkajs could not repair itself', async () => {
    const { supervisor, consumer, fake } = setUp();
    await consumer.run({ eachBatch: () => Promise.resolve() });
    const lost = Object.assign(new Error('The coordinator is not aware of this member'), { type: 'UNKNOWN_MEMBER_ID', retriable: false });
    fake.emit(EVENTS.CRASH, { error: lost, groupId: 'group-1', restart: false });
    await until(() => supervisor.statuses()[0]?.state === 'running');
    expect(fake.connects).toBe(1);
    expect(supervisor.statuses()[0]?.restarts).toBe(1);
  });

  it('gives up past its restart budget: failed resolves with an error naming the consumer and the cause', async () => {
    const { supervisor, consumer, fake } = setUp();
    fake.onRun = { crash: new Error('a handler error that escapes') };
    await consumer.run({ eachBatch: () => Promise.resolve() });
    const failure = await supervisor.failed;
    expect(failure).toBeInstanceOf(ConsumerFailedError);
    expect(failure.retriable).toBe(false);
    expect(failure.message).toBe('the ingest consumer (group group-1) was given up after 3 crashes within its restart window: a handler error that escapes');
    // The first run and exactly maxRestarts restarts; nothing after the failure.
    expect(fake.runs).toBe(1 + fast.maxRestarts);
    expect(supervisor.statuses()[0]?.state).toBe('failed');
  });

  it('forgives crashes older than the window', async () => {
    let clock = 0;
    const { supervisor, consumer, fake } = setUp({ ...fast, maxRestarts: 1, windowMs: 1000 }, () => clock);
    await consumer.run({ eachBatch: () => Promise.resolve() });
    for (let crash = 1; crash <= 3; crash++) {
      fake.emit(EVENTS.CRASH, { error: new Error(`crash ${crash}`), groupId: 'group-1', restart: false });
      await until(() => supervisor.statuses()[0]?.state === 'running');
      clock += 1001;
    }
    expect(supervisor.statuses()[0]).toMatchObject({ state: 'running', restarts: 3 });
  });

  it('does not restart a consumer being disconnected, nor after stop()', async () => {
    const { supervisor, consumer, fake } = setUp({ ...fast, backoff: { initialDelayMs: 50, maxDelayMs: 50 } });
    await consumer.run({ eachBatch: () => Promise.resolve() });
    fake.emit(EVENTS.CRASH, { error: new Error('crash'), groupId: 'group-1', restart: false });
    await consumer.disconnect();
    await sleep(80);
    expect(fake.runs).toBe(1);
    expect(supervisor.statuses()[0]?.state).toBe('stopped');

    const other = setUp();
    await other.consumer.run({ eachBatch: () => Promise.resolve() });
    other.supervisor.stop();
    other.fake.emit(EVENTS.CRASH, { error: new Error('crash while stopping'), groupId: 'group-1', restart: false });
    await sleep(10);
    expect(other.fake.runs).toBe(1);
  });

  it('reports each join with the partitions it holds on the bus (the lag of the others is dropped)', async () => {
    const { consumer, instrumentation } = setUp();
    const assigned: unknown[] = [];
    instrumentation.on('consumer.assigned', (payload) => assigned.push(payload));
    await consumer.run({ eachBatch: () => Promise.resolve() });
    expect(assigned).toEqual([{ component: 'ingest', groupId: 'group-1', assignment: { events: [0, 2] } }]);
  });

  it('reports each batch lag on the bus', () => {
    const { fake, instrumentation } = setUp();
    const lags: unknown[] = [];
    instrumentation.on('consumer.lag', (payload) => lags.push(payload));
    fake.emit(EVENTS.END_BATCH_PROCESS, { topic: 'events', partition: 2, offsetLag: '41' });
    expect(lags).toEqual([{ component: 'ingest', topic: 'events', partition: 2, lag: 41 }]);
  });
});
