import { durationSchema, formatDuration } from '../../detectors';

describe('durationSchema', () => {
  it.each([
    ['250ms', 250],
    ['1s', 1000],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['30d', 2_592_000_000],
    ['90m', 5_400_000],
  ])('parses %s to %d ms', (text, ms) => {
    expect(durationSchema.parse(text)).toBe(ms);
  });

  it.each([['0s'], ['0ms'], ['5 minutes'], ['5'], ['1.5h'], ['-5m'], ['5M'], ['5w'], [''], [' 5m'], ['5m '], ['m']])('refuses %j', (text) => {
    expect(durationSchema.safeParse(text).success).toBe(false);
  });

  it('refuses a number: a rule file writes units', () => {
    expect(durationSchema.safeParse(300_000).success).toBe(false);
  });

  it('says what it expects', () => {
    const result = durationSchema.safeParse('5 minutes');
    expect(result.error?.issues.map((issue) => issue.message)).toStrictEqual(['expected a duration such as 30s, 5m, 2h or 30d']);
  });
});

describe('formatDuration', () => {
  it.each([
    [272_000, '4m32s'],
    [300_000, '5m'],
    [1000, '1s'],
    [3_600_000, '1h'],
    [7_205_000, '2h5s'],
    [90_061_000, '1d1h1m1s'],
    [2_592_000_000, '30d'],
    [250, '250ms'],
    [0, '0ms'],
    [1499, '1s'],
    [59_600, '1m'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([['250ms'], ['30s'], ['5m'], ['2h'], ['30d']])('gives back a single-unit duration as it was written: %s', (text) => {
    expect(formatDuration(durationSchema.parse(text))).toBe(text);
  });
});
