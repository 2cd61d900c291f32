import { contentHash } from '../../ingest';
import { seededRandom } from '../../scripts/simulated-traffic';
import { eventSchema } from '../../schemas';
import { fuzzTraffic } from '../support/fuzz';
import { referenceCanonicalJson, referenceContentHash } from '../support/hot-path-reference';
import { mixedHour } from '../support/mixed-hour';
import { randomEvents } from '../support/random-events';
import { deviceEvent, invocationEvent, minimalEvents, policyEvent } from './fixtures';

/**
 * Stored documents carry `vigil.content_hash` and id-conflict detection compares new events
 * against it: the hash of an event may never change. The implementation was rewritten for speed
 * (issue 12); these pin it to the first one, kept in test/support/hot-path-reference.ts.
 */

/** The same content with every object's keys in another (seeded, shuffled) order. */
function shuffledKeys(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((item: unknown) => shuffledKeys(item, random));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value).map(([key, item]) => [key, shuffledKeys(item, random)] as const);
  for (let index = entries.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [entries[index], entries[other]] = [entries[other] as (typeof entries)[number], entries[index] as (typeof entries)[number]];
  }
  return Object.fromEntries(entries);
}

const fuzzEvents = fuzzTraffic({ seed: 11, count: 1000, goodShare: 1, idPrefix: 'evt-hash', maxMessageBytes: 256 * 1024, maxJsonDepth: 16, now: new Date('2026-06-01T10:00:00Z') })
  .flatMap((message) => (message.value === null ? [] : [JSON.parse(message.value.toString()) as unknown]))
  .flatMap((raw) => {
    const parsed = eventSchema.safeParse(raw);
    return parsed.success ? [parsed.data] : [];
  });

const generated: Array<[string, unknown[]]> = [
  ['the unit fixtures', [policyEvent(), invocationEvent(), deviceEvent(), ...Object.values(minimalEvents())].map((event) => eventSchema.parse(event))],
  ['an hour of mixed traffic', mixedHour(Date.parse('2026-06-01T10:00:00Z'))],
  ['random events of every family, kind and shape', randomEvents(21, 3000)],
  ['the fuzz generator’s events, valid or not, as parsed JSON', fuzzEvents],
];

/** Objects an event never is, but a stored `event.original` parsed back could come close to. */
const oddValues: unknown[] = [
  {},
  [],
  { b: 1, a: [3, { z: null, y: [] }, 'x'], c: { '': '', é: 'é', 東: '😀', '\u0000': '\n"\\' } },
  { 10: 'ten', 9: 'nine', '-1': 'minus', a10: 1, a9: 2, A: 3, _: 4, '~': 5 },
  { numbers: [0, -0, 1e21, 1e-7, 0.1 + 0.2, -1.5, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2] },
  { undefinedMember: undefined, kept: true, nested: { gone: undefined } },
  { arrayWithHoles: [1, undefined, 3] },
  { lone: '\ud800', pair: '\ud83d\ude00', keyOrder: { ab: 1, aB: 2, 'a b': 3, Ab: 4 } },
  // Code unit order where code points would differ (U+FFFF after a surrogate pair), in reverse,
  // at the size sorted by insertion and one past it (sorted by Array.prototype.sort).
  Object.fromEntries(['\uffff', '\ud83d\ude00', 'z', 'Z', '0', ...Array.from({ length: 19 }, (_, index) => `k${23 - index}`)].map((key, index) => [key, index])),
  Object.fromEntries(['\uffff', '\ud83d\ude00', 'z', 'Z', '0', ...Array.from({ length: 20 }, (_, index) => `k${24 - index}`)].map((key, index) => [key, index])),
];

describe('contentHash', () => {
  it.each(generated)('gives the first implementation’s hash for every one of %s', (_name, events) => {
    expect(events.length).toBeGreaterThan(5);
    const wrong = events.filter((event) => contentHash(event as Record<string, unknown>) !== referenceContentHash(event));
    expect(wrong.slice(0, 3)).toStrictEqual([]);
  });

  it('gives the first implementation’s hash for values no event holds (unicode and numeric keys, odd numbers, undefined)', () => {
    for (const value of oddValues) expect([referenceCanonicalJson(value), contentHash(value as Record<string, unknown>)]).toStrictEqual([referenceCanonicalJson(value), referenceContentHash(value)]);
  });

  it('does not depend on the order of keys, at any level', () => {
    const random = seededRandom(5);
    const events = randomEvents(22, 500);
    const moved = events.filter((event) => contentHash(shuffledKeys(event, random) as Record<string, unknown>) !== contentHash(event));
    expect(moved.map((event) => event.id)).toStrictEqual([]);
    // …while any change of content changes it.
    const first = events[0];
    expect(first).toBeDefined();
    if (first) expect(contentHash({ ...first, id: `${first.id}x` })).not.toBe(contentHash(first));
  });
});
