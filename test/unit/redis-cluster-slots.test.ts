import type { Cluster } from 'ioredis';
import { ReplyError } from 'ioredis';
import { roundTrip, sharesBySlot, stateKey, type StateCall } from '../../detectors';
import { HASH_SLOTS, Instrumentation, StoreUnavailableError, hashSlot, type InstrumentationEvents } from '../../platform';

/**
 * The Redis Cluster side of the round trip without a network: the hash slot function, the split
 * of batch calls per slot, and a fake cluster of three nodes whose pipelines check, as Redis
 * does, that every command's keys are in one slot the node serves.
 */

// CLUSTER KEYSLOT of each key, as Redis 7.0 answered it on the local cluster (scripts/stack.sh up-cluster).
const REDIS_SLOTS: [string, number][] = [
  ['foo', 12182],
  ['bar', 5061],
  ['{user1000}.following', 3443],
  ['a{}b', 13694],
  ['{}', 15257],
  ['x{a}{b}', 15495],
  ['vigil:rule:{r|ü😀}:window', 14314],
  ['ключ', 10303],
  ['', 0],
  ['vigil:{alerts}:open', 4569],
  ['a{b', 13340],
  ['a}b{c}', 7365],
  ['{é}x', 10180],
  ['k{日本}', 10949],
  // An empty first tag: Redis hashes the whole key (ioredis's cluster-key-slot does not; no Vigil key has one).
  ['a{}{b}', 15033],
];

/**
 * Keys as Vigil builds them (a non-empty tag opens at the first brace) around group keys from
 * event data: ASCII, accents, Cyrillic, CJK, emoji, braces and lone surrogates.
 */
