/**
 * Bytes per event document (issue 12), before and after `event.original` became optional, over
 * the same events in one run:
 * - `before`: the document of template version 2 (`event.original` always, `vigil.policy.reason`
 *   beside `event.reason`, `vigil.content_hash` an indexed keyword), in an index with version 2's
 *   mapping;
 * - `original on`: version 3 with `VIGIL_EVENT_ORIGINAL=on`;
 * - `default`: version 3 as shipped (no `event.original`).
 * For each: the `_bulk` body bytes per event (action line + document line, as the bulk indexer
 * sends them) and the on-disk bytes per event (`_stats` store size of a fresh one-shard index
 * after refresh and a force merge to one segment, over its document count). The events are the
 * simulated traffic of the demo (the SDK's mix of policy decisions, invocations and device
 * logins), validated, enriched with geoip-lite and correlated on the real Redis, as the
 * pipeline does. Needs the local Elasticsearch and Redis (`bash scripts/stack.sh up`).
 *
 *   npx tsx bench/bytes-per-event.bench.ts [-- --events N]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Correlator, deleteKeysUnder } from '../detectors';
import { classifyMessage, correlate, correlationDocument, enrich, openGeoipLite, toEventDocument } from '../ingest';
import type { Emitter } from '../ingest/sdk';
import { createElasticsearch, createRedis, loadConfig } from '../platform';
import { eventIndexName, eventMappings, type EventDocument, type VigilEvent } from '../schemas';
import { SIMULATED_SOURCES, emitSimulatedTraffic } from '../scripts/simulated-traffic';
import { positiveInteger } from './arguments';
import { recordingEmitter } from './recording-emitter';

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const EVENTS = positiveInteger(argument('--events'), 5000, '--events');

/**
 * An emitter of one producer (as the demo has one per simulated source) that only records the
 * Kafka values it would send, with ids, times and defaults as the SDK writes them.
 */
function recordInto(into: Buffer[], source: object): Emitter {
  const start = Date.now() - 3_600_000;
  return recordingEmitter((family, input) => {
    const id = randomUUID();
    into.push(Buffer.from(JSON.stringify({ id, schemaVersion: 1, family, time: new Date(start + into.length * 700).toISOString(), source, correlation: {}, actor: {}, client: {}, ...input })));
    return id;
  });
}

/** Template version 2's document of an event: what Vigil indexed before this change. */
function versionTwo(event: VigilEvent, document: EventDocument): EventDocument {
  const old = structuredClone(document);
  old.event.original = JSON.stringify(event);
  delete old.vigil.time;
  if (old.vigil.device) for (const field of ['client', 'ip', 'user_agent', 'id'] as const) delete old.vigil.device[field];
  if (event.family === 'policy' && event.policy.reason && old.vigil.policy) {
    // Version 2 wrote the reason twice, in this place of the object.
    const { kind, name, outcome, ...rest } = old.vigil.policy;
    old.vigil.policy = { kind, name, outcome, reason: event.policy.reason, ...rest };
  }
  return old;
}

