import { KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, logLevel, type Kafka } from 'kafkajs';
import { createConsumerSupervisor, createKafka, createLogger, ensureTopicStates, isExpectedRefusal, kafkaHint, kafkaLineLevel, loadConfig, topicPlans, untilLed, untilServing } from '../../platform';
import { describeTopics } from '../../scripts/topics';

describe('topicPlans', () => {
  it('gives every topic the configured partitions and replication, and no retention by default', () => {
    const config = loadConfig({ VIGIL_TOPIC_PARTITIONS: '6', VIGIL_TOPIC_REPLICATION: '3' });
    const plans = topicPlans(config);
    expect(plans.map((plan) => plan.topic)).toEqual([
      'vigil.events.policy',
      'vigil.events.invocation',
      'vigil.events.device',
      'vigil.deadletter',
      'vigil.detections',
      'vigil.notifications',
      'vigil.notifications.deadletter',
    ]);
    expect(new Set(plans.map((plan) => `${plan.numPartitions}/${plan.replicationFactor}`))).toEqual(new Set(['6/3']));
    const policy = plans.find((plan) => plan.topic === 'vigil.events.policy');
    expect(policy?.configEntries).toEqual([]);
  });

  it('keeps dead letters 30 days at least, and applies VIGIL_TOPIC_RETENTION_MS to the others', () => {
    const month = String(30 * 24 * 3600 * 1000);
    const week = String(7 * 24 * 3600 * 1000);
    const plans = topicPlans(loadConfig({ VIGIL_TOPIC_RETENTION_MS: week }));
    const retention = Object.fromEntries(plans.map((plan) => [plan.topic, plan.configEntries.find((entry) => entry.name === 'retention.ms')?.value]));
    expect(retention['vigil.events.policy']).toBe(week);
    expect(retention['vigil.detections']).toBe(week);
    expect(retention['vigil.deadletter']).toBe(month);
    const longer = String(90 * 24 * 3600 * 1000);
    const kept = topicPlans(loadConfig({ VIGIL_TOPIC_RETENTION_MS: longer })).find((plan) => plan.topic === 'vigil.deadletter');
    expect(kept?.configEntries).toEqual([{ name: 'retention.ms', value: longer }]);
  });

  it('refuses a replication factor or retention out of range, naming the setting', () => {
    expect(() => loadConfig({ VIGIL_TOPIC_REPLICATION: '0' })).toThrow(/VIGIL_TOPIC_REPLICATION/);
    expect(() => loadConfig({ VIGIL_TOPIC_RETENTION_MS: '5' })).toThrow(/VIGIL_TOPIC_RETENTION_MS/);
  });
});

describe('describeTopics', () => {
  it('prints a line per topic and warns of an existing topic with other partitions', () => {
    const lines = describeTopics([
      { topic: 'a.policy', state: 'created', partitions: 3, wantedPartitions: 3 },
      { topic: 'a.device', state: 'existing', partitions: 1, wantedPartitions: 3 },
    ]);
    expect(lines[0]).toMatch(/^a\.policy\s+created\s+3 partitions$/);
    expect(lines[1]).toMatch(/^a\.device\s+existing\s+1 partitions$/);
    expect(lines[2]).toMatch(/^warning: a\.device has 1 partitions, VIGIL_TOPIC_PARTITIONS says 3/);
  });
});

