import { createHash } from 'node:crypto';
import { toDeadLetterMessage, type IngestPipeline } from '../../ingest';
import type { Vigil } from '../../app';
import { listDeadLetters, parseDeadLetterArgs, readDeadLetters, redriveDeadLetters, runDeadLetters, type Selection } from '../../scripts/deadletters';
import { countEvents, isolatedConfig, openStack, testLogger, vigilOn, waitFor, type Stack } from '../support/harness';
import { testProducer } from '../support/produce';

/** A valid policy event padded with labels to about 3.3 KB: over a 2048-byte limit, under the default one. */
const largePolicy = (id: string): string =>
  JSON.stringify({
    id,
    schemaVersion: 1,
    family: 'policy',
    time: new Date().toISOString(),
    source: { service: 'redrive-gateway', kind: 'gateway' },
    actor: { userId: 'u-redrive', consumerId: 'partner-redrive' },
    client: { ip: '81.2.69.142' },
    policy: { kind: 'authn', name: 'basic-auth', outcome: 'fail', reason: 'invalid_credentials', group: 'legacy', resource: { api: 'legacy-v1', method: 'POST', path: '/v1/login' } },
    labels: Object.fromEntries(Array.from({ length: 12 }, (_, n) => [`pad_${n}`, 'x'.repeat(250)])),
  });

const LARGE_IDS = ['evt-redrive-1', 'evt-redrive-2', 'evt-redrive-3'];
const idsQuery = { terms: { 'event.id': LARGE_IDS } };

