import type { Client } from '@elastic/elasticsearch';
import { BulkIndexer, StoreUnavailableError, createLogger } from '../../platform';

/** A client whose bulk requests all get `answer` (the first gets the first of several, the next the next, the last repeated), counting them. */
function answering(...answers: unknown[]): { client: Client; requests: () => number } {
  let requests = 0;
  const client = {
    transport: {
      request: () => {
        requests++;
        return Promise.resolve(answers[Math.min(requests, answers.length) - 1]);
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

  it.each([
    ['a missing privilege', 403, 'security_exception', 'action [indices:admin/auto_create] is unauthorized for API key id [k1] of user [vigil]'],
    ['a write block', 403, 'cluster_block_exception', 'index [vigil-events-policy-2026.12.06] blocked by: [FORBIDDEN/8/index write (api)];'],
    ['an index that may not be created', 404, 'index_not_found_exception', 'no such index [vigil-events-policy-2026.12.06] and [action.auto_create_index] is [false]'],
    ['the cluster\'s shard limit', 400, 'validation_exception', 'Validation Failed: 1: this action would add [2] shards, but this cluster currently has [1000]/[1000] maximum normal shards open;'],
  ])('a document refused for %s is pushed back, never answered as refused: a StoreUnavailableError naming the reason once retries are spent', async (_what, status, type, reason) => {
    const refused = { create: { status, error: { type, reason } } };
    const { client, requests } = answering({ items: [{ create: { status: 201 } }, refused] }, { items: [refused] });
    const indexer = new BulkIndexer(client, options, createLogger({ level: 'silent' }));
    const outcome = await indexer.index([item, { ...item, id: 'e-2' }]).then(
      (results) => results,
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(StoreUnavailableError);
    expect((outcome as StoreUnavailableError).retriable).toBe(true);
    expect((outcome as Error).message).toContain(`1 of 1 documents refused for a reason outside them, kept until it is fixed: ${status} ${type}: ${reason}`);
    expect(indexer.stats.rejected).toBe(0);
    // The first attempt and one retry (retries: 1), each sending what was not yet taken.
    expect(requests()).toBe(2);
  });

  it('a refusal that is the document\'s own (a 400 validation_exception about anything but shards) is answered as refused', async () => {
    const { client } = answering({ items: [{ create: { status: 400, error: { type: 'validation_exception', reason: 'Validation Failed: 1: id is too long' } } }] });
    const indexer = new BulkIndexer(client, options, createLogger({ level: 'silent' }));
    expect(await indexer.index([item])).toEqual([{ status: 'rejected', reason: 'validation_exception: Validation Failed: 1: id is too long' }]);
  });
});