describe('untilLed: a topic just created, until its partitions have leaders', () => {
  const metadata = (partitions: number[]) => ({ topics: [{ name: 't', partitions: partitions.map((leader, partitionId) => ({ partitionId, leader, replicas: [], isr: [], offlineReplicas: [], partitionErrorCode: 0 })) }] });
  const settingUp = (type: string): Error => Object.assign(new Error(type), { type });

  it('waits out the answers a broker gives while the topic is set up, then returns', async () => {
    // The second as kafkajs throws it once its own retries ran out.
    const exhausted = new KafkaJSNumberOfRetriesExceeded(new KafkaJSProtocolError(Object.assign(new Error('There is no leader for this topic-partition'), { type: 'LEADER_NOT_AVAILABLE', code: 5, retriable: true })), { retryCount: 8, retryTime: 100 });
    const answers: (Error | ReturnType<typeof metadata>)[] = [settingUp('UNKNOWN_TOPIC_OR_PARTITION'), exhausted, metadata([1, -1]), metadata([1, 1])];
    let asked = 0;
    const admin = {
      fetchTopicMetadata: () => {
        const answer = answers[asked++];
        return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer ?? metadata([1, 1]));
      },
    };
    expect(await untilLed(admin, [{ topic: 't', numPartitions: 2 }], { everyMs: 1 })).toEqual(new Map([['t', 2]]));
    expect(asked).toBe(4);
    // An existing topic: described is enough, leaders or not.
    asked = 2;
    expect(await untilLed(admin, [{ topic: 't' }], { everyMs: 1, leaders: false })).toEqual(new Map([['t', 2]]));
    expect(asked).toBe(3);
  });

  it('throws any other error at once, and a retriable error naming the topic past its timeout', async () => {
    await expect(untilLed({ fetchTopicMetadata: () => Promise.reject(settingUp('TOPIC_AUTHORIZATION_FAILED')) }, [{ topic: 't' }], { everyMs: 1 })).rejects.toThrow('TOPIC_AUTHORIZATION_FAILED');
    const never = untilLed({ fetchTopicMetadata: () => Promise.reject(settingUp('UNKNOWN_TOPIC_OR_PARTITION')) }, [{ topic: 't' }], { everyMs: 1, timeoutMs: 20 });
    await expect(never).rejects.toMatchObject({ retriable: true, store: 'kafka' });
    await expect(never).rejects.toThrow(/not ready after 20 ms \(UNKNOWN_TOPIC_OR_PARTITION\): t$/);
  });
});

describe('untilServing: a topic whose leaders are known, until they serve its partitions', () => {
  // As kafkajs 2.2.4 surfaces them: "not the leader" thrown at once (its fetchTopicOffsets bails on
  // anything but UNKNOWN_TOPIC_OR_PARTITION), which it retries itself before throwing its retries' error.
  const protocolError = (type: string, code: number, message: string): KafkaJSProtocolError => new KafkaJSProtocolError(Object.assign(new Error(message), { type, code, retriable: true }));
  const notLeader = (): KafkaJSProtocolError => protocolError('NOT_LEADER_FOR_PARTITION', 6, 'This server is not the leader for that topic-partition');
  const unknownExhausted = (): KafkaJSNumberOfRetriesExceeded => new KafkaJSNumberOfRetriesExceeded(protocolError('UNKNOWN_TOPIC_OR_PARTITION', 3, 'This server does not host this topic-partition'), { retryCount: 8, retryTime: 100 });
  const offsets = [{ partition: 0, offset: '0', high: '0', low: '0' }];

  /** An admin that answers each topic's offsets with its own list of failures first. */
  function scripted(failures: Record<string, Error[]>): { admin: { fetchTopicOffsets: (topic: string) => Promise<typeof offsets> }; asked: string[] } {
    const asked: string[] = [];
    return {
      asked,
      admin: {
        fetchTopicOffsets: (topic: string) => {
          asked.push(topic);
          const failure = failures[topic]?.shift();
          return failure ? Promise.reject(failure) : Promise.resolve(offsets);
        },
      },
    };
  }

  it('waits out "not the leader" and an unknown partition, asking again only the topics not serving yet', async () => {
    const { admin, asked } = scripted({ a: [notLeader(), notLeader()], b: [unknownExhausted()], c: [] });
    await untilServing(admin, ['a', 'b', 'c'], { everyMs: 1 });
    expect(asked).toEqual(['a', 'b', 'c', 'a', 'b', 'a']);
  });

  it('throws any other error at once, and a retriable error naming the topics past its timeout', async () => {
    const denied = protocolError('TOPIC_AUTHORIZATION_FAILED', 29, 'Not authorized to access topics');
    await expect(untilServing(scripted({ a: [denied] }).admin, ['a'], { everyMs: 1 })).rejects.toBe(denied);
    const never = untilServing({ fetchTopicOffsets: (topic: string) => (topic === 'b' ? Promise.reject(notLeader()) : Promise.resolve(offsets)) }, ['a', 'b'], { everyMs: 1, timeoutMs: 20 });
    await expect(never).rejects.toMatchObject({ retriable: true, store: 'kafka' });
    await expect(never).rejects.toThrow(/not serving after 20 ms \(NOT_LEADER_FOR_PARTITION\): b$/);
  });
});