/** Template version 2's mapping: the content hash an indexed keyword, no replay fields. */
function versionTwoMappings(): object {
  const mappings = structuredClone(eventMappings) as unknown as { properties: { vigil: { properties: Record<string, unknown> & { device: { properties: Record<string, unknown> } } } } };
  mappings.properties.vigil.properties.content_hash = { type: 'keyword', ignore_above: 1024 };
  delete mappings.properties.vigil.properties.time;
  for (const field of ['client', 'ip', 'user_agent', 'id']) delete mappings.properties.vigil.properties.device.properties[field];
  return mappings;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const elasticsearch = createElasticsearch(config);
  const redis = createRedis(config);
  const prefix = `bench-bytes-${randomBytes(4).toString('hex')}`;
  const geoLookup = await openGeoipLite();

  const values: Buffer[] = [];
  emitSimulatedTraffic(SIMULATED_SOURCES.map((source) => recordInto(values, source)), EVENTS, { seed: 12 });
  const limits = config.limits;
  const decoded = values.flatMap((value) => {
    const verdict = classifyMessage(value, limits);
    return verdict.ok ? [{ event: verdict.event, enrichment: enrich(verdict.event, geoLookup) }] : [];
  });
  const correlator = new Correlator({ redis, prefix, waitMs: 0 });
  const contexts: ReturnType<typeof correlationDocument>[] = [];
  try {
    for (let start = 0; start < decoded.length; start += 500) {
      const { contexts: found } = await correlate(decoded.slice(start, start + 500), { correlator, detecting: false });
      contexts.push(...found.map(correlationDocument));
    }
  } finally {
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  }
  const ingestedAt = new Date();
  const documentsOf = (original: boolean): EventDocument[] =>
    decoded.map(({ event, enrichment }, position) => {
      const document = toEventDocument(event, enrichment, { topic: config.topics[event.family], partition: position % 3, offset: String(1_000_000 + position) }, ingestedAt, { original });
      const correlation = contexts[position];
      if (correlation) document.vigil.correlation = correlation;
      return document;
    });
  const after = documentsOf(false);
  const cases = [
    { name: 'before (version 2, event.original)', documents: documentsOf(true).map((document, position) => versionTwo(decoded[position]?.event as VigilEvent, document)), mappings: versionTwoMappings() },
    { name: 'VIGIL_EVENT_ORIGINAL=on', documents: documentsOf(true), mappings: eventMappings },
    { name: 'default (no event.original)', documents: after, mappings: eventMappings },
  ];

  const producedBytes = values.reduce((sum, value) => sum + value.length, 0) / values.length;
  const results: { name: string; bulk: number; disk: number }[] = [];
  try {
    for (const [rank, { name, documents, mappings }] of cases.entries()) {
      const index = `${prefix}-${rank}`;
      await elasticsearch.indices.create({ index, settings: { number_of_shards: 1, number_of_replicas: 0, refresh_interval: -1 }, mappings: mappings });
      // The body as the bulk indexer writes it: one action line and one document line per event,
      // the action naming the daily index (its name's length counts, so it is the real one's).
      let bulkBytes = 0;
      for (let start = 0; start < documents.length; start += 1000) {
        const lines: string[] = [];
        for (const document of documents.slice(start, start + 1000)) {
          const realIndex = eventIndexName('vigil', document.vigil.family, document['@timestamp']);
          lines.push(JSON.stringify({ create: { _index: realIndex, _id: document.event.id } }), JSON.stringify(document));
          bulkBytes += Buffer.byteLength(`${lines[lines.length - 2] ?? ''}\n${lines[lines.length - 1] ?? ''}\n`);
        }
        const body = documents.slice(start, start + 1000).flatMap((document) => [{ create: { _index: index, _id: document.event.id } }, document]);
        const response = await elasticsearch.bulk({ operations: body });
        if (response.errors) throw new Error(`bulk into ${index} refused documents: ${JSON.stringify(response.items.find((item) => item.create?.error)?.create?.error)}`);
      }
      await elasticsearch.indices.refresh({ index });
      await elasticsearch.indices.forcemerge({ index, max_num_segments: 1, flush: true });
      const stats = await elasticsearch.indices.stats({ index, metric: ['store', 'docs'] });
      const primaries = stats.indices?.[index]?.primaries;
      const docs = primaries?.docs?.count ?? 0;
      if (docs !== documents.length) throw new Error(`${index} holds ${docs} documents, expected ${documents.length}`);
      results.push({ name, bulk: bulkBytes / documents.length, disk: (primaries?.store?.size_in_bytes ?? 0) / docs });
    }
  } finally {
    await elasticsearch.indices.delete({ index: `${prefix}-*`, allow_no_indices: true, ignore_unavailable: true });
    await elasticsearch.close();
  }

  const base = results[0];
  console.log(`bytes per event, ${decoded.length} simulated events (policy, invocation, device), ${producedBytes.toFixed(0)} bytes each as produced to Kafka`);
  console.log(`${'case'.padEnd(38)} ${'bulk body'.padStart(10)} ${'vs before'.padStart(10)} ${'on disk'.padStart(10)} ${'vs before'.padStart(10)}`);
  for (const result of results) {
    console.log(
      `${result.name.padEnd(38)} ${result.bulk.toFixed(0).padStart(10)} ${(result.bulk / (base?.bulk ?? NaN)).toFixed(2).padStart(10)} ${result.disk.toFixed(0).padStart(10)} ${(result.disk / (base?.disk ?? NaN)).toFixed(2).padStart(10)}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
