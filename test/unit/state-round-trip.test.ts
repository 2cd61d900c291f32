import type { Redis } from 'ioredis';
import { ReplyError } from 'ioredis';
import { roundTrip } from '../../detectors';
import { Instrumentation, type InstrumentationEvents } from '../../platform';
import { StoreUnavailableError } from '../../platform';

/**
 * A client whose pipeline records the registered commands queued on it and resolves `exec`
 * with what the test says: enough to hold roundTrip to its contract without a network.
 */
function fakeRedis(exec: () => Promise<[Error | null, unknown][] | null>): { redis: Redis; queued: unknown[][]; pipelines: () => number } {
  const queued: unknown[][] = [];
  let pipelines = 0;
  const pipeline = (): object => {
    pipelines++;
    return new Proxy(
      { exec },
      {
        get(target, property) {
          if (property === 'exec') return target.exec;
          if (typeof property === 'string' && property.startsWith('vigil_')) return (...args: unknown[]) => queued.push([property, ...args]);
          return undefined;
        },
      },
    );
  };
  return { redis: { pipeline } as unknown as Redis, queued, pipelines: () => pipelines };
}

// A single (not batch) script call; correlation's readRequest, used here before, is a batch script since its version 2.
const read = { script: 'groupSwap', keys: ['p:group:{g}:a', 'p:group:{g}:b'], args: [] } as const;

describe('roundTrip', () => {
  it('sends every call in one pipeline and returns one reply per call, a script error as data', async () => {
    // ioredis declares ReplyError as `any`: typed here once.
    const scriptError = new (ReplyError as new (message: string) => Error)('ERR boom');
    const { redis, queued, pipelines } = fakeRedis(() => Promise.resolve([[null, ['authn', 'fail']], [scriptError, null]]));
    const stats = { roundTrips: 0 };
    const replies = await roundTrip(redis, [read, { script: 'firstSeen', items: [{ keys: ['k'], args: ['v', 1, 0, 10, 1] }] }], { operation: 'test', stats });
    expect(replies).toEqual([{ ok: true, value: ['authn', 'fail'] }, { ok: false, error: scriptError }]);
    expect(pipelines()).toBe(1);
    expect(stats.roundTrips).toBe(1);
    expect(queued.map(([name]) => name)).toEqual(['vigil_groupSwap_v1', 'vigil_firstSeen_v2']);
    // A batch call: numkeys, every item's keys, then every item's arguments.
    expect(queued[1]).toEqual(['vigil_firstSeen_v2', 1, 'k', 'v', 1, 0, 10, 1]);
  });

  it('makes no trip for no calls', async () => {
    const { redis, pipelines } = fakeRedis(() => Promise.resolve([]));
    const stats = { roundTrips: 0 };
    expect(await roundTrip(redis, [], { operation: 'test', stats })).toEqual([]);
    expect(pipelines()).toBe(0);
    expect(stats.roundTrips).toBe(0);
  });

  it.each([
    ['the pipeline rejects', (): Promise<null> => Promise.reject(new Error('Connection is closed.'))],
    ['the pipeline is aborted', (): Promise<null> => Promise.resolve(null)],
    ['a call fails with anything but a Redis reply', (): Promise<[Error, null][]> => Promise.resolve([[new Error('Connection is closed.'), null]])],
    ['a call has no reply', (): Promise<[Error | null, unknown][]> => Promise.resolve([])],
  ])('turns a connection failure into a retriable StoreUnavailableError: %s', async (_case, exec) => {
    const { redis } = fakeRedis(exec);
    const failure = roundTrip(redis, [read], { operation: 'correlation' });
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toMatchObject({ retriable: true, store: 'redis', message: expect.stringContaining('correlation unavailable') as unknown });
  });

  it('reports each trip as a state.round_trip event, reached or not', async () => {
    const events = new Instrumentation();
    const seen: InstrumentationEvents['state.round_trip'][] = [];
    events.on('state.round_trip', (event) => seen.push(event));
    await roundTrip(fakeRedis(() => Promise.resolve([[null, 1], [null, 2]])).redis, [read, read], { operation: 'ok', events });
    await roundTrip(fakeRedis(() => Promise.reject(new Error('down'))).redis, [read], { operation: 'down', events }).catch(() => undefined);
    expect(seen).toEqual([
      { operation: 'ok', commands: 2, durationMs: expect.any(Number) as unknown, reached: true },
      { operation: 'down', commands: 1, durationMs: expect.any(Number) as unknown, reached: false },
    ]);
  });
});
