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
