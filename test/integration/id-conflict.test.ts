import { fromDeadLetterMessage, toEventDocument } from '../../ingest';
import { eventIndexName, eventSchema, indexNames, type EventDocument } from '../../schemas';
import type { Vigil } from '../../app';
import { countEvents, readTopic, waitFor, vigilOn, withVigil } from '../support/harness';
import { testProducer } from '../support/produce';

const time = new Date().toISOString();
const policy = (id: string, outcome: 'pass' | 'fail'): Record<string, unknown> => ({
  id,
  schemaVersion: 1,
  family: 'policy',
  time,
  source: { service: 'conflict-gateway', kind: 'gateway' },
  actor: { userId: 'u-1' },
  policy: { kind: 'authn', name: 'basic-auth', outcome, group: 'legacy', resource: { api: 'legacy-v1', method: 'POST', path: '/v1/login' } },
});

/** The same content as `policy(id, outcome)`, other bytes: keys reversed, defaults spelled out. */
const resent = (id: string, outcome: 'pass' | 'fail'): string => {
  const event = { ...policy(id, outcome), correlation: {}, client: {} };
  return JSON.stringify(Object.fromEntries(Object.entries(event).reverse()), null, 2);
};

describe('same id, other content: an id conflict, never a dropped event', () => {
  const run = withVigil();

  it('dead-letters the second event of an id with other content as id_conflict, keeps a redelivery a duplicate, and a redone run decides the same', async () => {
    const { config, elasticsearch, kafka } = run.stack;
    // A document indexed before content hashes existed (event.original was always kept then):
    // the hash of its event.original counts.
    const legacy = eventSchema.parse(policy('evt-conflict-legacy', 'fail'));
    const current = toEventDocument(legacy, { geoSource: 'none' }, { topic: config.topics.policy, partition: 0, offset: '0' }, new Date(), { original: true });
    const vigilFields: Partial<EventDocument['vigil']> = { ...current.vigil };
    delete vigilFields.content_hash;
    const legacyDocument = { ...current, vigil: vigilFields };
    await elasticsearch.create({ index: eventIndexName(config.indices.prefix, 'policy', time), id: legacy.id, document: legacyDocument, refresh: true });

    const producer = testProducer(kafka);
    await producer.connect();
    const key = 'one-partition';
    await producer.send({
      topic: config.topics.policy,
      acks: -1,
      messages: [
        { key, value: JSON.stringify(policy('evt-conflict-a', 'fail')) },
        { key, value: JSON.stringify(policy('evt-conflict-b', 'fail')) },
        // Same chunk as its first copy, most likely: the 409 comes from the same bulk request.
        { key, value: JSON.stringify(policy('evt-conflict-b', 'pass')) },
        { key, value: resent('evt-conflict-legacy', 'fail') },
        { key, value: JSON.stringify(policy('evt-conflict-legacy', 'pass')) },
      ],
    });
    // Later, in a chunk of its own: a redelivery and a collision of a settled document.
    await waitFor('the first copies', async () => (await countEvents(run.stack, { prefix: { 'event.id': 'evt-conflict-' } })) >= 3);
    await producer.send({
      topic: config.topics.policy,
      acks: -1,
      messages: [
        { key, value: resent('evt-conflict-a', 'fail') },
        { key, value: JSON.stringify(policy('evt-conflict-a', 'pass')) },
      ],
    });
    await producer.disconnect();

    const records = (await readTopic(kafka, config.topics.deadLetter, 3)).map(fromDeadLetterMessage);
    expect(records.map((record) => record.reasonCode)).toStrictEqual(['id_conflict', 'id_conflict', 'id_conflict']);
    const index = eventIndexName(config.indices.prefix, 'policy', time);
    const conflicting = ['evt-conflict-a', 'evt-conflict-b', 'evt-conflict-legacy'];
    expect(records.map((record) => conflicting.find((id) => record.reason.startsWith(`event id ${id} is already indexed in ${index} with different content`))).sort()).toStrictEqual(conflicting);
    // The dead letter holds the second event's bytes, so it can be re-sent under a new id.
    for (const record of records) expect(JSON.parse(record.value?.toString() ?? '{}')).toMatchObject({ policy: { outcome: 'pass' } });

    await waitFor('every message settled', () => (run.vigil.pipeline?.stats().consumed ?? 0) >= 7);
    expect(run.vigil.pipeline?.stats()).toMatchObject({ consumed: 7, indexed: 2, duplicates: 2, deadLettered: 3, deadLetteredByReason: { id_conflict: 3 } });
    expect(await countEvents(run.stack, { prefix: { 'event.id': 'evt-conflict-' } })).toBe(3);
    // The first copy stays as it was.
    expect(await countEvents(run.stack, { term: { 'vigil.policy.outcome': 'pass' } })).toBe(0);

    // At-least-once: every chunk redone (a new group reads the topic again) finds its own
    // events as duplicates and the collisions as conflicts again, under the same dead-letter keys.
    const redo = vigilOn(run.stack, {}, { ...config, consumerGroup: `${config.consumerGroup}-redo` });
    await redo.start();
    try {
      await waitFor('the redone run', () => (redo.pipeline?.stats().consumed ?? 0) >= 7);
      expect(redo.pipeline?.stats()).toMatchObject({ consumed: 7, indexed: 0, duplicates: 4, deadLettered: 3, deadLetteredByReason: { id_conflict: 3 } });
    } finally {
      await redo.stop();
    }
    const again = (await readTopic(kafka, config.topics.deadLetter, 6)).map(fromDeadLetterMessage);
    expect(new Set(again.map((record) => `${record.topic}:${record.partition}:${record.offset}`)).size).toBe(3);
    expect(await countEvents(run.stack, { prefix: { 'event.id': 'evt-conflict-' } })).toBe(3);
    // The hash is kept in _source only (read back by id, never searched): count it there.
    const stored = await elasticsearch.search<{ vigil?: { content_hash?: string } }>({ index: indexNames(config.indices.prefix).eventPattern, size: 10, _source_includes: ['vigil.content_hash'] });
    expect(stored.hits.hits.filter((hit) => typeof hit._source?.vigil?.content_hash === 'string')).toHaveLength(2);
  });
});