describe('isExpectedRefusal: what kafkajs logs as an error but is expected for a moment, and retried', () => {
  it('is "not the leader" of a new topic, a broker just started without its group coordinator, and a rebalance; nothing else', () => {
    expect(isExpectedRefusal('Response ListOffsets(key: 2, version: 4)', { error: 'This server is not the leader for that topic-partition' })).toBe(true);
    // kafkajs 2.2.4's text of GROUP_COORDINATOR_NOT_AVAILABLE and GROUP_LOAD_IN_PROGRESS, as the demo's first start on a fresh broker logged them.
    expect(isExpectedRefusal('Response GroupCoordinator(key: 10, version: 2)', { error: 'The group coordinator is not available', correlationId: 2 })).toBe(true);
    expect(isExpectedRefusal('Response GroupCoordinator(key: 10, version: 2)', { error: "The coordinator is loading and hence can't process requests for this group" })).toBe(true);
    expect(isExpectedRefusal('Response GroupCoordinator(key: 10, version: 2)', { error: 'Not authorized to access group' })).toBe(false);
    expect(isExpectedRefusal('Response Fetch(key: 1, version: 11)', { error: 'The group coordinator is not available' })).toBe(false);
    expect(isExpectedRefusal('Response ListOffsets(key: 2, version: 4)', {})).toBe(false);
    // A rebalance (an instance started or stopped) answers every member's heartbeat so: an error line
    // per member at each deploy. kafkajs 2.2.4's text of REBALANCE_IN_PROGRESS, as an integration run logged it.
    expect(isExpectedRefusal('Response Heartbeat(key: 12, version: 3)', { error: 'The group is rebalancing, so a rejoin is needed', correlationId: 9 })).toBe(true);
    expect(isExpectedRefusal('Response OffsetCommit(key: 8, version: 5)', { error: 'The group is rebalancing, so a rejoin is needed' })).toBe(true);
    // As the fault suite's rebalance logged it, beside Vigil's own warn that the next commit covers it.
    expect(isExpectedRefusal('Response OffsetCommit(key: 8, version: 5)', { error: 'Specified group generation id is not valid', correlationId: 265 })).toBe(true);
    expect(isExpectedRefusal('Response Heartbeat(key: 12, version: 3)', { error: 'The coordinator is not aware of this member' })).toBe(false);
  });
});

