/**
 * What `vigil adapt` costs: the Kong adapter's translate alone, and the pipeline end to end with
 * the adapter on against the same events produced directly.
 *
 * 1. translate (no network): Kong records in http-log batches of 100 and one per message
 *    (kafka-log), against `JSON.parse` of the same bytes, the floor of any JSON adapter; and
 *    translate + the contract check `vigil adapt` runs on each event. One thread: records/s is
 *    per core.
 * 2. end to end (the real stack, `bash scripts/stack.sh up`; skip with `--no-e2e`): raw Kong
 *    records → `vigil adapt` → family topics → the ingest pipeline → indexed, against the
 *    events the adapter would make, produced straight to the family topics. Detection is off
 *    in both, so the difference is the adapter's extra hop (every event crosses Kafka twice).
 * Cases alternate within each round; medians print as ratios against the baseline of the run.
 *
 *   npx tsx bench/adapt.bench.ts [-- --records N --rounds N --no-e2e]
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Message } from 'kafkajs';
import { createAdapt, createVigil } from '../app';
import { adapterFor, groupMap, type AdapterSettings, type GatewayAdapter, type IngestPipeline } from '../ingest';
import { partitionKeyOf } from '../ingest/sdk';
import { createKafka, createLogger, createProducer, loadConfig, sendBatches, sleep } from '../platform';
import { eventSchema } from '../schemas';
import { REFUSALS, kongRecord, type GatewayCall } from '../scripts/gateway-records';
import { deleteTopics, removeIndicesAndTemplates } from '../scripts/cleanup';
import { createElasticsearch } from '../platform';
import { positiveInteger } from './arguments';
import { median } from './stats';

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const RECORDS = positiveInteger(argument('--records'), 10_000, '--records');
const ROUNDS = positiveInteger(argument('--rounds'), 5, '--rounds');
const E2E = !process.argv.includes('--no-e2e');

const kong: GatewayAdapter = ((): GatewayAdapter => {
  const found = adapterFor('kong');
  if (found === undefined) throw new Error('the kong adapter is not registered');
  return found;
})();
const settings: AdapterSettings = { service: 'edge-kong-bench', kind: 'gateway', groups: groupMap({ default: 'edge' }) };

/** A gateway's day: mostly authenticated successes, some refusals of each kind. */
function records(count: number): Record<string, unknown>[] {
  const start = Date.now() - 10 * 60_000;
  return Array.from({ length: count }, (_, n) => {
    const kind = n % 20;
    const call: GatewayCall = {
      requestId: randomBytes(16).toString('hex'),
      time: new Date(start + n * 20),
      clientIp: `81.2.${(n >> 8) % 256}.${n % 256}`,
      method: n % 3 === 0 ? 'POST' : 'GET',
      uri: `/orders/${n}?expand=items`,
      status: kind === 0 || kind === 1 ? 401 : kind === 2 ? 429 : kind === 3 ? 403 : 200,
      latencyMs: 10 + (n % 90),
      ...(kind === 0 || kind === 1 ? {} : { consumer: `app-${n % 31}` }),
      service: 'orders-svc',
      route: { name: 'orders', paths: ['/orders'] },
      userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15',
      ...(kind === 0 || kind === 1 ? { responseHeaders: REFUSALS.kongKeyAuth } : kind === 2 ? { responseHeaders: REFUSALS.kongRateLimited } : {}),
    };
    return kongRecord(call);
  });
}

function messagesOf(made: readonly Record<string, unknown>[], perMessage: number): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start < made.length; start += perMessage) {
    const slice = made.slice(start, start + perMessage);
    out.push(Buffer.from(JSON.stringify(perMessage === 1 ? slice[0] : slice)));
  }
  return out;
}

/** Records per second of `work` over the messages, one thread. */
function rate(messages: readonly Buffer[], work: (value: Buffer) => number): number {
  const began = performance.now();
  let total = 0;
  for (const value of messages) total += work(value);
  if (total === 0) throw new Error('nothing was translated');
  return RECORDS / ((performance.now() - began) / 1000);
}

function translateBench(): void {
  const made = records(RECORDS);
  const cases = {
    batched: messagesOf(made, 100),
    single: messagesOf(made, 1),
  };
  const results: Record<string, number[]> = {};
  const add = (name: string, value: number): void => {
    (results[name] ??= []).push(value);
  };
  // One warm-up round, then the measured ones.
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [shape, messages] of Object.entries(cases)) {
      const parse = rate(messages, (value) => {
        const parsed = JSON.parse(value.toString('utf8')) as unknown;
        return Array.isArray(parsed) ? parsed.length : 1;
      });
      const translate = rate(messages, (value) => kong.translate(value, settings).events.length);
      const checked = rate(messages, (value) => {
        let valid = 0;
        for (const event of kong.translate(value, settings).events) if (eventSchema.safeParse(event).success) valid++;
        return valid;
      });
      if (round === 0) continue;
      add(`${shape} JSON.parse (baseline)`, parse);
      add(`${shape} translate`, translate);
      add(`${shape} translate + contract check`, checked);
    }
  }
  console.log(`\ntranslate, ${RECORDS} Kong records (${ROUNDS} rounds, medians; one thread, so per core):`);
  for (const shape of Object.keys(cases)) {
    const baseline = median(results[`${shape} JSON.parse (baseline)`] ?? []);
    for (const name of [`${shape} JSON.parse (baseline)`, `${shape} translate`, `${shape} translate + contract check`]) {
      const value = median(results[name] ?? []);
      console.log(`  ${name.padEnd(42)} ${Math.round(value).toLocaleString('en').padStart(10)} records/s   ${(value / baseline).toFixed(2)}x baseline`);
    }
  }
  const sample = kong.translate(cases.single[0] ?? Buffer.alloc(0), settings).events.length;
  console.log(`  (${sample} events from the first record; ${made.length} records make ${kong.translate(Buffer.from(JSON.stringify(made)), settings).events.length} events)`);
}