/** Every `<stage> <event id>` a pipeline's stages report, as they happen. */
/** Produces `values` in one send under one key: one batch on one partition. */
async function sendOneBatch(vigil: Vigil, topic: string, values: readonly string[]): Promise<void> {
  const producer = testProducer(vigil.kafka);
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: 'one-partition', value })) });
  } finally {
    await producer.disconnect();
  }
}

function stagedIds(vigil: Vigil): string[] {
  const staged: string[] = [];
  vigil.instrumentation.on('pipeline.stage', ({ stage, eventIds }) => {
    for (const id of eventIds) staged.push(`${stage} ${id}`);
  });
  return staged;
}

describe('an id this process already indexed: decided from its memory, before correlation, rules and indexing', () => {
  const run = withVigil();

  it('counts a later redelivery as a duplicate and dead-letters a later collision as id_conflict, neither reaching the stages', async () => {
    const { config, kafka } = run.stack;
    const staged = stagedIds(run.vigil);
    let committed = 0;
    run.vigil.instrumentation.on('runner.chunk', ({ component, messages }) => {
      if (component === 'ingest') committed += messages;
    });
    const producer = testProducer(kafka);
    await producer.connect();
    const key = 'one-partition';
    try {
      await producer.send({ topic: config.topics.policy, acks: -1, messages: [{ key, value: JSON.stringify(policy('evt-memory-a', 'fail')) }] });
      // Committed (the memory is filled only then), not only indexed.
      await waitFor('the first copy committed', () => committed >= 1);
      const firstTime = [...staged];
      expect(firstTime).toContain('index evt-memory-a');
      await producer.send({
        topic: config.topics.policy,
        acks: -1,
        messages: [
          { key, value: resent('evt-memory-a', 'fail') },
          { key, value: JSON.stringify(policy('evt-memory-a', 'pass')) },
        ],
      });
    } finally {
      await producer.disconnect();
    }

    const [record] = (await readTopic(kafka, config.topics.deadLetter, 1)).map(fromDeadLetterMessage);
    expect(record?.reasonCode).toBe('id_conflict');
    expect(record?.reason).toMatch(new RegExp(`^event id evt-memory-a is already indexed in ${eventIndexName(config.indices.prefix, 'policy', time)} with different content \\(stored content hash [0-9a-f]{16}, this one [0-9a-f]{16}\\)$`));
    expect(JSON.parse(record?.value?.toString() ?? '{}')).toMatchObject({ policy: { outcome: 'pass' } });
    await waitFor('every message settled', () => (run.vigil.pipeline?.stats().consumed ?? 0) >= 3);
    expect(run.vigil.pipeline?.stats()).toMatchObject({ consumed: 3, indexed: 1, duplicates: 1, deadLettered: 1, deadLetteredByReason: { id_conflict: 1 } });
    // Only the first copy was correlated, evaluated and indexed: Elasticsearch never saw the others.
    expect(staged.filter((entry) => entry.endsWith(' evt-memory-a')).sort()).toStrictEqual(['correlate evt-memory-a', 'detect evt-memory-a', 'index evt-memory-a']);
    expect(await countEvents(run.stack, { prefix: { 'event.id': 'evt-memory-' } })).toBe(1);
    expect(await countEvents(run.stack, { term: { 'vigil.policy.outcome': 'pass' } })).toBe(0);
  });
});

