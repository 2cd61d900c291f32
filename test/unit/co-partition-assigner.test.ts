import { AssignerProtocol, PartitionAssigners, Partitioners, type Cluster, type Logger, type PartitionMetadata } from 'kafkajs';
import { CO_PARTITION_PROTOCOL, CoPartitioningError, checkCoPartitioned, coPartitionAssigner, coPartitionedAssignment, type TopicAssignment } from '../../platform';
import { partitionKeyOf } from '../../ingest/sdk';
import { FAMILIES } from '../../schemas';
import { mixedHour } from '../support/mixed-hour';

const TOPICS = ['vigil.events.policy', 'vigil.events.invocation', 'vigil.events.device'];
const range = (count: number): number[] => Array.from({ length: count }, (_, index) => index);
const partitionsOf = (count: number, topics = TOPICS): Record<string, number[]> => Object.fromEntries(topics.map((topic) => [topic, range(count)]));

/** member → its partition numbers, checking on the way that each member holds the same numbers of every topic. */
function numbersPerMember(assignment: Record<string, TopicAssignment>, topics = TOPICS): Record<string, number[]> {
  return Object.fromEntries(
    Object.entries(assignment).map(([member, share]) => {
      const numbers = share[topics[0] ?? ''] ?? [];
      for (const topic of topics) expect([member, topic, share[topic] ?? []]).toEqual([member, topic, numbers]);
      return [member, numbers];
    }),
  );
}