/** One end-to-end run on a fresh prefix: seconds from the first produce to the last event indexed. */
async function endToEnd(mode: 'direct' | 'adapter', made: readonly Record<string, unknown>[]): Promise<{ seconds: number; events: number }> {
  const id = randomBytes(4).toString('hex');
  const config = loadConfig({
    ...process.env,
    VIGIL_TOPIC_POLICY: `bench-${id}.policy`,
    VIGIL_TOPIC_INVOCATION: `bench-${id}.invocation`,
    VIGIL_TOPIC_DEVICE: `bench-${id}.device`,
    VIGIL_TOPIC_DEADLETTER: `bench-${id}.deadletter`,
    VIGIL_TOPIC_DETECTIONS: `bench-${id}.detections`,
    VIGIL_TOPIC_NOTIFICATIONS: `bench-${id}.notifications`,
    VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `bench-${id}.notifications-deadletter`,
    VIGIL_CONSUMER_GROUP: `bench-${id}-ingest`,
    VIGIL_ADAPT_CONSUMER_GROUP: `bench-${id}-adapt`,
    VIGIL_INDEX_PREFIX: `bench-${id}`,
    VIGIL_REDIS_PREFIX: `bench-${id}`,
    VIGIL_DETECTION: 'off',
    VIGIL_RULES_WATCH: 'off',
    VIGIL_HTTP_PORT: '0',
    VIGIL_ADAPT_SERVICE: 'edge-kong-bench',
    VIGIL_ADAPT_GROUPS: '{"default":"edge"}',
    LOG_LEVEL: 'error',
  });
  const logger = createLogger({ level: 'error' });
  const kafka = createKafka(config, logger, `bench-${id}`);
  const elasticsearch = createElasticsearch(config);
  const rawTopic = `bench-${id}.raw-kong`;
  const vigil = createVigil(config, { roles: ['ingest'], logger, kafka, elasticsearch, http: false });
  const adapt = mode === 'adapter' ? createAdapt(config, { format: 'kong', topic: rawTopic, kafka, logger }) : undefined;
  // The events the adapter makes, built before the clock runs for the direct case.
  const events = made.flatMap((record) => kong.translate(Buffer.from(JSON.stringify(record)), settings).events).map((event) => eventSchema.parse(event));
  const producer = createProducer(kafka);
  try {
    await vigil.start();
    await adapt?.start();
    await producer.connect();
    const pipeline = vigil.pipeline as IngestPipeline;
    const began = performance.now();
    if (mode === 'direct') {
      for (const family of ['policy', 'invocation'] as const) {
        const messages: Message[] = events.filter((event) => event.family === family).map((event) => ({ key: partitionKeyOf(event), value: JSON.stringify(event), headers: { 'vigil-family': family } }));
        for (const batch of sendBatches(messages)) await producer.send({ topic: config.topics[family], messages: batch, acks: -1 });
      }
    } else {
      // http-log's batches: 100 records per message.
      const messages = messagesOf(made, 100).map((value) => ({ key: 'kong-node-1', value }));
      for (const batch of sendBatches(messages)) await producer.send({ topic: rawTopic, messages: batch, acks: -1 });
    }
    for (const deadline = Date.now() + 300_000; pipeline.stats().indexed < events.length; ) {
      if (Date.now() > deadline) throw new Error(`${mode}: ${pipeline.stats().indexed} of ${events.length} events indexed after 300 s`);
      await sleep(20);
    }
    return { seconds: (performance.now() - began) / 1000, events: events.length };
  } finally {
    await producer.disconnect();
    await adapt?.stop();
    await vigil.stop();
    await removeIndicesAndTemplates(elasticsearch, config.indices.prefix);
    await deleteTopics(kafka, config);
    if (adapt) {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [rawTopic], timeout: 10_000 }).catch(() => undefined);
      await admin.disconnect();
    }
    await elasticsearch.close();
  }
}

async function main(): Promise<void> {
  translateBench();
  if (!E2E) return;
  const made = records(Math.min(RECORDS, 20_000));
  const rounds = Math.min(ROUNDS, 3);
  const seconds: Record<'direct' | 'adapter', number[]> = { direct: [], adapter: [] };
  let events = 0;
  for (let round = 0; round < rounds; round++) {
    for (const mode of round % 2 === 0 ? (['direct', 'adapter'] as const) : (['adapter', 'direct'] as const)) {
      const run = await endToEnd(mode, made);
      seconds[mode].push(run.seconds);
      events = run.events;
    }
  }
  const direct = median(seconds.direct);
  const adapter = median(seconds.adapter);
  console.log(`\nend to end, ${made.length} Kong records = ${events} events, detection off (${rounds} rounds, medians):`);
  console.log(`  contract events produced directly (baseline)  ${(events / direct).toFixed(0).padStart(7)} events/s indexed   1.00x`);
  console.log(`  raw Kong records → vigil adapt → pipeline      ${(events / adapter).toFixed(0).padStart(7)} events/s indexed   ${(direct / adapter).toFixed(2)}x baseline (${(made.length / adapter).toFixed(0)} records/s)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