describe('an id twice in one chunk: the later copy decided by the answer to the first', () => {
  const run = withVigil();

  it('sends only the first copy through the stages, counts a same-content twin as a duplicate and dead-letters another as id_conflict', async () => {
    const { config, kafka } = run.stack;
    const staged = stagedIds(run.vigil);
    const chunks: number[] = [];
    run.vigil.instrumentation.on('runner.chunk', ({ component, messages }) => {
      if (component === 'ingest') chunks.push(messages);
    });
    // One send, one key: one batch on one partition, handled as one chunk.
    await sendOneBatch(run.vigil, config.topics.policy, [JSON.stringify(policy('evt-twin-a', 'fail')), resent('evt-twin-a', 'fail'), JSON.stringify(policy('evt-twin-a', 'pass'))]);

    const [record] = (await readTopic(kafka, config.topics.deadLetter, 1)).map(fromDeadLetterMessage);
    expect(record?.reasonCode).toBe('id_conflict');
    expect(record?.reason).toMatch(/^event id evt-twin-a is already indexed in .* with different content/);
    expect(JSON.parse(record?.value?.toString() ?? '{}')).toMatchObject({ policy: { outcome: 'pass' } });
    await waitFor('every message settled', () => (run.vigil.pipeline?.stats().consumed ?? 0) >= 3);
    expect(chunks).toStrictEqual([3]);
    expect(run.vigil.pipeline?.stats()).toMatchObject({ consumed: 3, indexed: 1, duplicates: 1, deadLettered: 1, deadLetteredByReason: { id_conflict: 1 } });
    expect(staged.filter((entry) => entry.endsWith(' evt-twin-a')).sort()).toStrictEqual(['correlate evt-twin-a', 'detect evt-twin-a', 'index evt-twin-a']);
    expect(await countEvents(run.stack, { prefix: { 'event.id': 'evt-twin-' } })).toBe(1);
    expect(await countEvents(run.stack, { term: { 'vigil.policy.outcome': 'pass' } })).toBe(0);
  });

  it('two copies of an id held by a document of unknown content (no hash, no original): both dead-lettered as id_conflict', async () => {
    const { config, elasticsearch, kafka } = run.stack;
    const stored = eventSchema.parse(policy('evt-twin-unknown', 'fail'));
    const document = toEventDocument(stored, { geoSource: 'none' }, { topic: config.topics.policy, partition: 0, offset: '0' }, new Date(), { original: false });
    const vigilFields: Partial<EventDocument['vigil']> = { ...document.vigil };
    delete vigilFields.content_hash;
    await elasticsearch.create({ index: eventIndexName(config.indices.prefix, 'policy', time), id: stored.id, document: { ...document, vigil: vigilFields }, refresh: true });
    const before = run.vigil.pipeline?.stats().consumed ?? 0;
    await sendOneBatch(run.vigil, config.topics.policy, [JSON.stringify(policy('evt-twin-unknown', 'pass')), resent('evt-twin-unknown', 'pass')]);
    await waitFor('both settled', () => (run.vigil.pipeline?.stats().consumed ?? 0) >= before + 2);
    const records = (await readTopic(kafka, config.topics.deadLetter, 3)).map(fromDeadLetterMessage).filter((record) => record.value?.toString().includes('evt-twin-unknown'));
    expect(records.map((record) => record.reasonCode)).toStrictEqual(['id_conflict', 'id_conflict']);
  });
});
