import type { estypes } from '@elastic/elasticsearch';
import { contentHash, enrich, resolveDuplicates, storedContentHash, toEventDocument, type HashedItem, type MultiGet } from '../../ingest';
import { StoreUnavailableError, type BulkItemResult } from '../../platform';
import { eventSchema, type VigilEvent } from '../../schemas';
import { kafkaPosition, minimalEvents, policyEvent, withField } from './fixtures';

const parse = (value: unknown): VigilEvent => eventSchema.parse(value);
const noGeo = (): undefined => undefined;

/** Reverses the key order of every object, recursively: the same content, other bytes. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([key, item]) => [key, reversedKeys(item)]));
}

describe('contentHash', () => {
  it('is the same for the same event whatever its key order, and for a default left out or spelled out', () => {
    const event = parse(policyEvent());
    expect(contentHash(parse(reversedKeys(policyEvent())))).toBe(contentHash(event));
    const minimal = minimalEvents().policy;
    expect(contentHash(parse({ ...minimal, correlation: {}, actor: {}, client: {} }))).toBe(contentHash(parse(minimal)));
  });

  it('changes with any field of the content', () => {
    const event = parse(policyEvent());
    expect(contentHash(parse(withField(policyEvent(), 'policy.outcome', 'pass')))).not.toBe(contentHash(event));
    expect(contentHash(parse(withField(policyEvent(), 'policy.resource.path', '/payments/124')))).not.toBe(contentHash(event));
    expect(contentHash(parse(withField(policyEvent(), 'labels.region', 'eu_east')))).not.toBe(contentHash(event));
  });

  it('leaves out what the pipeline adds: the document of a chunk redone elsewhere and later carries the same hash', () => {
    const event = parse(policyEvent());
    const first = toEventDocument(event, enrich(event, noGeo), kafkaPosition(), new Date('2024-05-01T10:00:00Z'));
    const redone = toEventDocument(event, enrich(event, () => ({ geo: { country_iso_code: 'GB' } })), { topic: 'other', partition: 3, offset: '99' }, new Date('2024-05-02T10:00:00Z'));
    expect(redone.vigil.content_hash).toBe(first.vigil.content_hash);
    expect(first.vigil.content_hash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('storedContentHash', () => {
  it('reads vigil.content_hash, else hashes event.original (documents indexed before the field)', () => {
    const event = parse(policyEvent());
    expect(storedContentHash({ vigil: { content_hash: 'abc' } })).toBe('abc');
    expect(storedContentHash({ event: { original: JSON.stringify(reversedKeys(event)) } })).toBe(contentHash(event));
    expect(storedContentHash({ event: { original: '{broken' } })).toBeUndefined();
    expect(storedContentHash(undefined)).toBeUndefined();
  });
});

describe('resolveDuplicates', () => {
  const items: HashedItem[] = [
    { index: 'ev-1', id: 'evt-a', contentHash: 'a'.repeat(64) },
    { index: 'ev-1', id: 'evt-b', contentHash: 'b'.repeat(64) },
    { index: 'ev-1', id: 'evt-c', contentHash: 'c'.repeat(64) },
  ];

  /** A multi-get over stored sources by id, recording every request. */
  function fakeMget(stored: Record<string, unknown>): { mget: MultiGet; requests: estypes.MgetRequest[] } {
    const requests: estypes.MgetRequest[] = [];
    const mget: MultiGet = (request) => {
      requests.push(request);
      const docs = (request.docs ?? []).map((doc) =>
        doc._id in stored ? { _index: doc._index ?? '', _id: doc._id, found: true, _source: stored[doc._id] } : { _index: doc._index ?? '', _id: doc._id, found: false },
      );
      return Promise.resolve({ docs } as estypes.MgetResponse);
    };
    return { mget, requests };
  }

  it('asks nothing when nothing answered 409', async () => {
    const { mget, requests } = fakeMget({});
    const results: BulkItemResult[] = [{ status: 'created' }, { status: 'rejected', reason: 'x' }, { status: 'created' }];
    expect(await resolveDuplicates(mget, items, results)).toStrictEqual(results);
    expect(requests).toHaveLength(0);
  });

  it('keeps a same-content 409 a duplicate and makes an other-content 409 a conflict, in one mget', async () => {
    const { mget, requests } = fakeMget({
      'evt-a': { vigil: { content_hash: 'a'.repeat(64) } },
      'evt-c': { vigil: { content_hash: 'f'.repeat(64) } },
    });
    const outcomes = await resolveDuplicates(mget, items, [{ status: 'duplicate' }, { status: 'created' }, { status: 'duplicate' }]);
    expect(outcomes[0]).toStrictEqual({ status: 'duplicate' });
    expect(outcomes[1]).toStrictEqual({ status: 'created' });
    expect(outcomes[2]).toStrictEqual({
      status: 'conflict',
      storedHash: 'f'.repeat(64),
      reason: `event id evt-c is already indexed in ev-1 with different content (stored content hash ${'f'.repeat(16)}, this one ${'c'.repeat(16)})`,
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]?.docs).toStrictEqual([
      { _index: 'ev-1', _id: 'evt-a' },
      { _index: 'ev-1', _id: 'evt-c' },
    ]);
  });

  it('calls a stored document with no hash at all a conflict: it can not be shown to be the same event', async () => {
    const { mget } = fakeMget({ 'evt-a': {} });
    const [outcome] = await resolveDuplicates(mget, items, [{ status: 'duplicate' }]);
    expect(outcome?.status).toBe('conflict');
  });

  it('throws a retriable error when a 409 document can not be read back, so the chunk is redone', async () => {
    const { mget } = fakeMget({});
    const failure = resolveDuplicates(mget, items, [{ status: 'duplicate' }]);
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toMatchObject({ retriable: true });
    const down: MultiGet = () => Promise.reject(new Error('connect ECONNREFUSED'));
    await expect(resolveDuplicates(down, items, [{ status: 'duplicate' }])).rejects.toMatchObject({ retriable: true, store: 'elasticsearch' });
  });
});
