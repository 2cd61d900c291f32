/**
 * `vigil adapt`'s consumer group: one per raw topic by default. Two adapters of one format on two
 * topics shared `vigil-adapt-<format>`, and kafkajs's group leader hands out only the topics it
 * subscribes to itself: one topic went unread. The former default's offsets on a topic are taken
 * over, so an upgrade goes on where it was rather than reading the raw topic from its start.
 */
import { randomBytes } from 'node:crypto';
import type { Admin } from 'kafkajs';
import { createAdapt, defaultAdaptGroup, type Adapt } from '../../app';
import { kongRecord, type GatewayCall } from '../../scripts/gateway-records';
import { isolatedConfig, openStack, testLogger, waitFor, type Stack } from '../support/harness';
import { createProducer } from '../../platform';

jest.setTimeout(120_000);

const env = { VIGIL_ADAPT_SERVICE: 'edge-kong-groups', VIGIL_ADAPT_GROUPS: JSON.stringify({ default: 'edge' }) };

const call = (n: number): GatewayCall => ({
  requestId: `${n.toString(16).padStart(8, '0')}${'e'.repeat(24)}`,
  time: new Date(Date.now() - 60_000 + n),
  clientIp: '198.51.100.10',
  method: 'GET',
  uri: `/orders/${n}`,
  status: 200,
  service: 'orders-svc',
  route: { name: 'orders', paths: ['/orders'] },
});

describe('vigil adapt: a consumer group per raw topic', () => {
  let stack: Stack;
  let admin: Admin;
  const run = randomBytes(3).toString('hex');
  const topics = [`it-raw-a-${run}`, `it-raw-b-${run}`, `it-raw-c-${run}`];
  const running: Adapt[] = [];

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ ...env, VIGIL_TOPIC_PARTITIONS: '2' }));
    admin = stack.kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 2, replicationFactor: 1 })) });
    const producer = createProducer(stack.kafka);
    await producer.connect();
    // Six records per topic, three per partition, one message each.
    for (const [position, topic] of topics.entries()) {
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 6 }, (_, n) => ({ partition: n % 2, value: JSON.stringify(kongRecord(call(position * 100 + n))) })) });
    }
    await producer.disconnect();
  });

  afterAll(async () => {
    await Promise.all(running.map((adapt) => adapt.stop()));
    await admin.deleteGroups([...topics.map((topic) => defaultAdaptGroup('kong', topic))]).catch(() => undefined);
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
    await stack.cleanup();
  });

  const start = async (topic: string): Promise<Adapt> => {
    const adapt = createAdapt(stack.config, { format: 'kong', topic, kafka: stack.kafka, logger: testLogger });
    running.push(adapt);
    await adapt.start();
    return adapt;
  };

  it('reads two raw topics of one format with two adapters, each whole, each in a group of its own', async () => {
    const [first, second] = [await start(topics[0] ?? ''), await start(topics[1] ?? '')];
    await waitFor('every message of both topics adapted', () => first.stats().messages === 6 && second.stats().messages === 6, 60_000);
    for (const topic of topics.slice(0, 2)) {
      const group = defaultAdaptGroup('kong', topic);
      expect(group).toBe(`vigil-adapt-kong-${topic}`);
      await waitFor(`${group} committed both partitions`, async () => {
        const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        return (offsets?.partitions ?? []).map(({ offset }) => offset).join(',') === '3,3';
      }, 30_000);
    }
  });

  it('takes over the offsets the former default group committed on its topic, and goes on from there', async () => {
    const topic = topics[2] ?? '';
    // The former default (vigil-adapt-kong) had read two of the three messages of partition 0, and one of partition 1.
    const legacy = `vigil-adapt-kong`;
    await admin.setOffsets({ groupId: legacy, topic, partitions: [{ partition: 0, offset: '2' }, { partition: 1, offset: '1' }] });
    const adapt = await start(topic);
    await waitFor('the rest adapted', async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: defaultAdaptGroup('kong', topic), topics: [topic] });
      return (offsets?.partitions ?? []).map(({ offset }) => offset).join(',') === '3,3';
    }, 60_000);
    // Only what the former group had not read: 1 of partition 0, 2 of partition 1.
    expect(adapt.stats().messages).toBe(3);
  });
});
