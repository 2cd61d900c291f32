/**
 * A bounded memory of the event documents this process saw acknowledged by Elasticsearch: for
 * each (index, id), the content hash the stored document holds.
 *
 * Why: a redelivery (same id, same content) and an id collision (same id, other content) are
 * valid events, and without this memory each is correlated, run through the rules and indexed
 * before Elasticsearch's 409 and the mget of the stored hash tell them apart
 * (id-conflicts.ts). Under hostile traffic they are a large share of the valid events. With the
 * memory, one whose id this process already saw indexed is decided before any of that: the same
 * hash is a duplicate, another hash an `id_conflict`, exactly as Elasticsearch would answer.
 *
 * It is an optimisation only: an id it doesn't hold (a restart, another instance indexed it, it
 * was evicted) takes today's path through Elasticsearch. So it is filled only with what
 * Elasticsearch acknowledged, in a chunk whose offsets were committed.
 *
 * Bounded by entries and by the characters of its keys and hashes (ids and index names are
 * strings of bounded length, but a producer chooses them); the oldest entry is evicted first.
 */
export class RecentIds {
  protected readonly entries = new Map<string, string>();
  /**
   * Walks the entries oldest first, kept from one eviction to the next. A map iterator goes on
   * over entries set after it was made, in insertion order, and skips deleted ones; every entry
   * before its position is deleted (evicted by it, or moved to the newest end when remembered
   * again), so its next entry is always the oldest one held. A fresh iterator per eviction would
   * start at the table's first slot and step over every entry deleted since the table was last
   * rebuilt: thousands per eviction at the default bound, 11 µs of CPU per remembered id
   * (docs/performance.md, "The recent ids' eviction").
   */
  private oldestFirst: MapIterator<[string, string]> | undefined;
  private characters = 0;

  /**
   * @param maxEntries - the most ids held; 0 holds none (the memory is off).
   * @param maxCharacters - the most characters of keys and hashes held together.
   *   @defaultValue 64 Mi characters (about 128 MiB of UTF-16 at worst; ids of ordinary length
   *   reach the entry bound long before).
   */
  constructor(
    private readonly maxEntries: number,
    private readonly maxCharacters = 64 * 1024 * 1024,
  ) {}

  /** The content hash the document (index, id) was acknowledged with, if this memory holds it. */
  get(index: string, id: string): string | undefined {
    return this.entries.get(keyOf(index, id));
  }

  /** Records an acknowledged document; a recorded one moves to the newest end. */
  remember(index: string, id: string, contentHash: string): void {
    if (this.maxEntries === 0) return;
    const key = keyOf(index, id);
    const cost = key.length + contentHash.length;
    if (cost > this.maxCharacters) return;
    const previous = this.entries.get(key);
    if (previous !== undefined) {
      this.entries.delete(key);
      this.characters -= key.length + previous.length;
    }
    this.entries.set(key, contentHash);
    this.characters += cost;
    while (this.entries.size > this.maxEntries || this.characters > this.maxCharacters) {
      const oldest = this.oldest();
      if (oldest === undefined) break;
      const [oldestKey, oldestHash] = oldest;
      this.entries.delete(oldestKey);
      this.characters -= oldestKey.length + oldestHash.length;
    }
  }

  /** Forgets a document: returns the hash it was held with, if it was held. */
  take(index: string, id: string): string | undefined {
    const key = keyOf(index, id);
    const held = this.entries.get(key);
    if (held === undefined) return undefined;
    this.entries.delete(key);
    this.characters -= key.length + held.length;
    return held;
  }

  /** The oldest entry held, the next to be evicted; `undefined` when none is held. */
  protected oldest(): [string, string] | undefined {
    if (this.entries.size === 0) return undefined;
    this.oldestFirst ??= this.entries.entries();
    let next = this.oldestFirst.next();
    if (next.done === true) {
      // Spent (an iterator that once said done stays done): a new one starts at the oldest.
      this.oldestFirst = this.entries.entries();
      next = this.oldestFirst.next();
    }
    return next.done === true ? undefined : next.value;
  }

  /** How many ids are held. */
  get size(): number {
    return this.entries.size;
  }

  /** Characters of keys and hashes held (the byte bound's measure). */
  get heldCharacters(): number {
    return this.characters;
  }
}

/** Index names can't hold a NUL, so it separates the two without ambiguity. */
function keyOf(index: string, id: string): string {
  return `${index}\u0000${id}`;
}
