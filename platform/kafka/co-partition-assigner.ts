/**
 * A kafkajs partition assigner that co-partitions the topics a group reads, as Kafka Streams does
 * for the input topics of a join: partition N of every subscribed topic goes to the same member.
 *
 * The ingest pipeline aligns event time across the partitions one instance holds
 * (event-time-alignment.ts). Producers key every family's events the same way (user, else
 * consumer, else IP), so with equal partition counts a key's policy, invocation and device events
 * are on the same partition number of the three topics. kafkajs's round-robin assignor deals the
 * topic-partitions out one by one, so with two or three instances one key's families end up on
 * different instances, and no alignment holds between them. This assignor keeps each partition
 * number whole on one instance, so a key's three families are aligned by one instance, exactly
 * as with one instance (docs/scaling.md).
 *
 * Rolling upgrades: kafkajs offers every assigner in `partitionAssigners` and the broker picks the
 * first one all members support, so the ingest consumer lists this one first and round robin
 * second. While a member of an older version is in the group, the group runs round robin (as
 * before); once every member runs this version, the next rebalance is co-partitioned.
 */
import { AssignerProtocol, type Assigner, type GroupMember, type GroupMemberAssignment, type PartitionAssigner } from 'kafkajs';
import { VigilError } from '../errors';

/** The protocol name the group agrees on; {@link coPartitionAssigner} announces it. */
export const CO_PARTITION_PROTOCOL = 'VigilCoPartitionAssigner';

/** The assignment protocol's version (of its metadata, which carries nothing of its own yet). */
const VERSION = 0;

/** Partitions per topic, as kafkajs encodes one member's share. */
export type TopicAssignment = Record<string, number[]>;

/**
 * The topics of a co-partitioned group cannot be co-partitioned: their partition counts differ,
 * or a member does not read all of them. Never retriable: the topics or the members' configuration
 * must change first.
 */
export class CoPartitioningError extends VigilError {
  /** The partitions of each topic, as the assignment found them. */
  readonly partitions: Readonly<Record<string, number>>;

  constructor(message: string, partitions: Readonly<Record<string, number>>) {
    super(message, { code: 'co_partitioning', retriable: false });
    this.partitions = partitions;
  }
}

/** What {@link coPartitionedAssignment} assigns. */
export interface CoPartitionInput {
  /** The members' ids (kafkajs member ids); order does not matter, duplicates count once. */
  members: readonly string[];
  /** Each subscribed topic's partition ids (from the cluster's metadata). */
  partitions: Readonly<Record<string, readonly number[]>>;
  /**
   * The topics each member subscribes to (from its join metadata). A member whose subscription
   * differs from the group's topics is refused. @defaultValue every member reads every topic
   */
  subscriptions?: Readonly<Record<string, readonly string[]>>;
}

/** `a has 3 partitions, b has 6 partitions`, by topic name, for an error message. */
const describeCounts = (counts: Readonly<Record<string, number>>): string =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([topic, count]) => `${topic} has ${count} partition${count === 1 ? '' : 's'}`)
    .join(', ');

/**
 * Checks that the topics can be co-partitioned: every one has the same number of partitions.
 * @throws CoPartitioningError naming each topic and its count when they differ
 */
export function checkCoPartitioned(partitionCounts: Readonly<Record<string, number>>): void {
  const counts = new Set(Object.values(partitionCounts));
  if (counts.size <= 1) return;
  throw new CoPartitioningError(
    `the event topics must have the same number of partitions, so that one key's events of every family are on the same partition number and one instance holds them all: ${describeCounts(partitionCounts)} (give them the same count; see docs/scaling.md)`,
    partitionCounts,
  );
}

/**
 * The co-partitioned assignment: partition number N of every topic goes to the same member, the
 * partition numbers dealt in order over the members sorted by id (number i to member i mod the
 * member count). Each member gets ⌊P/M⌋ or ⌈P/M⌉ partition numbers; members past the partition
 * count get none. The same input always gives the same assignment, whatever the order it came in.
 *
 * @returns each member's topics and partitions (every member is listed, an idle one with no topic)
 * @throws CoPartitioningError when the topics' partitions differ, or a member does not read every topic
 */
