import { RecentIds } from '../../ingest/recent-ids';
import { ReferenceRecentIds } from '../support/hot-path-reference';

const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

describe('the memory of acknowledged event ids', () => {
  it('answers the content hash an (index, id) was remembered with, and nothing for another index or id', () => {
    const memory = new RecentIds(10);
    memory.remember('vigil-events-policy-2026.12.02', 'e-1', HASH_A);
    expect(memory.get('vigil-events-policy-2026.12.02', 'e-1')).toBe(HASH_A);
    // Ids are unique per daily index: the same id on another day is another document.
    expect(memory.get('vigil-events-policy-2026.12.03', 'e-1')).toBeUndefined();
    expect(memory.get('vigil-events-policy-2026.12.02', 'e-2')).toBeUndefined();
  });

  it('keeps no more than its entries, forgetting the oldest first', () => {
    const memory = new RecentIds(3);
    for (const id of ['e-1', 'e-2', 'e-3', 'e-4']) memory.remember('index', id, HASH_A);
    expect(memory.size).toBe(3);
    expect(memory.get('index', 'e-1')).toBeUndefined();
    expect(memory.get('index', 'e-4')).toBe(HASH_A);
  });

  it('moves an id remembered again to the newest end, with the hash given last', () => {
    const memory = new RecentIds(2);
    memory.remember('index', 'e-1', HASH_A);
    memory.remember('index', 'e-2', HASH_A);
    memory.remember('index', 'e-1', HASH_B);
    memory.remember('index', 'e-3', HASH_A);
    expect(memory.get('index', 'e-2')).toBeUndefined();
    expect(memory.get('index', 'e-1')).toBe(HASH_B);
    expect(memory.size).toBe(2);
  });

  it('keeps no more than its characters: long ids chosen by a producer evict the oldest, and one over the bound is not kept', () => {
    const memory = new RecentIds(1000, 1000);
    memory.remember('index', 'e-1', HASH_A);
    memory.remember('index', `e-${'x'.repeat(400)}`, HASH_A);
    memory.remember('index', `f-${'x'.repeat(400)}`, HASH_A);
    expect(memory.heldCharacters).toBeLessThanOrEqual(1000);
    expect(memory.get('index', 'e-1')).toBeUndefined();
    expect(memory.get('index', `f-${'x'.repeat(400)}`)).toBe(HASH_A);
    memory.remember('index', 'y'.repeat(2000), HASH_A);
    expect(memory.get('index', 'y'.repeat(2000))).toBeUndefined();
    expect(memory.get('index', `f-${'x'.repeat(400)}`)).toBe(HASH_A);
    expect(memory.heldCharacters).toBeLessThanOrEqual(1000);
  });

  it('takes an id out: its hash once, then nothing, its characters given back, the others kept in order', () => {
    const memory = new RecentIds(2);
    memory.remember('index', 'e-1', HASH_A);
    memory.remember('index', 'e-2', HASH_B);
    const held = memory.heldCharacters;
    expect(memory.take('index', 'e-1')).toBe(HASH_A);
    expect(memory.take('index', 'e-1')).toBeUndefined();
    expect(memory.take('other', 'e-2')).toBeUndefined();
    expect(memory.size).toBe(1);
    expect(memory.heldCharacters).toBeLessThan(held);
    memory.remember('index', 'e-3', HASH_A);
    memory.remember('index', 'e-4', HASH_A);
    expect(memory.get('index', 'e-2')).toBeUndefined();
    expect([memory.get('index', 'e-3'), memory.get('index', 'e-4')]).toStrictEqual([HASH_A, HASH_A]);
  });

  it('holds nothing when it is off (0 entries)', () => {
    const memory = new RecentIds(0);
    memory.remember('index', 'e-1', HASH_A);
    expect(memory.size).toBe(0);
    expect(memory.get('index', 'e-1')).toBeUndefined();
  });

  // The eviction keeps one iterator from one eviction to the next (recent-ids.ts): across the
  // map's rebuilds, ids remembered again and the character bound, it must forget exactly what the
  // fresh-iterator version forgot, in the same order.
  it('forgets exactly what the implementation before forgot, over 60,000 mixed operations', () => {
    let seed = 20261204;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (const [maxEntries, maxCharacters] of [
      [500, undefined],
      [2000, 60_000],
    ] as const) {
      const now = new RecentIds(maxEntries, maxCharacters);
      const before = new ReferenceRecentIds(maxEntries, maxCharacters);
      const seen: string[] = [];
      for (let step = 0; step < 30_000; step++) {
        const roll = random();
        // A new id (some long), an id seen before remembered again with another hash, or a look-up.
        const id = roll < 0.6 || seen.length === 0 ? `e-${step}${roll < 0.05 ? 'x'.repeat(Math.floor(random() * 3000)) : ''}` : (seen[Math.floor(random() * seen.length)] ?? 'e-0');
        const index = random() < 0.5 ? 'vigil-events-policy-2026.12.04' : 'vigil-events-device-2026.12.04';
        if (roll < 0.85) {
          const hash = random() < 0.5 ? HASH_A : HASH_B;
          now.remember(index, id, hash);
          before.remember(index, id, hash);
          seen.push(id);
        }
        expect(now.get(index, id)).toBe(before.get(index, id));
        if (step % 499 === 0) {
          expect([now.size, now.heldCharacters]).toEqual([before.size, before.heldCharacters]);
          for (const probe of seen.slice(-100)) expect(now.get(index, probe)).toBe(before.get(index, probe));
        }
      }
      expect(now.size).toBe(before.size);
      expect(now.size).toBeGreaterThan(0);
    }
  });
});