describe('vigil deadletters against the real Kafka and Elasticsearch', () => {
  let stack: Stack;
  let vigil: Vigil | undefined;
  const lines: string[] = [];
  const context = (): Parameters<typeof listDeadLetters>[0] => ({ config: stack.config, kafka: stack.kafka, logger: testLogger, out: (line: string) => lines.push(line) });
  const run = async (...args: string[]): Promise<string[]> => {
    lines.length = 0;
    expect(await runDeadLetters(args, context())).toBe(0);
    return [...lines];
  };
  const pipeline = (): IngestPipeline => vigil?.pipeline as IngestPipeline;
  const sourceEnds = async (): Promise<string> => {
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      return JSON.stringify(await admin.fetchTopicOffsets(stack.config.topics.policy));
    } finally {
      await admin.disconnect();
    }
  };

  beforeAll(async () => {
    // A limit that refuses the large events: the "cause" a later run fixes by raising it.
    stack = openStack(isolatedConfig({ VIGIL_MAX_MESSAGE_BYTES: '2048' }));
    vigil = vigilOn(stack);
    await vigil.start();
    const producer = testProducer(stack.kafka);
    await producer.connect();
    await producer.send({
      topic: stack.config.topics.policy,
      acks: -1,
      messages: [
        ...LARGE_IDS.map((id) => ({ key: `key-${id}`, value: largePolicy(id) })),
        { key: 'key-broken-1', value: '{"id": "evt-broken", "family": "policy",' },
        { key: 'key-broken-2', value: 'user=u-1042\u0000action=login' },
      ],
    });
    await producer.disconnect();
    await waitFor('5 dead letters', () => pipeline().stats().deadLettered >= 5);
  });

  afterAll(async () => {
    await vigil?.stop();
    await stack.cleanup();
  });

  it('lists the dead-letter topic by reason, reading to its end and leaving no group behind', async () => {
    const summary = await listDeadLetters(context(), { reasons: [], offsets: [] });
    expect(summary.total).toBe(5);
    expect(summary.byReason.map(({ reasonCode, count, distinct, sourceTopics, redriven }) => ({ reasonCode, count, distinct, sourceTopics, redriven }))).toEqual([
      { reasonCode: 'too_large', count: 3, distinct: 3, sourceTopics: { [stack.config.topics.policy]: 3 }, redriven: 0 },
      { reasonCode: 'not_json', count: 2, distinct: 2, sourceTopics: { [stack.config.topics.policy]: 2 }, redriven: 0 },
    ]);
    const printed = await run('list');
    expect(printed[0]).toContain(`${stack.config.topics.deadLetter}: 5 dead letters`);
    expect(printed.find((line) => line.trim().startsWith('too_large'))).toMatch(/too_large\s+3\s+3\s/);

    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.listGroups();
      expect(groups.filter(({ groupId }) => groupId.startsWith('vigil-deadletters-'))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  it('shows the chosen dead letters with their headers and escaped original bytes', async () => {
    const printed = await run('show', '--reason', 'not_json', '--max-bytes', '16');
    expect(printed.filter((line) => line.startsWith(`${stack.config.topics.deadLetter}/`))).toHaveLength(2);
    expect(printed).toContain(`  key            key-broken-2`);
    // The NUL is escaped, and the value is cut at 16 bytes with the rest counted.
    expect(printed).toContain(`  value          (24 bytes) user=u-1042\\u0000acti… (8 more bytes)`);
    expect(printed.some((line) => line.startsWith('  reason         not_json: not valid JSON'))).toBe(true);
    expect(printed.some((line) => line.startsWith(`  source         ${stack.config.topics.policy} partition `))).toBe(true);
    expect(printed.at(-1)).toBe('2 of 2 selected dead letters shown');
  });

  it('redrives once the cause is fixed: indexed exactly once, a second redrive is a duplicate, a dry run sends nothing', async () => {
    // The cause is fixed: the pipeline runs again, same group, with the default limit.
    await vigil?.stop();
    const fixed = { ...stack.config, limits: { ...stack.config.limits, maxMessageBytes: 256 * 1024 } };
    vigil = vigilOn(stack, {}, fixed);
    await vigil.start();
    const selection: Selection = parseDeadLetterArgs(['show', '--reason', 'too_large']).selection;

    const before = await sourceEnds();
    expect(await run('redrive', '--reason', 'too_large', '--dry-run')).toEqual(['redrive (dry run): 3 selected, 0 sent (3 would be sent), 0 skipped']);
    expect(await sourceEnds()).toBe(before);

    const first = await redriveDeadLetters(context(), selection, { dryRun: false, force: false });
    expect(first).toMatchObject({ selected: 3, sent: 3, skipped: [], sentByTopic: { [stack.config.topics.policy]: 3 } });
    await waitFor('the 3 redriven events indexed', () => pipeline().stats().indexed >= 3);
    expect(await countEvents(stack, idsQuery)).toBe(3);

    expect(await run('redrive', '--reason', 'too_large')).toEqual(['redrive: 3 selected, 3 sent, 0 skipped', `  sent 3 to ${stack.config.topics.policy}`]);
    await waitFor('the second redrive counted as duplicates', () => pipeline().stats().duplicates >= 3);
    expect(pipeline().stats()).toMatchObject({ indexed: 3, duplicates: 3, deadLettered: 0 });
    expect(await countEvents(stack, idsQuery)).toBe(3);
  });

  it('marks a redriven message that fails again, so its dead letter carries the trail', async () => {
    const report = await redriveDeadLetters(context(), { reasons: ['not_json'], offsets: [] }, { dryRun: false, force: false });
    expect(report).toMatchObject({ selected: 2, sent: 2 });
    await waitFor('the 2 redriven broken messages dead-lettered again', () => pipeline().stats().deadLettered >= 2);

    const { entries } = await readDeadLetters(context(), { reasons: ['not_json'], offsets: [] });
    expect(entries).toHaveLength(4);
    const again = entries.filter(({ record }) => record.redrive !== undefined);
    expect(again).toHaveLength(2);
    const originals = entries.filter(({ record }) => record.redrive === undefined);
    expect(again.map(({ record }) => record.redrive).sort((a, b) => (a?.from ?? '').localeCompare(b?.from ?? ''))).toEqual(
      originals.map(({ position }) => ({ from: `${position.topic}/${position.partition}/${position.offset}`, count: 1 })).sort((a, b) => a.from.localeCompare(b.from)),
    );
    // The original keys travelled with the bytes.
    expect(again.map(({ record }) => record.originalKey?.toString()).sort()).toEqual(['key-broken-1', 'key-broken-2']);
    expect((await listDeadLetters(context(), { reasons: ['not_json'], offsets: [] })).byReason).toMatchObject([{ reasonCode: 'not_json', count: 4, distinct: 4, redriven: 2 }]);

    // Chosen by position: the trail shows in `show`.
    const position = again[0]?.position;
    const printed = await run('show', '--offset', `${position?.topic}:${position?.partition}:${position?.offset}`);
    expect(printed.find((line) => line.startsWith('  redriven'))).toBe(`  redriven       1 time, last from ${again[0]?.record.redrive?.from}`);
    expect(printed.at(-1)).toBe('1 of 1 selected dead letters shown');
  });
});

/** A valid policy event of about 24 KB: over the 16 KB a dead letter keeps of a too_large message. */
const hugePolicy = (id: string): string =>
  JSON.stringify({
    ...(JSON.parse(largePolicy(id)) as Record<string, unknown>),
    labels: Object.fromEntries(Array.from({ length: 96 }, (_, n) => [`pad_${n}`, 'y'.repeat(250)])),
  });

describe('a too_large message: its dead letter keeps its first bytes, redrive reads it whole from its source', () => {
  let stack: Stack;
  let vigil: Vigil | undefined;
  const context = (): Parameters<typeof listDeadLetters>[0] => ({ config: stack.config, kafka: stack.kafka, logger: testLogger, out: () => undefined });
  const pipeline = (): IngestPipeline => vigil?.pipeline as IngestPipeline;
  const HUGE = ['evt-huge-kept', 'evt-huge-gone'];
  const produced = HUGE.map((id) => Buffer.from(hugePolicy(id)));

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_MAX_MESSAGE_BYTES: '2048' }));
    vigil = vigilOn(stack);
    await vigil.start();
    const producer = testProducer(stack.kafka);
    await producer.connect();
    // One per partition, so retention can take one away and leave the other.
    await producer.send({ topic: stack.config.topics.policy, acks: -1, messages: HUGE.map((id, partition) => ({ partition, key: id, value: produced[partition] ?? null })) });
    await producer.disconnect();
    await waitFor('2 dead letters', () => pipeline().stats().deadLettered >= 2);
  });

  afterAll(async () => {
    await vigil?.stop();
    await stack.cleanup();
  });

  // The producer does not create topics: a raw topic deleted since (or never made) failed the run
  // after its earlier batches had gone, with no report.
  it('skips a dead letter whose source topic does not exist, saying so, in a dry run too', async () => {
    const gone = `${stack.config.indices.prefix}.raw-gone`;
    const producer = testProducer(stack.kafka);
    await producer.connect();
    await producer.send({
      topic: stack.config.topics.deadLetter,
      acks: -1,
      messages: [toDeadLetterMessage({ reasonCode: 'adapter_unmapped', reason: 'record 0: no group', topic: gone, partition: 0, offset: '7', value: Buffer.from('{"request":{}}'), originalKey: null }, new Date())],
    });
    await producer.disconnect();
    for (const dryRun of [true, false]) {
      const report = await redriveDeadLetters(context(), { reasons: ['adapter_unmapped'], offsets: [] }, { dryRun, force: false, rawTopics: [gone] });
      expect(report).toMatchObject({ selected: 1, sent: 0, wouldSend: 0 });
      expect(report.skipped.map(({ reason, detail }) => [reason, detail])).toEqual([['topic_missing', `topic "${gone}" does not exist (deleted, or never created): create it, then redrive again`]]);
    }
  });

  it('keeps 16 KB of each, with the size and SHA-256 of the whole, and says so in show', async () => {
    const { entries } = await readDeadLetters(context(), { reasons: ['too_large'], offsets: [] });
    expect(entries).toHaveLength(2);
    for (const { record } of entries) {
      const whole = produced[record.partition] ?? Buffer.alloc(0);
      expect(whole.length).toBeGreaterThan(20_000);
      expect(record.value).toStrictEqual(whole.subarray(0, 16 * 1024));
      expect(record.truncated).toStrictEqual({ bytes: whole.length, sha256: createHash('sha256').update(whole).digest('hex') });
    }
    const lines: string[] = [];
    expect(await runDeadLetters(['show', '--reason', 'too_large'], { ...context(), out: (line) => lines.push(line) })).toBe(0);
    expect(lines.filter((line) => line.startsWith('  original       '))).toHaveLength(2);
    expect(lines.find((line) => line.startsWith('  original       '))).toMatch(/^ {2}original {7}\d+ bytes, SHA-256 [0-9a-f]{64}; the dead letter keeps the first 16384, and redrive reads the whole message from its source$/);
  });

  it('redrives the one its source still holds, and skips the one retention deleted, saying why', async () => {
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      // Retention takes partition 1's message away (everything below its end offset).
      const offsets = await admin.fetchTopicOffsets(stack.config.topics.policy);
      const end = offsets.find(({ partition }) => partition === 1)?.high ?? '0';
      await admin.deleteTopicRecords({ topic: stack.config.topics.policy, partitions: [{ partition: 1, offset: end }] });
    } finally {
      await admin.disconnect();
    }
    await vigil?.stop();
    vigil = vigilOn(stack, {}, { ...stack.config, limits: { ...stack.config.limits, maxMessageBytes: 256 * 1024 } });
    await vigil.start();

    const report = await redriveDeadLetters(context(), { reasons: ['too_large'], offsets: [] }, { dryRun: false, force: false });
    expect(report).toMatchObject({ selected: 2, sent: 1, sentByTopic: { [stack.config.topics.policy]: 1 } });
    expect(report.skipped).toHaveLength(1);
    expect(report.skipped[0]?.reason).toBe('original_unavailable');
    expect(report.skipped[0]?.detail).toMatch(new RegExp(`^${stack.config.topics.policy.replace(/\./g, '\\.')}:1:\\d+ no longer holds the message \\(retention deleted it\\); the dead letter keeps only the first 16384 of its \\d+ bytes$`));
    // From the command line, that is a redrive to act on: exit 1. (The one its source holds is sent
    // again: a redriven event indexed twice is one document.)
    const printed: string[] = [];
    expect(await runDeadLetters(['redrive', '--reason', 'too_large'], { ...context(), out: (line) => printed.push(line) })).toBe(1);
    expect(printed[0]).toBe('redrive: 2 selected, 1 sent, 1 skipped');

    await waitFor('the kept one indexed', () => pipeline().stats().indexed >= 1);
    expect(await countEvents(stack, { terms: { 'event.id': HUGE } })).toBe(1);
    expect(await countEvents(stack, { term: { 'event.id': 'evt-huge-kept' } })).toBe(1);
    expect(pipeline().stats()).toMatchObject({ indexed: 1, deadLettered: 0 });
  });
});
