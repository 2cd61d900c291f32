import { AssignerProtocol } from 'kafkajs';
import { CO_PARTITION_PROTOCOL, ensureTopics, retry } from '../../platform';
import type { Detection } from '../../schemas';
import type { Vigil } from '../../app';
import { indexedIncidents, isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';
import { mixedHour, produceEvents } from '../support/mixed-hour';

/**
 * Issue 15 (with one or several instances) and issue 12 (two instances: identical detection ids
 * to one instance on the same input). The same hour of mixed traffic (travellers, a new device then
 * a payment, a brute force then a success, credential stuffing and a flood on one endpoint) is read
 * by one, two and three `vigil run` instances (composition roots, ingest and alerting) in one
 * group; each run has its own topics, groups, Redis prefix and indices.
 *
 * - Live (each minute of the hour produced once the one before is consumed, the order a live run
 *   sees): the same detections per rule, the same detection ids, and the same incidents (id,
 *   group, rules, detection count, status).
 * - As a backlog (the whole hour produced once every instance joined): the same detection ids and
 *   the same incidents.
 * Every run: a co-partitioned group, each detection produced by one instance once, nothing late.
 *
 * The rules grouped by user are the rules that combine families, and user is the key producers
 * partition by, so co-partitioning gives one instance all of a user's events. Rules grouped by IP
 * or endpoint read partitions that several instances hold; the instances keep within the skew bound
 * of one another through the shared watermark in Redis (docs/scaling.md), and those rules' ids do
 * not depend on the order within it either. The windowed rules among them (threshold, cardinality,
 * sequence) name a detection by rule, key and window period, not by the events their state held
 * when they fired (a credential stuffing's id used to change with the instances' relative pace),
 * and match rules by their event: their ids are compared too, and so are the surge rules' since
 * surgeTick version 5: a minute meets the baseline of the minutes up to six before it (complete
 * within the allowed lateness, whatever the order), a count or distinct rule fires as its minute
 * crosses, and the flood, error and latency rules judge a minute once it is complete (the
 * lateness passed it). That holds as long as the instances stay within the allowed lateness (5
 * minutes of event time) of one another for an endpoint: an event behind that is too late for
 * the key's state, counted per rule, not in the minute (docs/event-time.md).
 *
 * Five partitions per topic: kafkajs's round robin happens to keep partition numbers whole when the
 * member count divides the partition count (two members of 2 or 4 partitions, three of 3); with 5
 * it would split a user's three families across instances, for two and for three members.
 */

const PARTITIONS = 5;
const START = Date.parse('2026-03-01T10:00:00Z');
const EVENTS = mixedHour(START);

/**
 * Creates topics, again if need be. On a loaded shared broker, waiting for new topics' leaders
 * may meet "does not host this topic-partition" (kafkajs waits out only LEADER_NOT_AVAILABLE);
 * creating is idempotent.
 */
function creatingTopics(create: () => Promise<unknown>): Promise<unknown> {
  return retry(create, { retries: 4, initialDelayMs: 500, shouldRetry: (error) => (error as { type?: unknown }).type === 'UNKNOWN_TOPIC_OR_PARTITION' });
}

/** What one run leaves to compare. */
interface Run {
  instances: number;
  /** Every detection id, with how many times the instances produced it. */
  produced: Map<string, number>;
  detections: Map<string, Detection>;
  /** The group's protocol and each member's partition numbers of each family topic. */
  protocol: string;
  shares: Record<string, number[]>[];
  late: number;
  incidents: string[];
}

/** The group's protocol and members' assignments, once it is stable with `members` members that all hold something or the partitions ran out. */
async function stableGroup(stack: Stack, groupId: string, members: number): Promise<{ protocol: string; shares: Record<string, number[]>[] }> {
  const admin = stack.kafka.admin();
  await admin.connect();
  try {
    let found: { protocol: string; shares: Record<string, number[]>[] } | undefined;
    await waitFor(`group ${groupId} stable with ${members} members`, async () => {
      const { groups } = await admin.describeGroups([groupId]);
      const group = groups[0];
      if (!group || group.state !== 'Stable' || group.members.length !== members) return false;
      const shares = group.members.map((member) => AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment ?? {});
      const held = shares.reduce((sum, share) => sum + Object.values(share).reduce((count, partitions) => count + partitions.length, 0), 0);
      if (held === 0) return false;
      found = { protocol: group.protocol, shares };
      return true;
    });
    if (!found) throw new Error(`group ${groupId} never settled`);
    return found;
  } finally {
    await admin.disconnect();
  }
}

/**
 * `instances` pipelines in one group over the hour. All join first (the group settles with every
 * instance holding its share), then the hour is produced at once: a backlog for every instance, read
 * as fast as each goes, with no rebalance in the middle.
 */
async function run(instances: number, mode: 'live' | 'backlog'): Promise<Run> {
  const stack = openStack(isolatedConfig({ VIGIL_TOPIC_PARTITIONS: String(PARTITIONS) }));
  const produced = new Map<string, number>();
  const detections = new Map<string, Detection>();
  const vigils: Vigil[] = [];
  try {
    await creatingTopics(() => ensureTopics(stack.kafka, stack.config));
    for (let instance = 0; instance < instances; instance++) {
      vigils.push(
        vigilOn(stack, {
          roles: ['ingest', 'alerting'],
          onDetections: (found) => {
            for (const detection of found) {
              produced.set(detection.id, (produced.get(detection.id) ?? 0) + 1);
              detections.set(detection.id, detection);
            }
          },
        }),
      );
    }
    await Promise.all(vigils.map((vigil) => vigil.start()));
    const { protocol, shares } = await stableGroup(stack, stack.config.consumerGroup, instances);
    await stableGroup(stack, stack.config.alerting.group, instances);

    const consumed = (): number => vigils.reduce((sum, vigil) => sum + (vigil.stats().ingest?.consumed ?? 0), 0);
    if (mode === 'backlog') {
      await produceEvents(stack.kafka, stack.config, EVENTS);
    } else {
      // One clock minute at a time (the surge rules' buckets), each consumed before the next is produced.
      let produced = 0;
      for (let minute = 0; produced < EVENTS.length; minute++) {
        const end = START + (minute + 1) * 60_000;
        const slice = EVENTS.slice(produced).filter((event) => Date.parse(event.time) < end);
        if (slice.length === 0) continue;
        await produceEvents(stack.kafka, stack.config, slice);
        produced += slice.length;
        await waitFor(`${produced} events consumed by ${instances} instance(s), live`, () => consumed() >= produced, 60_000);
      }
    }
    await waitFor(`${EVENTS.length} events consumed by ${instances} instance(s) (${mode})`, () => consumed() >= EVENTS.length, 180_000);
    // Every detection read by an alerter, then released (500 ms of lateness when nothing more arrives) and folded.
    const folded = (): number => vigils.reduce((sum, vigil) => sum + (vigil.alerter?.stats().detections ?? 0), 0);
    await waitFor(`the alerters read every detection (${instances} instance(s))`, () => folded() >= detections.size, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const late = vigils.reduce((sum, vigil) => sum + (vigil.stats().ingest?.engine?.late ?? 0), 0);
    return { instances, produced, detections, protocol, shares, late, incidents: await indexedIncidents(stack) };
  } finally {
    await Promise.all(vigils.map((vigil) => vigil.stop()));
    await stack.cleanup();
  }
}

/**
 * Every detection, or only those whose ids do not depend on the instances' relative pace: the
 * rules grouped by user (the key producers partition by), and the windowed, match and surge rules
 * whatever their key (named by rule, key and window period or bucket, or by their event).
 */
type Scope = 'all' | 'deterministic';
const PACE_FREE_TYPES = new Set(['threshold', 'cardinality', 'sequence', 'match', 'surge']);
const inScope = (detection: Detection, scope: Scope): boolean =>
  scope === 'all' || Object.keys(detection.key).join() === 'actor.userId' || PACE_FREE_TYPES.has(detection.ruleType);

/** Detection ids, each after its rule's id, so a difference names the rule. */
const ids = (run: Run, scope: Scope = 'all'): string[] =>
  [...run.detections.values()]
    .filter((detection) => inScope(detection, scope))
    .map((detection) => `${detection.ruleId} ${detection.id}`)
    .sort();

/** Rule ids with their detections' count, for a readable failure. */
const perRule = (run: Run, scope: Scope = 'all'): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const detection of run.detections.values()) if (inScope(detection, scope)) counts[detection.ruleId] = (counts[detection.ruleId] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
};

/** What every run must show: a co-partitioned group, each detection produced once, nothing late. */
function expectCoPartitionedAndOnce(each: Run): void {
  expect([each.instances, each.protocol]).toEqual([each.instances, CO_PARTITION_PROTOCOL]);
  const numbers = partitionNumbers(each);
  expect(numbers.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
  expect(numbers.filter((held) => held.length > 0)).toHaveLength(each.instances);
  expect([each.instances, [...each.produced.values()].filter((times) => times > 1).length, each.late]).toEqual([each.instances, 0, 0]);
}

/** Each member's partition numbers, checking that it holds the same numbers of every family topic. */
function partitionNumbers(run: Run): number[][] {
  return run.shares.map((share) => {
    const lists = Object.values(share).map((partitions) => [...partitions].sort((a, b) => a - b).join(','));
    expect(new Set(lists).size).toBeLessThanOrEqual(1);
    return (Object.values(share)[0] ?? []).slice().sort((a, b) => a - b);
  });
}

describe('one, two and three instances give the same answers (issues 15 and 12)', () => {
  it('live: the same detections per rule, the same ids of the rules grouped by user and of the windowed, match and surge rules, none doubled, and the same incidents, with 1, 2 and 3 instances in one group', async () => {
    const runs: Run[] = [];
    for (const instances of [1, 2, 3]) runs.push(await run(instances, 'live'));
    const [one, two, three] = runs as [Run, Run, Run];

    // The hour holds what it was built to: the stateful rules fired, across families and not.
    expect(Object.keys(perRule(one))).toEqual(
      expect.arrayContaining(['impossible-travel', 'new-device-for-user', 'new-device-then-sensitive-write', 'account-takeover-sequence', 'authn-failures-per-ip', 'credential-stuffing', 'request-flood-per-endpoint']),
    );
    runs.forEach(expectCoPartitionedAndOnce);
    // Per rule first, so a difference names the rule; then the ids; then the incidents.
    expect(perRule(two)).toEqual(perRule(one));
    expect(perRule(three)).toEqual(perRule(one));
    expect(ids(two, 'deterministic')).toEqual(ids(one, 'deterministic'));
    expect(ids(three, 'deterministic')).toEqual(ids(one, 'deterministic'));
    expect(one.incidents.length).toBeGreaterThanOrEqual(3);
    // The same incidents, ids included (an alert is named after its group and first detection, and
    // every detection id is compared above: the default rules' are all pace-free).
    expect(ids(one, 'deterministic')).toEqual(ids(one, 'all'));
    expect(two.incidents).toEqual(one.incidents);
    expect(three.incidents).toEqual(one.incidents);
  }, 900_000);

  it('from a backlog: the same detection ids of the rules grouped by user (those that combine families) and of the windowed, match and surge rules, none doubled, with 1, 2 and 3 instances', async () => {
    const runs: Run[] = [];
    for (const instances of [1, 2, 3]) runs.push(await run(instances, 'backlog'));
    const [one, two, three] = runs as [Run, Run, Run];
    expect(Object.keys(perRule(one, 'deterministic'))).toEqual(
      expect.arrayContaining(['impossible-travel', 'new-country-for-user', 'new-device-for-user', 'new-device-then-sensitive-write', 'credential-stuffing', 'authn-failures-per-ip', 'account-takeover-sequence', 'request-flood-per-endpoint']),
    );
    runs.forEach(expectCoPartitionedAndOnce);
    expect(perRule(two, 'deterministic')).toEqual(perRule(one, 'deterministic'));
    expect(perRule(three, 'deterministic')).toEqual(perRule(one, 'deterministic'));
    expect(ids(two, 'deterministic')).toEqual(ids(one, 'deterministic'));
    expect(ids(three, 'deterministic')).toEqual(ids(one, 'deterministic'));
    expect(ids(one, 'deterministic')).toEqual(ids(one, 'all'));
    expect(one.incidents.length).toBeGreaterThanOrEqual(3);
    expect(two.incidents).toEqual(one.incidents);
    expect(three.incidents).toEqual(one.incidents);
  }, 900_000);
});

describe('event topics of different partition counts', () => {
  it('refuse to start the ingest pipeline, naming each topic and its count', async () => {
    const stack = openStack(isolatedConfig({ VIGIL_TOPIC_PARTITIONS: '3' }));
    const { policy, invocation, device } = stack.config.topics;
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const topics = [
        { topic: policy, numPartitions: 3 },
        { topic: invocation, numPartitions: 2 },
        { topic: device, numPartitions: 3 },
      ];
      await creatingTopics(() => admin.createTopics({ waitForLeaders: true, topics }));
    } finally {
      await admin.disconnect();
    }
    const vigil = vigilOn(stack);
    try {
      await expect(vigil.start()).rejects.toThrow(`${device} has 3 partitions, ${invocation} has 2 partitions, ${policy} has 3 partitions`);
    } finally {
      await vigil.stop();
      await stack.cleanup();
    }
  }, 120_000);
});
