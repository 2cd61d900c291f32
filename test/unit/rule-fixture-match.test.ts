import { mismatchOf } from '../../scripts/rule-fixtures';

describe('mismatchOf (a fixture expectation against a detection, as toMatchObject reads it)', () => {
  const detection = { reasonCode: 'threshold_reached', observedValue: 10, key: { 'actor.userId': 'u-17' }, distinct: { field: 'client.ip', values: ['a', 'b'] }, extra: true };

  it('matches a subset, at any depth', () => {
    expect(mismatchOf({ observedValue: 10, key: { 'actor.userId': 'u-17' }, distinct: { values: ['a', 'b'] } }, detection)).toBeUndefined();
    expect(mismatchOf({}, detection)).toBeUndefined();
  });

  it.each<[unknown, string]>([
    [{ observedValue: 9 }, 'observedValue: expected 9, got 10'],
    [{ key: { 'actor.userId': 'u-18' } }, 'key.actor.userId: expected "u-18", got "u-17"'],
    [{ distinct: { values: ['a'] } }, 'distinct.values: expected 1 items, got 2 (["a","b"])'],
    [{ distinct: { values: ['a', 'c'] } }, 'distinct.values[1]: expected "c", got "b"'],
    [{ missing: 1 }, 'missing: expected 1, got nothing'],
    [{ key: 'u-17' }, 'key: expected "u-17", got {"actor.userId":"u-17"}'],
    [{ observedValue: { at: 1 } }, 'observedValue: expected an object, got 10'],
  ])('names the first difference of %j', (expected, message) => {
    expect(mismatchOf(expected, detection)).toBe(message);
  });
});
