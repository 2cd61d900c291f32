import { createHash } from 'node:crypto';
import { DEAD_LETTER_PREFIX_BYTES, fromDeadLetterMessage } from '../../ingest';
import type { Vigil } from '../../app';
import { indexNames } from '../../schemas';
import { fuzzTraffic, type FuzzMessage } from '../support/fuzz';
import { produceTraffic, type Position } from '../support/produce';
import { countEvents, isolatedConfig, openStack, readTopic, vigilOn, waitFor, type Stack } from '../support/harness';

/**
 * Hostile input at volume, through Vigil as `vigil run` builds it. Seeded and bounded: 20,000
 * messages here (VIGIL_FUZZ_MESSAGES raises it, e.g. 100,000 in `npm run fuzz`), VIGIL_FUZZ_SEED
 * replays a failure.
 */
const count = Number(process.env.VIGIL_FUZZ_MESSAGES ?? 20_000);
const seed = Number(process.env.VIGIL_FUZZ_SEED ?? 20_261_202);
// Bounds, not speed targets (the bench measures speed): generous enough for 100,000 messages on
// a loaded 2-core machine, where producing and consuming them takes minutes, not the 2 minutes
// every other integration test gets.
const consumeTimeoutMs = Math.max(300_000, count * 15);
const testTimeoutMs = consumeTimeoutMs + 300_000;

describe(`fuzz: ${count} mutated, random and good messages (seed ${seed})`, () => {
  let stack: Stack;
  let vigil: Vigil;
  let traffic: FuzzMessage[];
  const pauses: string[] = [];

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    const { config } = stack;
    // Made before Vigil starts: generating 100,000 messages holds this process's event loop for
    // a minute on a loaded machine, and a consumer that can't heartbeat that long is dropped
    // from its group, so chunks in hand would be redone (found by the first 100,000 run).
    traffic = fuzzTraffic({ seed, count, idPrefix: `fz-${config.indices.prefix}`, maxMessageBytes: config.limits.maxMessageBytes, maxJsonDepth: config.limits.maxJsonDepth });
    vigil = vigilOn(stack);
    // A chunk whose handler throws is paused and redone: any pause here is an escaped exception.
    vigil.instrumentation.on('runner.pause', ({ topic, partition, error }) => {
      pauses.push(`${topic}:${partition}: ${error instanceof Error ? error.message : String(error)}`);
    });
    await vigil.start();
  }, testTimeoutMs);

  afterAll(async () => {
    await vigil.stop();
    await stack.cleanup();
  });

  it('dead-letters every bad message with its reason, indexes every good one exactly once, and never throws', async () => {
    const { config, kafka, elasticsearch } = stack;
    const positions = await produceTraffic(kafka, config, traffic);
    expect(positions.size).toBe(traffic.length);

    const bad = traffic.filter((message) => message.expect.outcome === 'dead-lettered');
    const good = traffic.flatMap((message) => (message.expect.outcome === 'indexed' ? [message.expect.id] : []));
    const redeliveries = traffic.filter((message) => message.expect.outcome === 'duplicate').length;
    await waitFor(`${traffic.length} messages consumed`, () => (vigil.pipeline?.stats().consumed ?? 0) >= traffic.length, consumeTimeoutMs);

    expect(pauses).toStrictEqual([]);
    const stats = vigil.pipeline?.stats();
    expect(stats).toMatchObject({ consumed: traffic.length, indexed: good.length, duplicates: redeliveries, deadLettered: bad.length });

    // Every bad message, found by its source position, with a reason it may have.
    const records = (await readTopic(kafka, config.topics.deadLetter, bad.length, 120_000)).map(fromDeadLetterMessage);
    const wrong: string[] = [];
    const seen = new Map<Position, FuzzMessage>();
    for (const record of records) {
      const position: Position = `${record.topic}:${record.partition}:${record.offset}`;
      const message = positions.get(position);
      if (!message) {
        wrong.push(`${position}: a dead letter for no produced message`);
        continue;
      }
      seen.set(position, message);
      if (message.expect.outcome !== 'dead-lettered') wrong.push(`#${message.seq} ${message.kind}: dead-lettered (${record.reasonCode}: ${record.reason.slice(0, 200)}) but should be ${message.expect.outcome}`);
      else if (!message.expect.reasons.includes(record.reasonCode)) wrong.push(`#${message.seq} ${message.kind}: ${record.reasonCode} (${record.reason.slice(0, 200)}), expected ${message.expect.reasons.join('|')}`);
      if (record.reason.length === 0) wrong.push(`#${message.seq} ${message.kind}: no reason text`);
      const original = message.value ?? Buffer.alloc(0);
      if (record.truncated) {
        // A too_large message keeps its first bytes, and names the whole by size and SHA-256.
        const whole = record.truncated.bytes === original.length && record.truncated.sha256 === createHash('sha256').update(original).digest('hex');
        if (!whole || !original.subarray(0, DEAD_LETTER_PREFIX_BYTES).equals(record.value ?? Buffer.alloc(0))) wrong.push(`#${message.seq} ${message.kind}: the truncated dead letter does not describe the original bytes`);
        if (record.reasonCode !== 'too_large') wrong.push(`#${message.seq} ${message.kind}: truncated, but dead-lettered as ${record.reasonCode}`);
      } else if (!original.equals(record.value ?? Buffer.alloc(0))) wrong.push(`#${message.seq} ${message.kind}: the dead letter's value is not the original bytes`);
    }
    expect(wrong.slice(0, 20)).toStrictEqual([]);
    expect(seen.size).toBe(bad.length);

    // Every good event exactly once, and nothing else in the index.
    const pattern = indexNames(config.indices.prefix).eventPattern;
    expect(await countEvents(stack)).toBe(good.length);
    const twice = await elasticsearch.search({
      index: pattern,
      size: 0,
      aggs: { ids: { terms: { field: 'event.id', min_doc_count: 2, size: 10 } } },
    });
    expect((twice.aggregations?.ids as { buckets: unknown[] } | undefined)?.buckets).toStrictEqual([]);
    let indexed = 0;
    for (let start = 0; start < good.length; start += 10_000) {
      indexed += await countEvents(stack, { terms: { 'event.id': good.slice(start, start + 10_000) } });
    }
    expect(indexed).toBe(good.length);

    // Prototype-pollution keys stayed data.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  }, testTimeoutMs);
});