export function coPartitionedAssignment(input: CoPartitionInput): Record<string, TopicAssignment> {
  const members = [...new Set(input.members)].sort();
  const topics = Object.keys(input.partitions).sort();
  const assignment: Record<string, TopicAssignment> = Object.fromEntries(members.map((member) => [member, {}]));
  if (members.length === 0 || topics.length === 0) return assignment;

  const partitionIds = (topic: string): number[] => [...new Set(input.partitions[topic] ?? [])].sort((a, b) => a - b);
  const counts = Object.fromEntries(topics.map((topic) => [topic, partitionIds(topic).length]));
  checkCoPartitioned(counts);
  // Equal counts with other ids (a topic's metadata missing a partition) are not co-partitioned either.
  const numbers = partitionIds(topics[0] ?? '');
  const mismatched = topics.filter((topic) => partitionIds(topic).join(',') !== numbers.join(','));
  if (mismatched.length > 0) {
    throw new CoPartitioningError(
      `the event topics' partitions are not numbered alike: ${topics.map((topic) => `${topic} [${partitionIds(topic).join(',')}]`).join(', ')}`,
      counts,
    );
  }

  if (input.subscriptions) {
    for (const member of members) {
      const subscribed = [...new Set(input.subscriptions[member] ?? [])].sort();
      if (subscribed.join('\n') !== topics.join('\n')) {
        throw new CoPartitioningError(
          `member ${member} reads [${subscribed.join(', ')}] but its group reads [${topics.join(', ')}]: a co-partitioned group's members must read the same topics (one configuration for every instance)`,
          counts,
        );
      }
    }
  }

  numbers.forEach((partition, position) => {
    const member = members[position % members.length];
    const share = member === undefined ? undefined : assignment[member];
    if (!share) return;
    for (const topic of topics) (share[topic] ??= []).push(partition);
  });
  return assignment;
}

/**
 * {@link coPartitionedAssignment} as a kafkajs assigner: list it in a consumer's
 * `partitionAssigners`, ahead of round robin (see the module comment for upgrades).
 */
export const coPartitionAssigner: PartitionAssigner = ({ cluster, logger }) => {
  const assigner: Assigner = {
    name: CO_PARTITION_PROTOCOL,
    version: VERSION,
    assign({ members, topics }): Promise<GroupMemberAssignment[]> {
      // A refusal is a rejected promise, as kafkajs expects of an assigner.
      return Promise.resolve().then(() => assignFrom(members, topics));
    },
    protocol({ topics }) {
      return { name: CO_PARTITION_PROTOCOL, metadata: AssignerProtocol.MemberMetadata.encode({ version: VERSION, topics, userData: Buffer.alloc(0) }) };
    },
  };

  function assignFrom(members: readonly GroupMember[], topics: readonly string[]): GroupMemberAssignment[] {
    const partitions = Object.fromEntries(topics.map((topic) => [topic, cluster.findTopicPartitionMetadata(topic).map((metadata) => metadata.partitionId)]));
    const subscriptions = Object.fromEntries(
      members.map(({ memberId, memberMetadata }) => [memberId, AssignerProtocol.MemberMetadata.decode(memberMetadata)?.topics ?? []]),
    );
    const assignment = coPartitionedAssignment({ members: members.map(({ memberId }) => memberId), partitions, subscriptions });
    const idle = Object.entries(assignment).filter(([, share]) => Object.keys(share).length === 0);
    if (idle.length > 0) {
      logger.warn('more members than partitions: some members hold no partition', { members: members.length, partitions: partitions[topics[0] ?? '']?.length ?? 0, idle: idle.map(([member]) => member) });
    }
    return Object.entries(assignment).map(([memberId, share]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: VERSION, assignment: share, userData: Buffer.alloc(0) }),
    }));
  }
  return assigner;
};
