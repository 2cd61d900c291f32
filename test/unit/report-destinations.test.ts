import { join } from 'node:path';
import { reportDestinations, reportQuietPeriod } from '../../app';
import { loadRuleSet, parseDestinations, type GroupStore } from '../../detectors';
import { createLogger } from '../../platform';

function logged(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { logger: createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } }), lines };
}

const store = (waiting: () => Promise<Map<string, number>>): GroupStore => ({ waiting }) as unknown as GroupStore;
const chat = parseDestinations(JSON.stringify([{ name: 'chat', type: 'slack', url: 'https://hooks.example.com/x' }]));

describe('what alerting says at start about its destinations', () => {
  it('names, at error, the destinations no longer configured that incidents wait at, with how many', async () => {
    const { logger, lines } = logged();
    await reportDestinations(store(() => Promise.resolve(new Map([['chat', 3], ['hook', 2]]))), chat, logger);
    expect(lines.map((line) => [line.level, line.waiting])).toEqual([[50, { hook: 2 }]]);
    expect(lines[0]?.msg).toMatch(/^notifications wait for destinations that are no longer configured \(VIGIL_ALERT_DESTINATIONS\)/);
  });

  it('warns when there is no destination at all, and does not fail the start when the store is away', async () => {
    const { logger, lines } = logged();
    await reportDestinations(store(() => Promise.reject(new Error('redis away'))), [], logger);
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [40, 'alerting runs with no destination (VIGIL_ALERT_DESTINATIONS is unset or []): alerts are indexed, nobody is notified'],
      [20, 'could not look for notifications waiting at destinations no longer configured'],
    ]);
  });

  it('warns about destinations reached over plain http, other than on this host', async () => {
    const { logger, lines } = logged();
    const mixed = parseDestinations(
      JSON.stringify([
        { name: 'clear', type: 'slack', url: 'http://hooks.example.com/x' },
        { name: 'local', type: 'slack', url: 'http://127.0.0.1:9000/x' },
        { name: 'secure', type: 'slack', url: 'https://hooks.example.com/y' },
      ]),
    );
    await reportDestinations(store(() => Promise.resolve(new Map<string, number>())), mixed, logger);
    expect(lines.map((line) => [line.level, line.destinations])).toEqual([[40, ['clear']]]);
  });

  // A misspelt routing tag was accepted, and the destination silently never paged.
  it('warns about a destination routing on tags no loaded rule carries, with the nearest known tag', async () => {
    const { logger, lines } = logged();
    const routed = parseDestinations(
      JSON.stringify([
        { name: 'dos-pager', type: 'slack', url: 'https://hooks.example.com/x', tags: ['DoS', 'T1498'] },
        { name: 'fraud', type: 'slack', url: 'https://hooks.example.com/y', tags: ['risk', 'payments-team'] },
        { name: 'all', type: 'slack', url: 'https://hooks.example.com/z' },
      ]),
    );
    await reportDestinations(store(() => Promise.resolve(new Map<string, number>())), routed, logger, new Set(['dos', 'T1498', 'T1110', 'risk']));
    expect(lines.map((line) => [line.level, line.destination, line.tags, line.didYouMean])).toEqual([
      [40, 'dos-pager', ['DoS'], { DoS: 'dos' }],
      [40, 'fraud', ['payments-team'], undefined],
    ]);
    expect(lines[0]?.msg).toBe('a destination routes on tags no loaded rule carries (tags are case-sensitive): no alert will reach it for them; check VIGIL_ALERT_DESTINATIONS');
  });

  it('checks no tags when the rules are not known', async () => {
    const { logger, lines } = logged();
    const routed = parseDestinations(JSON.stringify([{ name: 'dos-pager', type: 'slack', url: 'https://hooks.example.com/x', tags: ['DoS'] }]));
    await reportDestinations(store(() => Promise.resolve(new Map<string, number>())), routed, logger);
    expect(lines).toEqual([]);
  });

  it('says nothing when every waiting incident has its destination', async () => {
    const { logger, lines } = logged();
    await reportDestinations(store(() => Promise.resolve(new Map([['chat', 1]]))), chat, logger);
    expect(lines).toEqual([]);
  });
});

describe('what alerting says at start about its quiet period', () => {
  const rules = loadRuleSet([join(__dirname, '..', '..', 'detectors', 'rules', 'default')]);
  const surges = rules.rules.flatMap(({ rule }) => (rule.type === 'surge' ? [{ rule: rule.id, bucketMs: rule.bucket }] : []));

  // A quiet period of a minute or less against the default pack's one-minute surge buckets: each
  // minute of a lasting surge opened and notified an alert of its own, without a word at start.
  it('names, at warn, the surge rules whose bucket is not shorter than the quiet period', () => {
    expect(surges.length).toBeGreaterThan(1);
    expect(new Set(surges.map(({ bucketMs }) => bucketMs))).toEqual(new Set([60_000]));
    const { logger, lines } = logged();
    reportQuietPeriod(rules, 60_000, logger);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe(40);
    expect(lines[0]?.rules).toEqual(surges);
    expect(lines[0]?.quietPeriodMs).toBe(60_000);
    expect(lines[0]?.msg).toMatch(/^VIGIL_ALERT_RESOLVE_AFTER_MS \(60000 ms\) is not longer than the bucket of surge rules [a-z-]+, /);
  });

  it('says nothing with a longer quiet period (the default 15 minutes), or when the rules are not known', () => {
    const { logger, lines } = logged();
    reportQuietPeriod(rules, 60_001, logger);
    reportQuietPeriod(rules, 15 * 60_000, logger);
    reportQuietPeriod(undefined, 1_000, logger);
    expect(lines).toEqual([]);
  });
});
