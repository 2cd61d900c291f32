import { spawnSync } from 'node:child_process';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { createEmitter, partitionKeyOf, type EmitterBatch, type EmitterOptions } from '../../ingest/sdk';
import { ValidationError, createLogger } from '../../platform';
import { familySchemas, type VigilEvent } from '../../schemas';
import { deviceInput, invocationEvent, invocationInput, policyEvent, policyInput, withField } from './fixtures';

/**
 * A real kafkajs client pointing at a port nothing listens on. The tests never flush or close
 * the emitter, and fake timers stop the linger timer from firing, so it never tries to connect.
 */
const kafka = new Kafka({ brokers: ['127.0.0.1:1'], clientId: 'unit', retry: { retries: 0 }, logLevel: logLevel.NOTHING });

const source = { service: 'unit-service', kind: 'service' } as const;
const fixedTime = new Date('2024-05-01T10:00:00.000Z');

interface Drop {
  event: VigilEvent;
  reason: 'buffer_full' | 'closed';
}

function emitterWith(options: Partial<EmitterOptions> = {}): { emitter: ReturnType<typeof createEmitter>; drops: Drop[] } {
  const drops: Drop[] = [];
  let counter = 0;
  const emitter = createEmitter({
    kafka,
    source,
    lingerMs: 60_000,
    clock: () => fixedTime,
    newId: () => `generated-${++counter}`,
    onDrop: (event, reason) => drops.push({ event, reason }),
    // These emitters are dropped unclosed, on a broker that is not there: nothing to send at exit.
    closeAtExit: false,
    ...options,
  });
  return { emitter, drops };
}

/**
 * A stand-in client whose first send waits until `release()` and whose later sends return at once;
 * `sending` resolves when the first send starts.
 */
function firstSendHeld(): { client: EmitterOptions['kafka']; sending: Promise<void>; release: () => void } {
  let releaseFirst: () => void = () => undefined;
  let started: () => void = () => undefined;
  let held = false;
  const sending = new Promise<void>((resolve) => {
    started = resolve;
  });
  const producer = {
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    sendBatch: () => {
      started();
      return new Promise<void>((resolve) => {
        if (held) resolve();
        else releaseFirst = resolve;
        held = true;
      });
    },
  };
  return { client: { producer: () => producer }, sending, release: () => releaseFirst() };
}

/** The ValidationError a call throws; fails the test when it throws anything else or nothing. */
function validationErrorOf(call: () => unknown): ValidationError {
  try {
    call();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.clearAllTimers();
  jest.useRealTimers();
});

