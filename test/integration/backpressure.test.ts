import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import { loadConfig } from '../../platform';
import { eventIndexName } from '../../schemas';
import { CONSUMER_LOOPS, countEvents, isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';

/**
 * A loopback proxy in front of the real Elasticsearch that answers the first `rejectBulks`
 * bulk requests with 429, as an overloaded cluster does, and forwards everything else.
 */
function startPushbackProxy(target: URL, rejectBulks: number): Promise<{ server: Server; url: string; rejected: () => number }> {
  let rejected = 0;
  const server = createServer((incoming, outgoing) => {
    if (incoming.url?.includes('_bulk') && rejected < rejectBulks) {
      rejected++;
      incoming.resume();
      outgoing.writeHead(429, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      outgoing.end(JSON.stringify({ error: { type: 'es_rejected_execution_exception', reason: 'rejected by the test proxy' }, status: 429 }));
      return;
    }
    const forward = httpRequest(
      { host: target.hostname, port: target.port, path: incoming.url, method: incoming.method, headers: incoming.headers },
      (response) => {
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(outgoing);
      },
    );
    forward.on('error', () => outgoing.destroy());
    incoming.pipe(forward);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, rejected: () => rejected });
    });
  });
}

describe.each(CONSUMER_LOOPS)('when Elasticsearch pushes back, $loop', ({ env, ahead }) => {
  let stack: Stack;
  let proxy: Awaited<ReturnType<typeof startPushbackProxy>>;

  beforeAll(async () => {
    const real = new URL(loadConfig().elasticsearch.url);
    // Each partition's chunk is its own request (VIGIL_BULK_FLUSH_MS 0), tried 4 times: 12
    // refusals are more than the topic's 2 partitions' requests absorb, so one of them gives up.
    proxy = await startPushbackProxy(real, 12);
    stack = openStack(isolatedConfig(env));
  });

  afterAll(async () => {
    await stack.cleanup();
    await new Promise((done) => proxy.server.close(done));
  });

  it('pauses the partition, retries with backoff, resumes by itself and loses nothing', async () => {
    expect(stack.config.fetch.ahead).toBe(ahead);
    const throughProxy = { ...stack.config, elasticsearch: { url: proxy.url } };
    // Vigil opens (and closes) its own Elasticsearch client, to the proxy.
    const vigil = vigilOn(stack, { elasticsearch: undefined }, throughProxy);
    const pipeline = vigil.pipeline as IngestPipeline;
    await vigil.start();
    try {
      const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'pushback-test', kind: 'service' } });
      for (let n = 0; n < 200; n++) {
        emitter.invocation({
          id: `evt-pushback-${n}`,
          actor: { consumerId: `app-${n % 7}` },
          invocation: { resource: { api: 'orders-v1', method: 'GET', path: `/v1/orders/${n}` }, route: '/v1/orders/:id', status: 200, latencyMs: 12 },
        });
      }
      await emitter.close();
      await waitFor('all 200 events indexed despite the 429s', async () => (await countEvents(stack)) >= 200, 90_000);
      expect(await countEvents(stack)).toBe(200);
      expect(proxy.rejected()).toBe(12);
      const stats = pipeline.stats();
      expect(stats.pauses).toBeGreaterThan(0);
      expect(stats.indexed + stats.duplicates).toBeGreaterThanOrEqual(200);
      expect(stats.deadLettered).toBe(0);
    } finally {
      await vigil.stop();
    }
  });
});

/**
 * A loopback proxy that, until healed, sends Elasticsearch only the first half of the documents of
 * a bulk request it has not seen before and answers the others with a per-item 429 (those it has
 * seen before always: a node whose write queue stays full), as a node whose write queue filled
 * part-way through a request does; everything else is forwarded.
 */
function startPartialProxy(target: URL): Promise<{ server: Server; url: string; partial: () => number; heal: () => void }> {
  let partial = 0;
  let healed = false;
  const seen = new Set<string>();
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      let body = Buffer.concat(chunks);
      // Per document of the request: whether it goes to Elasticsearch.
      let taken: boolean[] | undefined;
      if (incoming.url?.includes('_bulk') && !healed) {
        partial++;
        const lines = body.toString('utf8').split('\n').filter((line) => line.length > 0);
        const ids = lines.filter((_, index) => index % 2 === 0).map((action) => (JSON.parse(action) as { create: { _id: string } }).create._id);
        const fresh = ids.filter((id) => !seen.has(id));
        const keep = new Set(fresh.slice(0, Math.ceil(fresh.length / 2)));
        for (const id of ids) seen.add(id);
        taken = ids.map((id) => keep.has(id));
        body = Buffer.from(lines.filter((_, index) => taken?.[Math.floor(index / 2)] === true).map((line) => `${line}\n`).join(''));
      }
      const refusals = taken?.filter((kept) => !kept).length ?? 0;
      const refused = { create: { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'rejected by the test proxy' } } };
      if (taken !== undefined && refusals === taken.length) {
        outgoing.writeHead(200, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
        outgoing.end(JSON.stringify({ errors: true, items: taken.map(() => refused) }));
        return;
      }
      const headers = { ...incoming.headers, 'content-length': String(body.length) };
      delete headers['accept-encoding'];
      delete headers['transfer-encoding'];
      const forward = httpRequest({ host: target.hostname, port: target.port, path: incoming.url, method: incoming.method, headers }, (response) => {
        const answer: Buffer[] = [];
        response.on('data', (chunk: Buffer) => answer.push(chunk));
        response.on('end', () => {
          let text = Buffer.concat(answer);
          if (taken !== undefined && refusals > 0) {
            const answered = [...((JSON.parse(text.toString('utf8')) as { items?: unknown[] }).items ?? [])];
            const items = taken.map((kept) => (kept ? answered.shift() : refused));
            text = Buffer.from(JSON.stringify({ errors: true, items }));
          }
          const headers = { ...response.headers, 'content-length': String(text.length) };
          delete headers['content-encoding'];
          delete headers['transfer-encoding'];
          outgoing.writeHead(response.statusCode ?? 502, headers);
          outgoing.end(text);
        });
      });
      forward.on('error', () => outgoing.destroy());
      forward.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, partial: () => partial, heal: () => (healed = true) });
    });
  });
}