describe('kafkaLineLevel: the level a kafkajs line is logged at', () => {
  // A consumer made through a supervisor, as `vigil run` makes every one.
  const supervised = (groupId: string): void => {
    const supervisor = createConsumerSupervisor({ policy: { maxRestarts: 1, windowMs: 1_000, backoff: { initialDelayMs: 1, maxDelayMs: 1 } }, logger: createLogger({ level: 'silent' }) });
    supervisor.kafkaFor('ingest', createKafka(loadConfig({}), createLogger({ level: 'silent' }))).consumer({ groupId });
  };
  const crash = "Crash: KafkaJSProtocolError: The coordinator is loading and hence can't process requests for this group";

  // A broker restart or a coordinator still loading crashes a consumer that the supervisor then
  // restarts: kafkajs's own "Crash:" line was an error each time, paging whoever alerts on errors.
  it("logs a supervised consumer's crash at warn, an expected refusal at debug, and every other error as one", () => {
    supervised('line-level-supervised');
    expect(kafkaLineLevel(logLevel.ERROR, crash, { groupId: 'line-level-supervised', retryCount: 5 })).toBe('warn');
    expect(kafkaLineLevel(logLevel.ERROR, 'Response GroupCoordinator(key: 10, version: 2)', { error: 'The group coordinator is not available' })).toBe('debug');
    expect(kafkaLineLevel(logLevel.ERROR, 'Response SaslAuthenticate(key: 36, version: 1)', { error: 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512' })).toBe('error');
    expect(kafkaLineLevel(logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', { broker: '127.0.0.1:9092' })).toBe('error');
    expect(kafkaLineLevel(logLevel.WARN, 'Crash: ignored at warn anyway', {})).toBe('warn');
    expect(kafkaLineLevel(logLevel.INFO, 'Consumer has joined the group', {})).toBe('debug');
  });

  // `vigil deadletters` reads with a consumer of its own: nothing else reports its crash.
  it("keeps an unsupervised consumer's crash an error", () => {
    expect(kafkaLineLevel(logLevel.ERROR, crash, { groupId: 'line-level-nobody-supervises', retryCount: 0 })).toBe('error');
    expect(kafkaLineLevel(logLevel.ERROR, crash, {})).toBe('error');
  });

  it('is the level createKafka logs at', () => {
    supervised('line-level-logged');
    const lines: { level: number; msg: string }[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) } });
    const kafka = createKafka(loadConfig({}), logger);
    kafka.logger().error('Crash: KafkaJSNumberOfRetriesExceeded: The coordinator is loading', { groupId: 'line-level-logged' });
    kafka.logger().error('Connection error: connect ECONNREFUSED 127.0.0.1:9092', {});
    expect(lines.map(({ level, msg }) => `${level} ${msg}`)).toEqual(['40 Crash: KafkaJSNumberOfRetriesExceeded: The coordinator is loading', '50 Connection error: connect ECONNREFUSED 127.0.0.1:9092']);
  });
});

describe('ensureTopicStates', () => {
  // A SASL_SSL listener reached without KAFKA_TLS drops the connection: "check KAFKA_BROKERS" sent
  // the operator to the wrong setting.
  it('names KAFKA_TLS when a plaintext client found the connection closed, and the address otherwise', async () => {
    const closed = { admin: () => ({ connect: () => Promise.reject(new Error('Closed connection')), disconnect: () => Promise.resolve() }) } as unknown as Kafka;
    await expect(ensureTopicStates(closed, loadConfig({}))).rejects.toThrow(/the broker closed the connection: if its listener takes TLS \(SASL_SSL or SSL\), set KAFKA_TLS=on/);
    expect(kafkaHint(loadConfig({ KAFKA_TLS: 'on' }), 'Closed connection')).toBe('check KAFKA_BROKERS and that Kafka is up');
    expect(kafkaHint(loadConfig({}), 'Connection error: connect ECONNREFUSED 127.0.0.1:9092')).toBe('check KAFKA_BROKERS and that Kafka is up');
  });


  it('returns once the topics it created serve every partition, not as soon as they have leaders; existing ones are not asked', async () => {
    const config = loadConfig({ VIGIL_TOPIC_PARTITIONS: '2' });
    const all = topicPlans(config).map((plan) => plan.topic);
    const existing = config.topics.policy;
    const log: string[] = [];
    // Leaders at once; the invocation topic's leader answers "not the leader" twice more.
    let refusals = 2;
    const admin = {
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      listTopics: () => Promise.resolve([existing]),
      createTopics: ({ topics }: { topics: { topic: string }[] }) => {
        log.push(`create ${topics.length}`);
        return Promise.resolve(true);
      },
      fetchTopicMetadata: ({ topics }: { topics: string[] }) =>
        Promise.resolve({ topics: topics.map((name) => ({ name, partitions: [0, 1].map((partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], offlineReplicas: [], partitionErrorCode: 0 })) })) }),
      fetchTopicOffsets: (topic: string) => {
        if (topic === config.topics.invocation && refusals-- > 0) {
          log.push(`${topic} not serving`);
          return Promise.reject(new KafkaJSProtocolError(Object.assign(new Error('This server is not the leader for that topic-partition'), { type: 'NOT_LEADER_FOR_PARTITION', code: 6, retriable: true })));
        }
        log.push(`${topic} serving`);
        return Promise.resolve([0, 1].map((partition) => ({ partition, offset: '0', high: '0', low: '0' })));
      },
    };
    const states = await ensureTopicStates({ admin: () => admin } as unknown as Kafka, config);
    expect(states.filter((state) => state.state === 'created').map((state) => state.topic)).toEqual(all.filter((topic) => topic !== existing));
    // Every created topic answered its offsets, the invocation topic at its third ask, before the states came back.
    expect(log[0]).toBe(`create ${all.length - 1}`);
    expect(new Set(log.filter((line) => line.endsWith(' serving') && !line.endsWith('not serving')))).toEqual(new Set(all.filter((topic) => topic !== existing).map((topic) => `${topic} serving`)));
    expect(log.filter((line) => line.startsWith(config.topics.invocation))).toEqual([`${config.topics.invocation} not serving`, `${config.topics.invocation} not serving`, `${config.topics.invocation} serving`]);
    expect(log.some((line) => line.startsWith(`${existing} `))).toBe(false);
  });
});

describe("kafkajs's log lines", () => {
  it('keeps a new partition answering "not the leader" to ListOffsets (what untilServing waits out) out of the error log, and every other error in it', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const kafka = createKafka(loadConfig({}), logger);
    kafka.logger().error('Response ListOffsets(key: 2, version: 3)', { error: 'This server is not the leader for that topic-partition' });
    expect(lines).toStrictEqual([]);
    kafka.logger().error('Response Produce(key: 0, version: 7)', { error: 'This server is not the leader for that topic-partition' });
    kafka.logger().error('Response ListOffsets(key: 2, version: 3)', { error: 'The server experienced an unexpected error' });
    expect(lines.map((line) => (JSON.parse(line) as { level: number; msg: string }).msg)).toStrictEqual(['Response Produce(key: 0, version: 7)', 'Response ListOffsets(key: 2, version: 3)']);
  });
});
