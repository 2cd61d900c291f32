import type { Client } from '@elastic/elasticsearch';
import { BulkIndexer, StoreUnavailableError, createLogger } from '../../platform';

/** A client whose bulk requests all get `answer`, counting them. */
function answering(answer: unknown): { client: Client; requests: () => number } {
  let requests = 0;
  const client = {
    transport: {
      request: () => {
        requests++;
        return Promise.resolve(answer);
      },
    },
  } as unknown as Client;
  return { client, requests: () => requests };
}

describe('BulkIndexer against answers Elasticsearch should not give', () => {
  const options = { maxDocs: 100, maxBytes: 1_000_000, flushMs: 0, retries: 1, initialDelayMs: 1, maxDelayMs: 1 };
  const item = { index: 'events', id: 'e-1', document: { a: 1 } };

  it('an item answering neither create nor index fails the request (retried, then a StoreUnavailableError naming it), never leaving the documents waiting', async () => {
    const { client, requests } = answering({ items: [{ update: { status: 200 } }] });
    const indexer = new BulkIndexer(client, options, createLogger({ level: 'silent' }));
    const outcome = await Promise.race([
      indexer.index([item]).then(
        () => 'resolved',
        (error: unknown) => error,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2_000)),
    ]);
    expect(outcome).toBeInstanceOf(StoreUnavailableError);
    expect((outcome as Error).message).toMatch(/bulk response item 0 answers update, not create or index/);
    expect(requests()).toBe(2);
  });

  it('a created, a duplicate and a refused item are each answered', async () => {
    const { client } = answering({ items: [{ create: { status: 201 } }, { create: { status: 409 } }, { create: { status: 400, error: { type: 'mapper_parsing_exception', reason: 'bad' } } }] });
    const indexer = new BulkIndexer(client, options, createLogger({ level: 'silent' }));
    const results = await indexer.index([item, { ...item, id: 'e-2' }, { ...item, id: 'e-3' }]);
    expect(results).toEqual([{ status: 'created' }, { status: 'duplicate' }, { status: 'rejected', reason: 'mapper_parsing_exception: bad' }]);
  });
});