// A chunk whose bulk was taken in part, then pushed back past the retries, is redone: its redo
// found the documents taken the first time indexed, and counted them as duplicates, so
// `indexed` fell short of the events and `duplicates` rose with no producer sending any twice.
describe('when Elasticsearch takes part of a chunk and pushes the rest back past the retries', () => {
  let stack: Stack;
  let proxy: Awaited<ReturnType<typeof startPartialProxy>>;

  beforeAll(async () => {
    proxy = await startPartialProxy(new URL(loadConfig().elasticsearch.url));
    stack = openStack(isolatedConfig());
  });

  afterAll(async () => {
    await stack.cleanup();
    await new Promise((done) => proxy.server.close(done));
  });

  it('indexes every event once and counts each once as indexed, none as a duplicate', async () => {
    const vigil = vigilOn(stack, { elasticsearch: undefined }, { ...stack.config, elasticsearch: { url: proxy.url } });
    const pipeline = vigil.pipeline as IngestPipeline;
    await vigil.start();
    try {
      const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'partial-test', kind: 'service' } });
      for (let n = 0; n < 120; n++) {
        emitter.invocation({
          id: `evt-partial-${n}`,
          actor: { consumerId: `app-${n % 5}` },
          invocation: { resource: { api: 'orders-v1', method: 'GET', path: `/v1/orders/${n}` }, route: '/v1/orders/:id', status: 200, latencyMs: 7 },
        });
      }
      await emitter.close();
      // Every chunk's first request is taken in half, its retries refused: each chunk fails.
      await waitFor('the partitions paused, some events indexed', async () => pipeline.stats().pauses > 0 && (await countEvents(stack)) > 0, 60_000);
      expect(pipeline.stats().consumed).toBe(0);
      proxy.heal();
      await waitFor('all 120 events indexed', async () => (await countEvents(stack)) >= 120, 90_000);
      await waitFor('all 120 events counted', () => pipeline.stats().consumed >= 120, 60_000);
      expect(proxy.partial()).toBeGreaterThanOrEqual(4);
      expect(await countEvents(stack)).toBe(120);
      const stats = pipeline.stats();
      expect({ consumed: stats.consumed, indexed: stats.indexed, duplicates: stats.duplicates, deadLettered: stats.deadLettered }).toStrictEqual({ consumed: 120, indexed: 120, duplicates: 0, deadLettered: 0 });
      expect(stats.indexedByFamily).toEqual({ invocation: 120 });
    } finally {
      await vigil.stop();
    }
  });
});

describe('when Elasticsearch refuses documents for a reason outside them (a write block on the day\'s index)', () => {
  let stack: Stack;

  beforeAll(() => {
    stack = openStack(isolatedConfig());
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  it('dead-letters nothing: the partition waits until the block is lifted, then every event is indexed', async () => {
    const vigil = vigilOn(stack);
    const pipeline = vigil.pipeline as IngestPipeline;
    await vigil.start();
    try {
      // Made once Vigil's templates are in, as a day's first event would make it; then blocked, as
      // an operator (or the disk's flood stage) does.
      const index = eventIndexName(stack.config.indices.prefix, 'invocation', new Date().toISOString());
      await stack.elasticsearch.indices.create({ index });
      await stack.elasticsearch.indices.putSettings({ index, settings: { 'index.blocks.write': true } });
      const emitter = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'write-block-test', kind: 'service' } });
      for (let n = 0; n < 30; n++) {
        emitter.invocation({
          id: `evt-blocked-${n}`,
          actor: { consumerId: `app-${n % 3}` },
          invocation: { resource: { api: 'orders-v1', method: 'GET', path: `/v1/orders/${n}` }, route: '/v1/orders/:id', status: 200, latencyMs: 9 },
        });
      }
      await emitter.close();
      await waitFor('the partition paused on the refusal', () => pipeline.stats().pauses > 0, 60_000);
      expect(pipeline.stats().deadLettered).toBe(0);
      expect(await countEvents(stack)).toBe(0);
      await stack.elasticsearch.indices.putSettings({ index, settings: { 'index.blocks.write': false } });
      await waitFor('all 30 events indexed once the block is lifted', async () => (await countEvents(stack)) >= 30, 90_000);
      expect(await countEvents(stack)).toBe(30);
      expect(pipeline.stats().deadLettered).toBe(0);
    } finally {
      await vigil.stop();
    }
  });
});
