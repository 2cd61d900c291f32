import type { estypes } from '@elastic/elasticsearch';
import { StoreUnavailableError, type BulkItemResult } from '../platform';
import { contentHash } from './content-hash';

/** What became of one event document, once duplicates are told apart from id conflicts. */
export type IndexOutcome = BulkItemResult | { status: 'conflict'; reason: string; storedHash: string };

/** Elasticsearch's multi-get, as a function: the consumer passes its client's, tests a fake. */
export type MultiGet = (request: estypes.MgetRequest) => Promise<estypes.MgetResponse>;

/** A document that was sent for creation, with the content hash it carries. */
export interface HashedItem {
  index: string;
  id: string;
  contentHash: string;
}

interface StoredSource {
  vigil?: { content_hash?: unknown };
  event?: { original?: unknown };
}

/**
 * The hash of a stored event document: its `vigil.content_hash`, or, for a document indexed
 * before the field existed, the hash of its `event.original` (the validated event as JSON).
 */
export function storedContentHash(source: unknown): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const { vigil, event } = source as StoredSource;
  if (typeof vigil?.content_hash === 'string') return vigil.content_hash;
  if (typeof event?.original !== 'string') return undefined;
  try {
    const original: unknown = JSON.parse(event.original);
    return typeof original === 'object' && original !== null ? contentHash(original as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The `id_conflict` reason of an event whose id is indexed with another content hash. */
export function conflictReason(item: HashedItem, storedHash: string): string {
  return `event id ${item.id} is already indexed in ${item.index} with different content (stored content hash ${storedHash.slice(0, 16)}, this one ${item.contentHash.slice(0, 16)})`;
}

/**
 * Tells a redelivery from an id collision. A 409 on `create` means a document with this id is
 * already there: the same content (a redelivery, a chunk redone) stays a harmless duplicate,
 * other content is a conflict for the dead-letter topic, never dropped. One mget for all the
 * 409s of a chunk, reading only the two fields that hold the hash; none when there are none.
 * @throws StoreUnavailableError (retriable) when Elasticsearch can't answer, or a document
 *   that answered 409 is gone (deleted since): the chunk is redone and decides again.
 */
export async function resolveDuplicates(
  mget: MultiGet,
  items: readonly HashedItem[],
  results: readonly BulkItemResult[],
): Promise<IndexOutcome[]> {
  const duplicates = results.flatMap((result, position) => (result.status === 'duplicate' ? [position] : []));
  if (duplicates.length === 0) return [...results];
  let response;
  try {
    response = await mget({
      docs: duplicates.map((position) => ({ _index: items[position]?.index ?? '', _id: items[position]?.id ?? '' })),
      _source_includes: ['vigil.content_hash', 'event.original'],
      realtime: true,
    });
  } catch (error) {
    throw new StoreUnavailableError('elasticsearch', `mget of ${duplicates.length} existing documents failed: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  const outcomes: IndexOutcome[] = [...results];
  response.docs.forEach((doc, rank) => {
    const position = duplicates[rank];
    const item = position === undefined ? undefined : items[position];
    if (position === undefined || item === undefined) return;
    if (!('found' in doc) || !doc.found) {
      throw new StoreUnavailableError('elasticsearch', `document ${item.id} in ${item.index} answered 409 but can't be read back`);
    }
    const storedHash = storedContentHash(doc._source) ?? 'none';
    if (storedHash !== item.contentHash) {
      outcomes[position] = { status: 'conflict', storedHash, reason: conflictReason(item, storedHash) };
    }
  });
  return outcomes;
}