/** A seeded generator, so a failing case can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('coPartitionedAssignment', () => {
  it('gives partition N of every topic to one member, dealt over the members sorted by id', () => {
    const assignment = coPartitionedAssignment({ members: ['m-b', 'm-a'], partitions: partitionsOf(3) });
    expect(assignment).toEqual({
      'm-a': { 'vigil.events.device': [0, 2], 'vigil.events.invocation': [0, 2], 'vigil.events.policy': [0, 2] },
      'm-b': { 'vigil.events.device': [1], 'vigil.events.invocation': [1], 'vigil.events.policy': [1] },
    });
  });

  it('gives one member everything, and three members one partition number each of three', () => {
    expect(numbersPerMember(coPartitionedAssignment({ members: ['only'], partitions: partitionsOf(3) }))).toEqual({ only: [0, 1, 2] });
    expect(numbersPerMember(coPartitionedAssignment({ members: ['c', 'a', 'b'], partitions: partitionsOf(3) }))).toEqual({ a: [0], b: [1], c: [2] });
  });

  it('is the same whatever order the members and partitions come in, and counts a repeated member once', () => {
    const sorted = coPartitionedAssignment({ members: ['m-1', 'm-2', 'm-3'], partitions: partitionsOf(7) });
    const shuffled = coPartitionedAssignment({
      members: ['m-3', 'm-1', 'm-2', 'm-1'],
      partitions: Object.fromEntries([...TOPICS].reverse().map((topic) => [topic, [6, 0, 5, 1, 4, 2, 3]])),
    });
    expect(shuffled).toEqual(sorted);
  });

  it('holds for any members and partition count: every partition of every topic once, co-partitioned, balanced within one', () => {
    const random = seeded(12);
    for (let round = 0; round < 300; round++) {
      const memberCount = 1 + Math.floor(random() * 8);
      const partitionCount = 1 + Math.floor(random() * 24);
      const topicCount = 1 + Math.floor(random() * 4);
      const topics = range(topicCount).map((index) => `topic-${index}`);
      const members = range(memberCount).map(() => `member-${Math.floor(random() * 1e9).toString(36)}`);
      const assignment = coPartitionedAssignment({ members, partitions: partitionsOf(partitionCount, topics) });
      const distinct = new Set(members);
      expect(Object.keys(assignment).sort()).toEqual([...distinct].sort());
      const perMember = numbersPerMember(assignment, topics);
      // Every partition number exactly once (none doubled, none lost) ...
      expect(Object.values(perMember).flat().sort((a, b) => a - b)).toEqual(range(partitionCount));
      // ... and the members' shares differ by at most one partition number.
      const sizes = Object.values(perMember).map((numbers) => numbers.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(Math.max(...sizes)).toBe(Math.ceil(partitionCount / distinct.size));
    }
  });

  it('leaves members past the partition count idle, with no topic', () => {
    const assignment = coPartitionedAssignment({ members: ['a', 'b', 'c', 'd'], partitions: partitionsOf(2) });
    expect(assignment).toEqual({
      a: { 'vigil.events.device': [0], 'vigil.events.invocation': [0], 'vigil.events.policy': [0] },
      b: { 'vigil.events.device': [1], 'vigil.events.invocation': [1], 'vigil.events.policy': [1] },
      c: {},
      d: {},
    });
  });

  it('refuses topics whose partition counts differ, naming each topic and its count', () => {
    const partitions = { 'vigil.events.policy': range(6), 'vigil.events.invocation': range(3), 'vigil.events.device': range(3) };
    const attempt = (): unknown => coPartitionedAssignment({ members: ['a', 'b'], partitions });
    expect(attempt).toThrow(CoPartitioningError);
    expect(attempt).toThrow('vigil.events.device has 3 partitions, vigil.events.invocation has 3 partitions, vigil.events.policy has 6 partitions');
    try {
      attempt();
    } catch (error) {
      expect(error).toMatchObject({ retriable: false, code: 'co_partitioning', partitions: { 'vigil.events.policy': 6, 'vigil.events.invocation': 3, 'vigil.events.device': 3 } });
    }
  });

  it('refuses equal counts numbered differently, and a member that does not read every topic', () => {
    expect(() => coPartitionedAssignment({ members: ['a'], partitions: { x: [0, 1], y: [0, 2] } })).toThrow('not numbered alike: x [0,1], y [0,2]');
    expect(() =>
      coPartitionedAssignment({
        members: ['a', 'b'],
        partitions: partitionsOf(3),
        subscriptions: { a: TOPICS, b: ['vigil.events.policy'] },
      }),
    ).toThrow(`member b reads [vigil.events.policy] but its group reads [${[...TOPICS].sort().join(', ')}]`);
    // The same topics in another order are the same subscription.
    expect(() => coPartitionedAssignment({ members: ['a', 'b'], partitions: partitionsOf(3), subscriptions: { a: TOPICS, b: [...TOPICS].reverse() } })).not.toThrow();
  });

  it('assigns nothing when there is no member or no topic', () => {
    expect(coPartitionedAssignment({ members: [], partitions: partitionsOf(3) })).toEqual({});
    expect(coPartitionedAssignment({ members: ['a'], partitions: {} })).toEqual({ a: {} });
  });
});

describe('checkCoPartitioned', () => {
  it('accepts equal counts (and one topic) and refuses different ones', () => {
    expect(() => checkCoPartitioned({ a: 3, b: 3, c: 3 })).not.toThrow();
    expect(() => checkCoPartitioned({ a: 3 })).not.toThrow();
    expect(() => checkCoPartitioned({ a: 3, b: 4 })).toThrow('a has 3 partitions, b has 4 partitions');
  });
});

/** A cluster with only the metadata an assigner reads. */
function clusterWith(partitions: Record<string, number>): Cluster {
  const metadata = (topic: string): PartitionMetadata[] =>
    range(partitions[topic] ?? 0).map((partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
  return { findTopicPartitionMetadata: metadata } as unknown as Cluster;
}

const silentLogger = (): Logger => {
  const logger: Logger = { info: () => undefined, error: () => undefined, warn: jest.fn(), debug: () => undefined, namespace: () => logger, setLogLevel: () => undefined };
  return logger;
};

/** Members joined with the given subscriptions, as kafkajs hands them to the leader. */
const joined = (subscriptions: Record<string, string[]>): { memberId: string; memberMetadata: Buffer }[] =>
  Object.entries(subscriptions).map(([memberId, topics]) => ({ memberId, memberMetadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) }));

/** Decoded assignments per member. */
const decoded = (assignments: { memberId: string; memberAssignment: Buffer }[]): Record<string, TopicAssignment> =>
  Object.fromEntries(assignments.map(({ memberId, memberAssignment }) => [memberId, AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment ?? {}]));

describe('coPartitionAssigner (the kafkajs assigner)', () => {
  it('announces its protocol with the subscribed topics, and assigns from the cluster metadata', async () => {
    const logger = silentLogger();
    const assigner = coPartitionAssigner({ cluster: clusterWith({ p: 3, i: 3, d: 3 }), groupId: 'g', logger });
    const protocol = assigner.protocol({ topics: ['p', 'i', 'd'] });
    expect(protocol.name).toBe(CO_PARTITION_PROTOCOL);
    expect(AssignerProtocol.MemberMetadata.decode(protocol.metadata)?.topics).toEqual(['p', 'i', 'd']);
    const assignments = decoded(await assigner.assign({ members: joined({ x: ['p', 'i', 'd'], y: ['d', 'i', 'p'] }), topics: ['p', 'i', 'd'] }));
    expect(assignments).toEqual({ x: { d: [0, 2], i: [0, 2], p: [0, 2] }, y: { d: [1], i: [1], p: [1] } });
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('says so when members hold nothing, and rejects topics of different partition counts', async () => {
    const logger = silentLogger();
    const assigner = coPartitionAssigner({ cluster: clusterWith({ p: 1, i: 1 }), groupId: 'g', logger });
    const assignments = decoded(await assigner.assign({ members: joined({ x: ['p', 'i'], y: ['p', 'i'] }), topics: ['p', 'i'] }));
    expect(assignments).toEqual({ x: { i: [0], p: [0] }, y: {} });
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('more members than partitions'), expect.objectContaining({ idle: ['y'] }));
    const uneven = coPartitionAssigner({ cluster: clusterWith({ p: 6, i: 3 }), groupId: 'g', logger });
    await expect(uneven.assign({ members: joined({ x: ['p', 'i'] }), topics: ['p', 'i'] })).rejects.toThrow('i has 3 partitions, p has 6 partitions');
  });

  it('does what kafkajs round robin does not: with two or three members round robin splits partition numbers across members', async () => {
    // Five partitions: round robin happens to keep partition numbers whole when the member count
    // divides the partition count (two members of 2 or 4 partitions, three of 3), not otherwise.
    const cluster = clusterWith(Object.fromEntries(TOPICS.map((topic) => [topic, 5])));
    const logger = silentLogger();
    for (const members of [['a', 'b'], ['a', 'b', 'c']]) {
      const subscriptions = Object.fromEntries(members.map((member) => [member, TOPICS]));
      const roundRobin = decoded(await PartitionAssigners.roundRobin({ cluster, groupId: 'g', logger }).assign({ members: joined(subscriptions), topics: TOPICS }));
      const holders = (assignment: Record<string, TopicAssignment>, topic: string, partition: number): string[] =>
        Object.entries(assignment).flatMap(([member, share]) => ((share[topic] ?? []).includes(partition) ? [member] : []));
      // Round robin: some partition number is held by more than one member across the topics.
      const split = range(5).filter((partition) => new Set(TOPICS.flatMap((topic) => holders(roundRobin, topic, partition))).size > 1);
      expect(split.length).toBeGreaterThan(0);
      const coPartitioned = decoded(await coPartitionAssigner({ cluster, groupId: 'g', logger }).assign({ members: joined(subscriptions), topics: TOPICS }));
      for (const partition of range(5)) expect(new Set(TOPICS.flatMap((topic) => holders(coPartitioned, topic, partition))).size).toBe(1);
    }
  });
});

describe('keying: one key on one partition number of the three family topics', () => {
  it('puts every event of a user, of every family, on the same partition number when the topics have as many partitions', () => {
    const partitioner = Partitioners.DefaultPartitioner();
    const events = mixedHour(Date.parse('2026-03-01T10:00:00Z'));
    for (const partitionCount of [2, 3, 6]) {
      const partitionMetadata = range(partitionCount).map((partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
      const partitionOfUser = new Map<string, Set<number>>();
      const families = new Map<string, Set<string>>();
      for (const event of events) {
        const userId = event.actor.userId;
        if (userId === undefined) continue;
        // The SDK's key (user first), through the SDK's partitioner, with the topic's partition count.
        const partition = partitioner({ topic: `vigil.events.${event.family}`, partitionMetadata, message: { key: partitionKeyOf(event), value: '' } });
        partitionOfUser.set(userId, (partitionOfUser.get(userId) ?? new Set()).add(partition));
        families.set(userId, (families.get(userId) ?? new Set()).add(event.family));
      }
      // The hour has users with events of all three families; each user is on one partition number.
      expect([...families.values()].filter((seen) => seen.size === FAMILIES.length).length).toBeGreaterThan(5);
      for (const [userId, partitions] of partitionOfUser) expect([userId, partitions.size]).toEqual([userId, 1]);
    }
  });
});
