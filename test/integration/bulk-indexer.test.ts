import { BulkIndexer } from '../../platform';
import { isolatedConfig, openStack, testLogger, type Stack } from '../support/harness';

/**
 * The bulk indexer against the real Elasticsearch: each document's outcome (created, duplicate,
 * refused with its reason) read from the filtered bulk response, and bodies sent as one UTF-8
 * buffer arrive byte for byte.
 */
describe('bulk indexer', () => {
  let stack: Stack;
  let index: string;

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    index = `${stack.config.indices.prefix}-bulk`;
    await stack.elasticsearch.indices.create({ index, mappings: { dynamic: 'strict', properties: { count: { type: 'integer' }, text: { type: 'keyword' } } } });
  });

  afterAll(async () => {
    await stack.cleanup();
    await stack.elasticsearch.close();
  });

  it('reports created, duplicate and refused documents in order, with the reason of a refusal, and stores multi-byte text as sent', async () => {
    // A count limit of 3: each call below is one request.
    const indexer = new BulkIndexer(stack.elasticsearch, { maxDocs: 3, maxBytes: 1024 * 1024, flushMs: 50 }, testLogger);
    const text = 'Zürich → 東京 🚀 "quoted" \\ back\nslash';
    const first = await indexer.index([
      { index, id: 'a', document: { count: 1, text } },
      { index, id: 'b', document: { count: 'not a number' } },
      { index, id: 'c', document: { count: 3 } },
    ]);
    const second = await indexer.index([
      { index, id: 'a', document: { count: 1, text } },
      { index, id: 'd', document: { unmapped: true } },
    ]);
    expect([...first, ...second].map((result) => result.status)).toEqual(['created', 'rejected', 'created', 'duplicate', 'rejected']);
    const refusals = [...first, ...second].flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    expect(refusals[0]).toMatch(/^document_parsing_exception: .*count/);
    expect(refusals[1]).toMatch(/^strict_dynamic_mapping_exception: .*unmapped/);
    expect(indexer.stats).toEqual({ requests: 2, created: 2, duplicates: 1, rejected: 2, retries: 0 });

    const stored = await stack.elasticsearch.get<{ count: number; text: string }>({ index, id: 'a' });
    expect(stored._source).toEqual({ count: 1, text });
    await indexer.flush();
  });

  it('with flushMs 0, sends what each call queued at once, as one request, without waiting for a timer or for others', async () => {
    const indexer = new BulkIndexer(stack.elasticsearch, { maxDocs: 1000, maxBytes: 1024 * 1024, flushMs: 0 }, testLogger);
    const first = indexer.index([
      { index, id: 'now-1', document: { count: 1 } },
      { index, id: 'now-2', document: { count: 2 } },
    ]);
    // Sent by the call itself: a request is in flight before any timer could fire.
    expect(indexer.stats.requests).toBe(1);
    const second = indexer.index([{ index, id: 'now-3', document: { count: 3 } }]);
    expect(indexer.stats.requests).toBe(2);
    expect([...(await first), ...(await second)].map((result) => result.status)).toEqual(['created', 'created', 'created']);
    await indexer.flush();
    expect(indexer.stats).toEqual({ requests: 2, created: 3, duplicates: 0, rejected: 0, retries: 0 });
  });

  it('with one request in flight, queues what comes meanwhile and sends it together, as one request, when the first returns', async () => {
    const indexer = new BulkIndexer(stack.elasticsearch, { maxDocs: 1000, maxBytes: 1024 * 1024, flushMs: 0, concurrency: 1 }, testLogger);
    const first = indexer.index([{ index, id: 'gc-1', document: { count: 1 } }]);
    expect(indexer.stats.requests).toBe(1);
    // Three more calls, as three partitions' chunks would make, while the first is out.
    const rest = [indexer.index([{ index, id: 'gc-2', document: { count: 2 } }]), indexer.index([{ index, id: 'gc-3', document: { count: 3 } }, { index, id: 'gc-1', document: { count: 1 } }]), indexer.index([{ index, id: 'gc-4', document: { count: 'four' } }])];
    expect(indexer.stats.requests).toBe(1);
    expect((await first).map((result) => result.status)).toEqual(['created']);
    const results = await Promise.all(rest);
    expect(results.map((call) => call.map((result) => result.status))).toEqual([['created'], ['created', 'duplicate'], ['rejected']]);
    // The three calls went as one request, each still told its own documents' outcomes.
    expect(indexer.stats).toEqual({ requests: 2, created: 3, duplicates: 1, rejected: 1, retries: 0 });
  });

  it('cuts what waited behind a full set of requests at maxDocs, and a flush sends all of it', async () => {
    const indexer = new BulkIndexer(stack.elasticsearch, { maxDocs: 2, maxBytes: 1024 * 1024, flushMs: 60_000, concurrency: 1 }, testLogger);
    const calls = [0, 1, 2, 3, 4].map((n) => indexer.index([{ index, id: `cut-${n}`, document: { count: n } }]));
    // Two full requests' worth and one document more: one request out, the rest waits for it.
    expect(indexer.stats.requests).toBe(1);
    await indexer.flush();
    expect((await Promise.all(calls)).flat().map((result) => result.status)).toEqual(['created', 'created', 'created', 'created', 'created']);
    expect(indexer.stats.requests).toBe(3);
  });
});