function randomKeys(count: number): string[] {
  let seed = 7;
  const next = (): number => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
  const alphabet = ['a', 'Z', '9', ':', '|', '{', '}', 'é', 'ж', '日', '😀', '\ud800', '\udc00', '-'];
  const text = (): string => Array.from({ length: 1 + Math.floor(next() * 12) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
  return Array.from({ length: count }, () => stateKey('vigil', 'rule', text(), 'window'));
}

describe('hashSlot', () => {
  it.each(REDIS_SLOTS)('is the slot Redis gives %j', (key, slot) => {
    expect(hashSlot(key)).toBe(slot);
  });

  it("agrees with ioredis's own slot function (which routes the pipelines) on 5,000 of Vigil's keys, lone surrogates included", () => {
    // cluster-key-slot is ioredis's dependency: resolved from ioredis, as ioredis loads it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ioredisSlot = require(require.resolve('cluster-key-slot', { paths: [require.resolve('ioredis')] })) as (key: string) => number;
    const keys = randomKeys(5000);
    expect(keys.filter((key) => hashSlot(key) !== ioredisSlot(key))).toEqual([]);
  });
});

/** Keys of one user in the engine's layout, one slot per user. */
const seen = (user: string): string => stateKey('p', 'new-device', user, 'seen');
const firstSeenItem = (user: string, value: string): { keys: string[]; args: (string | number)[] } => ({ keys: [seen(user)], args: [value, 1, 0, 10, 1] });

describe('sharesBySlot', () => {
  it('splits a batch call into one call per slot, each keeping its items in order; a single call stays whole', () => {
    const users = ['u1', 'u2', 'u1', 'u3', 'u2', 'u1'];
    const calls: StateCall[] = [
      { script: 'firstSeen', items: users.map((user, index) => firstSeenItem(user, `v${index}`)) },
      { script: 'readRequest', keys: ['p:corr:{req:r-1}'], args: [] },
    ];
    const shares = sharesBySlot(calls);
    // Slot of each item, in the order slots first appear: u1's, u2's, u3's.
    expect(shares).toEqual([
      { call: 0, slot: hashSlot(seen('u1')), items: [0, 2, 5] },
      { call: 0, slot: hashSlot(seen('u2')), items: [1, 4] },
      { call: 0, slot: hashSlot(seen('u3')), items: [3] },
      { call: 1, slot: hashSlot('p:corr:{req:r-1}') },
    ]);
  });

  it("refuses a call or an item whose keys are in several slots, naming the script (a key builder without a shared tag)", () => {
    expect(() => sharesBySlot([{ script: 'windowAdd', items: [{ keys: ['a', 'b'], args: [1, 2, 3, 4, 5, 6, 7, 8] }] }])).toThrow(new TypeError('windowAdd item 1: keys in several hash slots (a, b); on a Redis Cluster one script call\'s keys must share a hash tag'));
    expect(() => sharesBySlot([{ script: 'alertHold', keys: ['x:{alerts}:held', 'x:clock'], args: [] }])).toThrow(TypeError);
  });
});

type Reply = [Error | null, unknown];

const scriptError = (message: string): Error => new (ReplyError as new (message: string) => Error)(message);

/**
 * A cluster of three nodes (slots split in three ranges) whose pipelines record what they were
 * sent. A pipeline answers each firstSeen call as Redis would, one reply per item (`item:<value>`),
 * after checking that every key of the command is in one slot served by the node it went to;
 * otherwise the command gets the error Redis gives (CROSSSLOT, or MOVED).
 */
function fakeCluster(options: { refuse?: (keys: string[]) => boolean; exec?: () => Promise<Reply[] | null> } = {}): {
  cluster: Cluster;
  pipelines: { node: string; commands: unknown[][] }[];
} {
  const nodes = ['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003'];
  const nodeOfSlot = (slot: number): string => nodes[Math.floor((slot * nodes.length) / HASH_SLOTS)] as string;
  const slots = Array.from({ length: HASH_SLOTS }, (_, slot) => [nodeOfSlot(slot)]);
  const pipelines: { node: string; commands: unknown[][] }[] = [];
  const pipeline = (): object => {
    const record = { node: '', commands: [] as unknown[][] };
    pipelines.push(record);
    const answer = (command: unknown[]): Reply => {
      const [, numberOfKeys, ...rest] = command as [string, number, ...string[]];
      const keys = rest.slice(0, numberOfKeys);
      const keySlots = new Set(keys.map(hashSlot));
      if (keySlots.size > 1) return [scriptError("CROSSSLOT Keys in request don't hash to the same slot"), null];
      const slot = [...keySlots][0] ?? 0;
      if (nodeOfSlot(slot) !== record.node) return [scriptError(`MOVED ${slot} ${nodeOfSlot(slot)}`), null];
      if (options.refuse?.(keys)) return [scriptError('ERR refused whole'), null];
      return [null, rest.slice(numberOfKeys).filter((_, index) => index % 5 === 0).map((value) => `item:${value}`)];
    };
    return new Proxy(
      {},
      {
        get(_target, property) {
          if (property === 'length') return record.commands.length;
          if (property === 'exec') return options.exec ?? (() => Promise.resolve(record.commands.map(answer)));
          if (typeof property === 'string' && property.startsWith('vigil_')) {
            return (...args: unknown[]) => {
              // ioredis sends a pipeline to the node of its first key's slot.
              if (record.commands.length === 0) record.node = nodeOfSlot(hashSlot(String(args[1])));
              record.commands.push([property, ...args]);
            };
          }
          return undefined;
        },
      },
    );
  };
  return { cluster: { isCluster: true, slots, pipeline } as unknown as Cluster, pipelines };
}

/** 120 items of 40 users (so of up to 40 slots, on all three nodes), each user's items far apart. */
const USERS = Array.from({ length: 120 }, (_, index) => `user-${(index * 7) % 40}`);

describe('roundTrip on a Redis Cluster', () => {
  it('sends one call per slot, one pipeline per node, and puts the replies back in the order of the calls and items', async () => {
    const { cluster, pipelines } = fakeCluster();
    const items = USERS.map((user, index) => firstSeenItem(user, `v${index}`));
    const stats = { roundTrips: 0 };
    const replies = await roundTrip(cluster, [{ script: 'firstSeen', items }, { script: 'firstSeen', items: items.slice(0, 3).reverse() }], { operation: 'test', stats });
    expect(replies).toEqual([
      { ok: true, value: USERS.map((_, index) => `item:v${index}`) },
      { ok: true, value: ['item:v2', 'item:v1', 'item:v0'] },
    ]);
    // One pipeline per node, all three used; each command on one slot of its node.
    expect(pipelines.map(({ node }) => node).sort()).toEqual(['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003']);
    const slotsSent = pipelines.flatMap(({ commands }) => commands.map((command) => new Set((command.slice(2, 2 + Number(command[1])) as string[]).map(hashSlot)).size));
    expect(new Set(slotsSent)).toEqual(new Set([1]));
    expect(slotsSent).toHaveLength(sharesBySlot([{ script: 'firstSeen', items }, { script: 'firstSeen', items: items.slice(0, 3) }]).length);
    expect(stats.roundTrips).toBe(1);
  });

  it('fails only the items of a slot whose call Redis refused whole; a call all refused fails', async () => {
    const refusedUser = 'user-7';
    const { cluster } = fakeCluster({ refuse: (keys) => keys.includes(seen(refusedUser)) });
    const items = USERS.map((user, index) => firstSeenItem(user, `v${index}`));
    const [mixed, alone] = await roundTrip(cluster, [{ script: 'firstSeen', items }, { script: 'firstSeen', items: [firstSeenItem(refusedUser, 'x')] }], { operation: 'test' });
    const refusedSlot = hashSlot(seen(refusedUser));
    expect(mixed?.ok).toBe(true);
    const values = (mixed as { value: unknown[] }).value;
    USERS.forEach((user, index) => {
      if (hashSlot(seen(user)) === refusedSlot) expect(values[index]).toEqual(scriptError('ERR refused whole'));
      else expect(values[index]).toBe(`item:v${index}`);
    });
    expect(alone).toEqual({ ok: false, error: scriptError('ERR refused whole') });
  });

  it('turns a node that cannot be reached into a retriable StoreUnavailableError', async () => {
    const { cluster } = fakeCluster({ exec: () => Promise.reject(new Error('Connection is closed.')) });
    await expect(roundTrip(cluster, [{ script: 'firstSeen', items: [firstSeenItem('u1', 'v')] }], { operation: 'rule state' })).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('reports the script calls it sent in state.round_trip', async () => {
    const events = new Instrumentation();
    const seenEvents: InstrumentationEvents['state.round_trip'][] = [];
    events.on('state.round_trip', (event) => seenEvents.push(event));
    const items = USERS.map((user, index) => firstSeenItem(user, `v${index}`));
    await roundTrip(fakeCluster().cluster, [{ script: 'firstSeen', items }], { operation: 'rule state', events });
    expect(seenEvents).toEqual([{ operation: 'rule state', commands: sharesBySlot([{ script: 'firstSeen', items }]).length, durationMs: expect.any(Number) as unknown, reached: true }]);
  });
});