describe('createEmitter validation', () => {
  it('throws a ValidationError naming client.ip, and buffers nothing', () => {
    const { emitter, drops } = emitterWith();
    const input = policyInput();
    const error = validationErrorOf(() => emitter.policy({ ...input, client: { ...input.client, ip: '999.1.1.1' } }));
    expect(error.issues).toStrictEqual(['client.ip: Invalid IP address']);
    expect(error.code).toBe('event_invalid');
    expect(error.retriable).toBe(false);
    expect(error.message).toBe('invalid policy event: client.ip: Invalid IP address');
    expect(emitter.stats()).toStrictEqual({ accepted: 0, delivered: 0, dropped: 0, sendFailures: 0, buffered: 0, bufferedBytes: 0 });
    expect(drops).toStrictEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('names policy.outcome for a value outside its enum', () => {
    const { emitter } = emitterWith();
    const input = policyInput();
    // A caller in plain JavaScript (or past a cast) can hand over anything.
    const bad = withField(input, 'policy.outcome', 'maybe') as unknown as typeof input;
    const error = validationErrorOf(() => emitter.policy(bad));
    expect(error.issues).toStrictEqual(['policy.outcome: Invalid option: expected one of "pass"|"fail"']);
    expect(emitter.stats().buffered).toBe(0);
  });

  it('lists every field at fault', () => {
    const { emitter } = emitterWith();
    const input = invocationInput();
    const error = validationErrorOf(() =>
      emitter.invocation({ ...input, invocation: { ...input.invocation, status: 42, latencyMs: -5 }, id: 'bad id!' }),
    );
    expect(error.issues).toEqual(
      expect.arrayContaining([expect.stringMatching(/^id: /), expect.stringMatching(/^invocation\.status: /), expect.stringMatching(/^invocation\.latencyMs: /)]),
    );
    expect(error.issues).toHaveLength(3);
  });

  it('names source when neither the event nor the emitter gives one', () => {
    const { emitter } = emitterWith({ source: undefined });
    const error = validationErrorOf(() => emitter.device(deviceInput()));
    expect(error.issues).toStrictEqual([expect.stringMatching(/^source: /)]);
  });

  it('refuses a device without deviceId or fingerprint', () => {
    const { emitter } = emitterWith();
    const input = deviceInput();
    const error = validationErrorOf(() => emitter.device({ ...input, device: { type: 'mobile', action: 'login' } }));
    expect(error.issues).toStrictEqual(['device.deviceId: either deviceId or fingerprint is required']);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'policy'],
    ['an array', [policyInput()]],
  ])('refuses %s from a JavaScript caller with a ValidationError, not a TypeError, and buffers nothing', (_name, value) => {
    const { emitter } = emitterWith();
    const error = validationErrorOf(() => emitter.policy(value as never));
    const problem = `(event): expected an object, received ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
    expect(error.issues).toEqual([problem]);
    expect(error.message).toBe(`invalid policy event: ${problem}`);
    emitter.policy(policyInput());
    expect(emitter.stats()).toMatchObject({ accepted: 1, buffered: 1 });
  });

  // A JavaScript caller is not stopped by the types: its own family or version was replaced silently.
  it('refuses a family or schemaVersion of the caller that differs from what it writes, naming each, and accepts the same values', () => {
    const { emitter } = emitterWith();
    const input = policyInput();
    const wrong = validationErrorOf(() => emitter.policy({ ...input, family: 'device', schemaVersion: 2 } as never));
    expect(wrong.issues).toEqual([
      'family: "device" given to the policy method; leave family out (the method sets it), or emit with device()',
      'schemaVersion: 2 given; this SDK writes version 1; leave schemaVersion out',
    ]);
    expect(validationErrorOf(() => emitter.policy({ ...input, family: 'audit' } as never)).issues).toEqual(['family: "audit" given to the policy method; leave family out (the method sets it)']);
    expect(emitter.stats()).toMatchObject({ accepted: 0, buffered: 0 });
    emitter.policy({ ...input, family: 'policy', schemaVersion: 1 } as never);
    expect(emitter.stats()).toMatchObject({ accepted: 1, buffered: 1 });
  });

  it('keeps counting nothing after several invalid emits between valid ones', () => {
    const { emitter } = emitterWith();
    const input = policyInput();
    emitter.policy(input);
    expect(() => emitter.policy({ ...input, client: { ip: 'nope' } })).toThrow(ValidationError);
    emitter.invocation(invocationInput());
    expect(emitter.stats()).toMatchObject({ accepted: 2, dropped: 0, buffered: 2 });
  });
});

describe('createEmitter filling the envelope', () => {
  /** An emitter that keeps nothing: every valid event goes straight to onDrop, so the test can read it. */
  const refuseAll = (): ReturnType<typeof emitterWith> => emitterWith({ maxBuffer: 0 });

  it('fills id, time, schemaVersion, source and the defaults', () => {
    const { emitter, drops } = refuseAll();
    const result = emitter.invocation(invocationInput());
    expect(result).toStrictEqual({ id: 'generated-1', accepted: false });
    expect(drops).toHaveLength(1);
    const event = drops[0]?.event;
    expect(event).toMatchObject({
      id: 'generated-1',
      family: 'invocation',
      schemaVersion: 1,
      time: '2024-05-01T10:00:00.000Z',
      source: { service: 'unit-service', kind: 'service' },
    });
    expect(familySchemas.invocation.safeParse(event).success).toBe(true);
  });

  it('fills the parse defaults (empty correlation), and leaves unknown byte counts out', () => {
    const { emitter, drops } = refuseAll();
    const { resource, route, status, latencyMs } = invocationInput().invocation;
    emitter.invocation({ invocation: { resource, route, status, latencyMs } });
    expect(drops[0]?.event).toMatchObject({ correlation: {}, actor: {}, client: {} });
    expect(drops[0]?.event.family === 'invocation' && drops[0].event.invocation).not.toHaveProperty('bytesIn');
    expect(drops[0]?.event.family === 'invocation' && drops[0].event.invocation).not.toHaveProperty('bytesOut');
  });

  it("keeps the caller's own id, time and source", () => {
    const { emitter, drops } = refuseAll();
    const own = { service: 'own-gateway', kind: 'gateway', environment: 'staging' } as const;
    const result = emitter.policy({ ...policyInput(), id: 'caller-id-0001', time: '2024-01-02T03:04:05+01:00', source: own });
    expect(result.id).toBe('caller-id-0001');
    expect(drops[0]?.event).toMatchObject({ id: 'caller-id-0001', time: '2024-01-02T03:04:05+01:00', source: own });
  });

  it('turns a Date time into an ISO string', () => {
    const { emitter, drops } = refuseAll();
    emitter.device({ ...deviceInput(), time: new Date('2023-12-31T23:59:59.999Z') });
    expect(drops[0]?.event.time).toBe('2023-12-31T23:59:59.999Z');
  });

  it('generates a UUID id by default', () => {
    const emitter = createEmitter({ kafka, source, lingerMs: 60_000 });
    const first = emitter.policy(policyInput());
    const second = emitter.policy(policyInput());
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(second.id).not.toBe(first.id);
    expect(emitter.stats()).toMatchObject({ accepted: 2, buffered: 2 });
  });

  it('writes each default id as a version 4 UUID from fresh random bytes, across refills of its pool, in the message as returned', () => {
    const drops: Drop[] = [];
    // maxBuffer 0: every event is dropped at once, handing back the message the emitter wrote.
    const emitter = createEmitter({ kafka, source, lingerMs: 60_000, maxBuffer: 0, onDrop: (event, reason) => drops.push({ event, reason }) });
    // 600 ids: the pool holds 256 ids' worth of random bytes, so it is refilled twice.
    const ids = Array.from({ length: 600 }, () => emitter.invocation(invocationInput()).id);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(drops.map(({ event }) => event.id)).toStrictEqual(ids);
    // Every hex digit turns up in a random position: no byte value is written wrong or left out.
    for (const position of [0, 1, 35]) expect(new Set(ids.map((id) => id[position])).size).toBe(16);
  });

  it("stamps the current time by default, its text made again when the millisecond changes", () => {
    const drops: Drop[] = [];
    // No clock option: the emitter's own, whose text is made once per millisecond.
    const emitter = createEmitter({ kafka, source, lingerMs: 60_000, maxBuffer: 0, onDrop: (event, reason) => drops.push({ event, reason }) });
    jest.setSystemTime(new Date('2024-05-01T10:00:00.000Z'));
    emitter.policy(policyInput());
    emitter.policy(policyInput());
    jest.setSystemTime(new Date('2024-05-01T10:00:00.001Z'));
    emitter.policy(policyInput());
    jest.setSystemTime(new Date('2024-05-01T11:30:00.000Z'));
    emitter.policy(policyInput());
    expect(drops.map(({ event }) => event.time)).toStrictEqual([
      '2024-05-01T10:00:00.000Z',
      '2024-05-01T10:00:00.000Z',
      '2024-05-01T10:00:00.001Z',
      '2024-05-01T11:30:00.000Z',
    ]);
  });

  // Regression test (fixed bug; ingest/emitter.ts:215, `input.time.toISOString()` in enqueue): an invalid Date escapes
  // as a RangeError instead of the documented ValidationError naming `time`.
  it('refuses an invalid Date time with a ValidationError naming time', () => {
    const { emitter } = refuseAll();
    const error = validationErrorOf(() => emitter.policy({ ...policyInput(), time: new Date('not a date') }));
    expect(error.issues).toStrictEqual([expect.stringMatching(/^time: /)]);
  });
  // A Date the schema's ISO 8601 can't write (year 55840: microseconds taken for milliseconds) was
  // trusted as the emitter's own text: accepted, then refused by the pipeline, the event lost.
  it('refuses a Date outside the years 0000-9999, and a clock that gives an invalid Date, naming time', () => {
    const { emitter } = refuseAll();
    expect(validationErrorOf(() => emitter.policy({ ...policyInput(), time: new Date(1.7e15) })).issues).toStrictEqual([expect.stringMatching(/^time: /)]);
    const clocked = emitterWith({ maxBuffer: 0, clock: () => new Date(Number.NaN) }).emitter;
    expect(validationErrorOf(() => clocked.policy(policyInput())).issues).toStrictEqual([expect.stringMatching(/^time: /)]);
    expect(emitter.policy({ ...policyInput(), time: new Date('9999-12-31T23:59:59.999Z') }).accepted).toBe(false);
  });
});

describe('createEmitter options', () => {
  // maxBatch 0 or NaN (Number() of an unset variable) looped on empty batches and froze the process.
  it('refuses options that would stall or unbound the emitter, naming each', () => {
    const error = validationErrorOf(() => createEmitter({ kafka, source, maxBatch: 0, maxBuffer: Number.NaN, closeTimeoutMs: -1, overflow: 'drop-all' as 'drop-oldest' }));
    expect(error.code).toBe('options_invalid');
    expect(error.issues).toStrictEqual([
      'maxBatch: must be a whole number of at least 1, got 0',
      'maxBuffer: must be a whole number of at least 0, got NaN',
      'closeTimeoutMs: must be a finite number from 0 to 2147483647, got -1',
      'overflow: must be drop-newest or drop-oldest, got "drop-all"',
    ]);
    expect(() => createEmitter({ kafka, source, maxBuffer: 0, maxBatch: 1, lingerMs: 0, closeAtExit: false })).not.toThrow();
  });

  // setTimeout fires a delay past 2^31 - 1 ms after 1 ms: close() dropped every buffered event at once.
  it('refuses a closeTimeoutMs past setTimeout\'s longest delay, and takes that delay itself', () => {
    const error = validationErrorOf(() => createEmitter({ kafka, source, closeTimeoutMs: 2 ** 31 }));
    expect(error.code).toBe('options_invalid');
    expect(error.issues).toStrictEqual(['closeTimeoutMs: must be a finite number from 0 to 2147483647, got 2147483648']);
    expect(() => createEmitter({ kafka, source, closeTimeoutMs: 2_147_483_647, closeAtExit: false })).not.toThrow();
  });

  // Accepted by createEmitter, an invalid source made every emit() throw.
  it('refuses a source the contract refuses when the emitter is made, naming its fields as emit() would', () => {
    const error = validationErrorOf(() => createEmitter({ kafka, source: { service: 'payments-api', kind: 'service', environment: '' }, closeAtExit: false }));
    expect(error.code).toBe('options_invalid');
    expect(error.issues).toStrictEqual([expect.stringMatching(/^source\.environment: /)]);
    const kinds = validationErrorOf(() => createEmitter({ kafka, source: { service: 'payments-api', kind: 'daemon', extra: 1 } as unknown as EmitterOptions['source'], closeAtExit: false }));
    expect(kinds.issues).toStrictEqual([expect.stringMatching(/^source\.kind: /), expect.stringMatching(/^source: .*extra/)]);
  });
});

describe('createEmitter buffering', () => {
  it('accepts valid events of every family into the buffer, waiting for the linger timer', () => {
    const { emitter, drops } = emitterWith();
    expect(emitter.policy(policyInput())).toStrictEqual({ id: 'generated-1', accepted: true });
    expect(emitter.invocation(invocationInput())).toStrictEqual({ id: 'generated-2', accepted: true });
    expect(emitter.device(deviceInput())).toStrictEqual({ id: 'generated-3', accepted: true });
    expect(emitter.stats()).toStrictEqual({ accepted: 3, delivered: 0, dropped: 0, sendFailures: 0, buffered: 3, bufferedBytes: expect.any(Number) as number });
    expect(emitter.stats().bufferedBytes).toBeGreaterThan(3 * 300);
    expect(drops).toStrictEqual([]);
    // One linger timer for the whole batch, not one per event.
    expect(jest.getTimerCount()).toBe(1);
  });

  it('drop-newest: refuses the event beyond maxBuffer and reports it to onDrop', () => {
    const { emitter, drops } = emitterWith({ maxBuffer: 3, overflow: 'drop-newest' });
    const results = [1, 2, 3, 4].map((n) => emitter.policy({ ...policyInput(), id: `policy-000${n}` }));
    expect(results.map((result) => result.accepted)).toStrictEqual([true, true, true, false]);
    expect(results[3]?.id).toBe('policy-0004');
    expect(drops.map((drop) => [drop.event.id, drop.reason])).toStrictEqual([['policy-0004', 'buffer_full']]);
    expect(emitter.stats()).toStrictEqual({ accepted: 3, delivered: 0, dropped: 1, sendFailures: 0, buffered: 3, bufferedBytes: expect.any(Number) as number });
  });

  it('drop-newest is the default overflow policy', () => {
    const { emitter, drops } = emitterWith({ maxBuffer: 1 });
    emitter.policy({ ...policyInput(), id: 'policy-0001' });
    expect(emitter.policy({ ...policyInput(), id: 'policy-0002' }).accepted).toBe(false);
    expect(drops.map((drop) => drop.event.id)).toStrictEqual(['policy-0002']);
  });

  it('drop-oldest: takes the new event and evicts the oldest waiting one, each time', () => {
    const { emitter, drops } = emitterWith({ maxBuffer: 3, overflow: 'drop-oldest' });
    const results = [1, 2, 3, 4, 5].map((n) => emitter.policy({ ...policyInput(), id: `policy-000${n}` }));
    expect(results.every((result) => result.accepted)).toBe(true);
    expect(drops.map((drop) => [drop.event.id, drop.reason])).toStrictEqual([
      ['policy-0001', 'buffer_full'],
      ['policy-0002', 'buffer_full'],
    ]);
    expect(emitter.stats()).toStrictEqual({ accepted: 5, delivered: 0, dropped: 2, sendFailures: 0, buffered: 3, bufferedBytes: expect.any(Number) as number });
  });

  it('maxBufferBytes: refuses the event that would take the buffer past its bytes, drop-newest', () => {
    const probe = emitterWith();
    probe.emitter.policy({ ...policyInput(), id: 'policy-0000' });
    const oneEvent = probe.emitter.stats().bufferedBytes;
    const { emitter, drops } = emitterWith({ maxBufferBytes: oneEvent * 2 + 1 });
    const results = [1, 2, 3].map((n) => emitter.policy({ ...policyInput(), id: `policy-000${n}` }));
    expect(results.map((result) => result.accepted)).toStrictEqual([true, true, false]);
    expect(drops.map((drop) => [drop.event.id, drop.reason])).toStrictEqual([['policy-0003', 'buffer_full']]);
    expect(emitter.stats()).toMatchObject({ buffered: 2, bufferedBytes: oneEvent * 2, dropped: 1 });
  });

  it('maxBufferBytes with drop-oldest: evicts as many waiting events as the new one needs', () => {
    const probe = emitterWith();
    probe.emitter.policy({ ...policyInput(), id: 'policy-0000' });
    const oneEvent = probe.emitter.stats().bufferedBytes;
    const { emitter, drops } = emitterWith({ maxBufferBytes: oneEvent * 2 + 1, overflow: 'drop-oldest' });
    [1, 2, 3, 4].forEach((n) => emitter.policy({ ...policyInput(), id: `policy-000${n}` }));
    expect(drops.map((drop) => drop.event.id)).toStrictEqual(['policy-0001', 'policy-0002']);
    // What onDrop gets back from the buffer is the event as it was validated.
    expect(familySchemas.policy.safeParse(drops[0]?.event).success).toBe(true);
    expect(emitter.stats()).toMatchObject({ buffered: 2, bufferedBytes: oneEvent * 2, dropped: 2, accepted: 4 });
  });

  it('refuses an event larger than maxBatchBytes with a ValidationError, buffering nothing', () => {
    const { emitter } = emitterWith({ maxBatchBytes: 600 });
    const labels = Object.fromEntries(Array.from({ length: 8 }, (_, n) => [`label_${n}`, 'x'.repeat(200)]));
    const error = validationErrorOf(() => emitter.policy({ ...policyInput(), labels }));
    expect(error.issues).toStrictEqual([expect.stringMatching(/^\(event\): \d+ bytes as a Kafka message, more than maxBatchBytes \(600\)/)]);
    expect(emitter.stats()).toMatchObject({ accepted: 0, buffered: 0, bufferedBytes: 0 });
  });

  it('refuses an event larger than maxBatchBytes after close() too, with the ValidationError, not as dropped', async () => {
    const { emitter, drops } = emitterWith({ maxBatchBytes: 600 });
    await emitter.close();
    const labels = Object.fromEntries(Array.from({ length: 8 }, (_, n) => [`label_${n}`, 'x'.repeat(200)]));
    expect(validationErrorOf(() => emitter.policy({ ...policyInput(), labels })).issues).toStrictEqual([expect.stringMatching(/more than maxBatchBytes \(600\)/)]);
    expect(drops).toStrictEqual([]);
  });

  it('an invalid event on a full buffer throws and is neither dropped nor counted', () => {
    const { emitter, drops } = emitterWith({ maxBuffer: 1, overflow: 'drop-oldest' });
    emitter.policy(policyInput());
    expect(() => emitter.policy({ ...policyInput(), client: { ip: '1.2.3.4.5' } })).toThrow(ValidationError);
    expect(drops).toStrictEqual([]);
    expect(emitter.stats()).toMatchObject({ accepted: 1, dropped: 0, buffered: 1 });
  });

  it('logs the first drop as a warning from the emitter component', () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
    const { emitter } = emitterWith({ maxBuffer: 0, logger });
    emitter.policy(policyInput());
    emitter.policy(policyInput());
    const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warnings).toStrictEqual([
      expect.objectContaining({ level: 40, component: 'emitter', dropped: 1, reason: 'buffer_full', msg: 'events dropped by the emitter' }),
    ]);
  });
});

describe('partitionKeyOf', () => {
  const parsed = (actor: Record<string, string>, ip?: string): VigilEvent =>
    familySchemas.policy.parse({ ...withField(policyEvent(), 'client.ip', ip), actor, id: 'event-id-0001' });

  it('keys by the user first', () => {
    expect(partitionKeyOf(parsed({ userId: 'u-1', consumerId: 'c-1' }, '8.8.8.8'))).toBe('u-1');
  });

  it('else by the API consumer', () => {
    expect(partitionKeyOf(parsed({ consumerId: 'c-1', tenantId: 't-1' }, '8.8.8.8'))).toBe('c-1');
  });

  it('else by the client IP', () => {
    expect(partitionKeyOf(parsed({ tenantId: 't-1' }, '8.8.8.8'))).toBe('8.8.8.8');
  });

  it('else by the event id', () => {
    expect(partitionKeyOf(parsed({}))).toBe('event-id-0001');
  });

  it('works for any family', () => {
    expect(partitionKeyOf(familySchemas.invocation.parse(invocationEvent()))).toBe('app-2');
  });
});

describe('createEmitter compression', () => {
  /** A stand-in client whose producer records each request's compression (kafkajs's numbers). */
  function recording(
    writes?: NonNullable<EmitterOptions['compression']>[],
    defaultCompression?: EmitterOptions['compression'],
  ): { client: EmitterOptions['kafka']; compressions: Array<number | undefined> } {
    const compressions: Array<number | undefined> = [];
    const producer = {
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      sendBatch: (batch: { compression?: number }) => {
        compressions.push(batch.compression);
        return Promise.resolve([]);
      },
    };
    return { client: { producer: () => producer, ...(writes ? { compressions: writes } : {}), ...(defaultCompression ? { defaultCompression } : {}) }, compressions };
  }

  it.each([
    [undefined, CompressionTypes.GZIP],
    ['gzip', CompressionTypes.GZIP],
    ['none', CompressionTypes.None],
  ] as const)('compression %s sends with kafkajs compression %s', async (compression, expected) => {
    const { client, compressions } = recording();
    const { emitter } = emitterWith({ kafka: client, ...(compression ? { compression } : {}) });
    emitter.policy(policyInput());
    await emitter.flush();
    expect(compressions).toStrictEqual([expected]);
  });

  it.each([
    ['lz4', CompressionTypes.LZ4],
    ['snappy', CompressionTypes.Snappy],
  ] as const)('compression %s, on a client that writes it, sends with kafkajs compression %s', async (compression, expected) => {
    const { client, compressions } = recording(['none', 'gzip', 'snappy', 'lz4']);
    const { emitter } = emitterWith({ kafka: client, compression });
    emitter.policy(policyInput());
    await emitter.flush();
    expect(compressions).toStrictEqual([expected]);
  });

  it('takes the client\'s default compression when its options name none, and the option over it', async () => {
    const defaulted = recording(['none', 'gzip', 'lz4'], 'lz4');
    const first = emitterWith({ kafka: defaulted.client }).emitter;
    first.policy(policyInput());
    await first.flush();
    const chosen = emitterWith({ kafka: defaulted.client, compression: 'gzip' }).emitter;
    chosen.policy(policyInput());
    await chosen.flush();
    expect(defaulted.compressions).toStrictEqual([CompressionTypes.LZ4, CompressionTypes.GZIP]);
  });

  it('refuses a compression the client cannot write, naming the option and what would write it', () => {
    const lz4 = validationErrorOf(() => emitterWith({ compression: 'lz4' }));
    expect(lz4.issues).toStrictEqual(['compression: must be one of none, gzip, got "lz4" (lz4 needs a client that writes it: rdkafkaClient() from @vigil/sdk/rdkafka)']);
    const zstd = validationErrorOf(() => emitterWith({ kafka: recording(['none', 'gzip', 'lz4']).client, compression: 'zstd' as unknown as EmitterOptions['compression'] }));
    expect(zstd.issues).toStrictEqual(['compression: must be one of none, gzip, lz4, got "zstd"']);
  });
});

describe('createEmitter batch size: a client that cuts batches into requests itself', () => {
  /** A stand-in client whose producer records how many messages each sendBatch carried. */
  function counting(maxSendBytes?: number): { client: EmitterOptions['kafka']; sizes: number[] } {
    const sizes: number[] = [];
    const producer = {
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      sendBatch: (batch: EmitterBatch) => {
        sizes.push(batch.topicMessages.reduce((sum, { messages }) => sum + messages.length, 0));
        return Promise.resolve();
      },
    };
    return { client: { producer: () => producer, ...(maxSendBytes === undefined ? {} : { maxSendBytes }) }, sizes };
  }

  it('a kafkajs-like client gets batches of at most maxBatchBytes; one with maxSendBytes gets up to that', async () => {
    // The bytes one event takes in the buffer (its message and the record's framing).
    const probe = emitterWith().emitter;
    probe.policy(policyInput());
    const eventBytes = probe.stats().bufferedBytes;
    for (const [maxSendBytes, expected] of [
      [undefined, [2, 2, 2, 2, 2]],
      [eventBytes * 100, [10]],
    ] as const) {
      const { client, sizes } = counting(maxSendBytes);
      // Two events fit maxBatchBytes, three do not.
      const { emitter } = emitterWith({ kafka: client, maxBatchBytes: Math.floor(eventBytes * 2.5) });
      for (let n = 0; n < 10; n++) emitter.policy(policyInput());
      await emitter.flush();
      expect(sizes).toStrictEqual(expected);
    }
  });

  it('still refuses an event larger than maxBatchBytes when the client takes larger batches', () => {
    const { client } = counting(1_000_000);
    const { emitter } = emitterWith({ kafka: client, maxBatchBytes: 100 });
    expect(validationErrorOf(() => emitter.policy(policyInput())).issues[0]).toMatch(/more than maxBatchBytes \(100\)/);
  });
});

describe('createEmitter closing and failing, against a stand-in client', () => {
  /** A client whose sends fail while `down` says so, counting sends and disconnects. */
  function flaky(down: () => boolean, sendMs = 0): { client: EmitterOptions['kafka']; sends: () => number; disconnects: () => number } {
    let sends = 0;
    let disconnects = 0;
    const producer = {
      connect: () => Promise.resolve(),
      disconnect: () => {
        disconnects++;
        return Promise.resolve();
      },
      sendBatch: async () => {
        sends++;
        if (sendMs > 0) await new Promise((resolve) => setTimeout(resolve, sendMs));
        if (down()) throw new Error('kafka is away');
      },
    };
    return { client: { producer: () => producer }, sends: () => sends, disconnects: () => disconnects };
  }

  // A broker that never answers: close() gives up at its deadline, but the request out (and a
  // connection made after) kept the process up for minutes, and sent what it reported dropped.
  it('disconnects again once the request close() gave up on settles, and at once a connection that came after close()', async () => {
    jest.useRealTimers();
    const slowSend = flaky(() => false, 300);
    const sending = emitterWith({ kafka: slowSend.client });
    sending.emitter.policy(policyInput());
    void sending.emitter.flush().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(sending.emitter.close({ timeoutMs: 50 })).rejects.toThrow('close: 1 events were not acknowledged by Kafka within 50 ms');
    expect(slowSend.disconnects()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(slowSend.disconnects()).toBe(2);

    let connects = 0;
    let disconnects = 0;
    let batches = 0;
    const lateProducer = {
      connect: () => new Promise<void>((resolve) => setTimeout(() => resolve(void connects++), 200)),
      disconnect: () => Promise.resolve(void disconnects++),
      sendBatch: () => Promise.resolve(void batches++),
    };
    const connecting = emitterWith({ kafka: { producer: () => lateProducer } });
    connecting.emitter.policy(policyInput());
    void connecting.emitter.flush().catch(() => undefined);
    await expect(connecting.emitter.close({ timeoutMs: 50 })).rejects.toThrow('not acknowledged');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect({ connects, disconnects, batches }).toStrictEqual({ connects: 1, disconnects: 1, batches: 0 });
    expect(connecting.drops.map((drop) => drop.reason)).toStrictEqual(['closed']);
  });

  it('asks kafkajs for one attempt per send: the emitter retries, and reports each failure', async () => {
    const configs: unknown[] = [];
    const producer = { connect: () => Promise.resolve(), disconnect: () => Promise.resolve(), sendBatch: () => Promise.resolve() };
    const { emitter } = emitterWith({
      kafka: {
        producer: (config) => {
          configs.push(config);
          return producer;
        },
      },
    });
    emitter.policy(policyInput());
    await emitter.flush();
    expect(configs).toMatchObject([{ retry: { retries: 0 }, maxInFlightRequests: 1 }]);
  });

  // process.exit() runs no event loop: nothing can be sent, but the loss must not be silent.
  it.each([
    ['waiting for the linger timer', '{ lingerMs: 60000 }', ''],
    ['sent one at a time, each batch full at once (no timer ever set)', '{ lingerMs: 60000, maxBatch: 1 }', ''],
    ['with a close() called and not awaited', '{ lingerMs: 60000 }', 'void emitter.close().catch(() => undefined);'],
  ])('reports the events still buffered when the process exits by process.exit(), %s, to onDrop and in a warning', (_name, settings, beforeExit) => {
    const script = [
      `const { createEmitter } = require(${JSON.stringify(require.resolve('../../ingest/sdk'))});`,
      `const producer = { connect: () => Promise.resolve(), disconnect: () => Promise.resolve(), sendBatch: () => new Promise(() => undefined) };`,
      `const logger = { warn: (fields, message) => process.stdout.write('warn ' + message + ' ' + JSON.stringify(fields) + '\\n'), child() { return logger; } };`,
      `const emitter = createEmitter({ ...${settings}, kafka: { producer: () => producer }, source: { service: 'exit-test', kind: 'service' }, logger, onDrop: (event, reason) => process.stdout.write('drop ' + event.id + ' ' + reason + '\\n') });`,
      `for (const id of ['evt-exit-1', 'evt-exit-2', 'evt-exit-3']) emitter.policy({ id, actor: { userId: 'u-1' }, policy: { kind: 'authn', name: 'pw', outcome: 'pass', group: 'accounts', resource: { api: 'a', method: 'POST', path: '/login' } } });`,
      beforeExit,
      `setImmediate(() => process.exit(0));`,
    ].join('\n');
    const child = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), '--eval', script], { encoding: 'utf8', timeout: 60_000 });
    expect(child.stderr).toBe('');
    const lines = child.stdout.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('drop ')).sort()).toStrictEqual(['drop evt-exit-1 closed', 'drop evt-exit-2 closed', 'drop evt-exit-3 closed']);
    expect(lines.filter((line) => line.startsWith('warn ')).map((line) => line.split(' {')[0])).toContain(
      'warn the process is exiting with events buffered (the emitter not closed, or its close() not awaited): they are lost (await close() before process.exit())',
    );
  });

  // kafkajs wraps the last error of its retrier, even a timeout, in KafkaJSNumberOfRetriesExceeded
  // (not retriable): every broker outage read as a configuration to fix.
  it('tells a failure retrying will fix from one it will not by the error kafkajs wrapped', async () => {
    jest.useRealTimers();
    const warnings: string[] = [];
    const logger = { warn: (_fields: Record<string, unknown>, message: string) => void warnings.push(message), child: () => logger };
    const wrapped = (retriable: boolean): Error => {
      const cause = Object.assign(new Error(retriable ? 'Request Produce(key: 0, version: 7) timed out' : 'SASL SCRAM SHA512 authentication failed'), { retriable });
      return Object.assign(new Error(cause.message, { cause }), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false });
    };
    for (const retriable of [true, false]) {
      const producer = { connect: () => Promise.resolve(), disconnect: () => Promise.resolve(), sendBatch: () => Promise.reject(wrapped(retriable)) };
      const { emitter } = emitterWith({ kafka: { producer: () => producer }, logger });
      emitter.policy(policyInput());
      await expect(emitter.flush()).rejects.toThrow();
      await emitter.close({ timeoutMs: 10 }).catch(() => undefined);
    }
    expect([...new Set(warnings.filter((message) => message.startsWith('event delivery failed')))]).toStrictEqual([
      'event delivery failed; will retry',
      'event delivery failed, and retrying alone will not fix it (SASL SCRAM SHA512 authentication failed): fix the Kafka configuration; the events wait in the buffer meanwhile',
    ]);
  });

  it('a throwing onDrop reaches neither emit()\'s caller nor close(): the producer is still disconnected', async () => {
    const kafka = flaky(() => true);
    const { emitter } = emitterWith({
      kafka: kafka.client,
      maxBuffer: 1,
      onDrop: () => {
        throw new Error('the service\'s callback is broken');
      },
    });
    emitter.policy(policyInput());
    expect(emitter.policy(policyInput()).accepted).toBe(false);
    await expect(emitter.close()).rejects.toThrow('kafka is away');
    expect(kafka.disconnects()).toBe(1);
    expect(emitter.stats()).toMatchObject({ accepted: 1, dropped: 2, buffered: 0 });
  });

  it('after a failed send, a full batch waits for the backoff instead of sending again at each emit', async () => {
    jest.useRealTimers();
    const kafka = flaky(() => true);
    const { emitter } = emitterWith({ kafka: kafka.client, maxBatch: 2 });
    emitter.policy(policyInput());
    emitter.policy(policyInput());
    // The first send fails; its backoff is 100-200 ms.
    while (emitter.stats().sendFailures === 0) await new Promise((resolve) => setImmediate(resolve));
    for (let n = 0; n < 50; n++) {
      emitter.policy(policyInput());
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(kafka.sends()).toBe(1);
    expect(emitter.stats()).toMatchObject({ sendFailures: 1, buffered: 52 });
    await emitter.close().catch(() => undefined);
  });

  it('backs off after a failed send while the service goes on emitting during each send (an emit\'s linger did not replace the backoff)', async () => {
    jest.useRealTimers();
    // Kafka is away; each send takes 5 ms to fail; an event comes every 2 ms for 600 ms, so each
    // send has a linger (the default 50 ms) set behind it.
    const kafka = flaky(() => true, 5);
    const { emitter } = emitterWith({ kafka: kafka.client, lingerMs: 50 });
    const emitting = setInterval(() => emitter.policy(policyInput()), 2);
    await new Promise((resolve) => setTimeout(resolve, 600));
    clearInterval(emitting);
    // The backoff: 100-200 ms after the first failure, 200-400 after the second: at most 4 sends
    // in 600 ms (a retry at each linger made about 11).
    expect(kafka.sends()).toBeGreaterThanOrEqual(2);
    expect(kafka.sends()).toBeLessThanOrEqual(4);
    await emitter.close({ timeoutMs: 10 }).catch(() => undefined);
  });

  // setTimeout fires NaN, a negative delay or one past 2^31 - 1 ms after 1 ms: close() dropped everything unsent.
  it.each([Number.NaN, -5, 2 ** 31, Number.POSITIVE_INFINITY])('close({ timeoutMs: %p }) rejects with a ValidationError naming timeoutMs, and closes nothing', async (timeoutMs) => {
    jest.useRealTimers();
    let sent = 0;
    const producer = {
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      sendBatch: async (batch: EmitterBatch) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        sent += batch.topicMessages.reduce((sum, { messages }) => sum + messages.length, 0);
      },
    };
    const { emitter, drops } = emitterWith({ kafka: { producer: () => producer } });
    emitter.policy(policyInput());
    const refused = await emitter.close({ timeoutMs }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused).toMatchObject({ code: 'options_invalid', issues: [`timeoutMs: must be a finite number from 0 to 2147483647, got ${String(timeoutMs)}`] });
    expect(drops).toStrictEqual([]);
    // Still open: the event is there to be sent by a close with a sound deadline.
    expect(emitter.policy(policyInput()).accepted).toBe(true);
    await emitter.close({ timeoutMs: 2000 });
    expect({ sent, dropped: drops.length }).toStrictEqual({ sent: 2, dropped: 0 });
  });

  it('close() ends within its timeout plus at most a second, even when the flush ends near the deadline and the disconnect never answers', async () => {
    jest.useRealTimers();
    const producer = {
      connect: () => Promise.resolve(),
      disconnect: () => new Promise<void>(() => undefined),
      // The flush's one send is acknowledged after 1.6 s of the 2 s allowed.
      sendBatch: () => new Promise<void>((resolve) => setTimeout(resolve, 1600)),
    };
    const { emitter } = emitterWith({ kafka: { producer: () => producer } });
    emitter.policy(policyInput());
    const startedAt = Date.now();
    await emitter.close({ timeoutMs: 2000 });
    // 1.6 s, then the disconnect gets what is left, at least 1 s: about 2.6 s (it waited 2 s more: 3.6).
    expect(Date.now() - startedAt).toBeLessThan(3100);
    expect(emitter.stats()).toMatchObject({ delivered: 1, dropped: 0 });
  });

  // flush() waited for an empty buffer: under steady emitting it never resolved.
  it('flush() resolves once the events buffered when it was called are acknowledged, while the service goes on emitting', async () => {
    jest.useRealTimers();
    let sends = 0;
    let emitter: ReturnType<typeof createEmitter> | undefined;
    const producer = {
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      // Each send takes a moment, during which the service emits one more event.
      sendBatch: async () => {
        sends++;
        emitter?.policy(policyInput());
        await new Promise((resolve) => setTimeout(resolve, 2));
      },
    };
    emitter = emitterWith({ kafka: { producer: () => producer } }).emitter;
    emitter.policy(policyInput());
    let deadline: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([emitter.flush().then(() => 'flushed'), new Promise((resolve) => (deadline = setTimeout(() => resolve('still flushing after 1 s'), 1000)))]);
    clearTimeout(deadline);
    // The service stops emitting (else, without the fix, the sends never end and hold the run).
    const current = emitter;
    emitter = undefined;
    const sentByThen = sends;
    await current.close();
    expect(outcome).toBe('flushed');
    expect(sentByThen).toBeLessThanOrEqual(2);
    expect(current.stats().delivered).toBeGreaterThanOrEqual(1);
  });

  // Counting evictions as progress let a flush resolve while what it waited for was still in flight.
  it('flush() waits for the batch in flight even when drop-oldest evicts newer events meanwhile, and when called during a send', async () => {
    jest.useRealTimers();
    const { client, sending, release } = firstSendHeld();
    const { emitter } = emitterWith({ kafka: client, maxBuffer: 3, overflow: 'drop-oldest' });
    emitter.policy({ ...policyInput(), id: 'policy-0001' });
    emitter.policy({ ...policyInput(), id: 'policy-0002' });
    void emitter.flush();
    await sending;
    emitter.policy({ ...policyInput(), id: 'policy-0003' });
    let done = false;
    const flushed = emitter.flush().then(() => {
      done = true;
    });
    for (const n of [4, 5, 6]) emitter.policy({ ...policyInput(), id: `policy-000${n}` });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(emitter.stats()).toMatchObject({ dropped: 3, delivered: 0 });
    expect(done).toBe(false);
    release();
    await flushed;
    expect(emitter.stats().delivered).toBeGreaterThanOrEqual(2);
    await emitter.close();
  });

  // Every waiting event was evicted for a new one that still could not fit beside the batch in flight.
  it('drop-oldest evicts no waiting event when evicting them all would not make room beside the batch in flight', async () => {
    // Measured under the fake timers: the probe's linger timer is cleared after the test (a real one
    // fired a minute later, after the file's environment was gone, and imported kafkajs).
    const probe = emitterWith();
    probe.emitter.policy({ ...policyInput(), id: 'policy-0000' });
    const oneEvent = probe.emitter.stats().bufferedBytes;
    jest.useRealTimers();
    const { client, sending, release } = firstSendHeld();
    const { emitter, drops } = emitterWith({ kafka: client, maxBufferBytes: oneEvent * 3 + 1, overflow: 'drop-oldest' });
    emitter.policy({ ...policyInput(), id: 'policy-0001' });
    emitter.policy({ ...policyInput(), id: 'policy-0002' });
    const flushed = emitter.flush();
    await sending;
    emitter.policy({ ...policyInput(), id: 'policy-0003' });
    // About twice an event's bytes: with two in flight it can't fit, whatever is evicted.
    const labels = Object.fromEntries(Array.from({ length: Math.ceil(oneEvent / 200) }, (_, n) => [`note_${n}`, 'x'.repeat(200)]));
    const big = emitter.policy({ ...policyInput(), id: 'policy-0004', labels });
    expect(big.accepted).toBe(false);
    expect(drops.map((drop) => drop.event.id)).toStrictEqual(['policy-0004']);
    expect(emitter.stats()).toMatchObject({ buffered: 3, dropped: 1 });
    release();
    await flushed;
    await emitter.close();
  });

  it('close() settles while the service goes on emitting: what comes after close() is refused as closed', async () => {
    jest.useRealTimers();
    // Each send takes 5 ms; an event comes every millisecond.
    const kafka = flaky(() => false, 5);
    const { emitter, drops } = emitterWith({ kafka: kafka.client, lingerMs: 1 });
    const emitting = setInterval(() => emitter.policy(policyInput()), 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closed = await Promise.race([emitter.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still closing after 2 s'), 2_000))]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    clearInterval(emitting);
    expect(closed).toBe('closed');
    expect(drops.length).toBeGreaterThan(0);
    expect(new Set(drops.map((drop) => drop.reason))).toStrictEqual(new Set(['closed']));
    const stats = emitter.stats();
    expect(stats.delivered).toBe(stats.accepted);
    expect(stats.buffered).toBe(0);
  });
});
