import { DEFAULT_RULES_PATH, describeSilence, loadRuleSet, silenceInForce, silenceMatches, silenceVocabularyOf, unknownToRules, type Silence } from '../../detectors';
import { parseSilencesArgs } from '../../scripts/silences';

describe('parseSilencesArgs', () => {
  it('reads add with matchers, a rule, a duration and a comment; list; expire', () => {
    expect(parseSilencesArgs(['add', '--match', 'client.ip=203.0.113.7', '--match', 'invocation.route=/v1/a=b', '--rule', 'credential-stuffing', '--for', '2h', '--comment', 'pen test, ticket SEC-12'])).toStrictEqual({
      command: 'add',
      // Only the first "=" splits: a value may hold one.
      matchers: { 'client.ip': '203.0.113.7', 'invocation.route': '/v1/a=b' },
      rule: 'credential-stuffing',
      forMs: 2 * 3_600_000,
      comment: 'pen test, ticket SEC-12',
    });
    expect(parseSilencesArgs(['add', '--rule', 'geo-velocity', '--for', '30m', '--comment', 'travel week'])).toStrictEqual({ command: 'add', matchers: {}, rule: 'geo-velocity', forMs: 1_800_000, comment: 'travel week' });
    expect(parseSilencesArgs(['list'])).toStrictEqual({ command: 'list' });
    expect(parseSilencesArgs(['expire', 'abc'])).toStrictEqual({ command: 'expire', id: 'abc' });
  });

  it.each([
    [[], 'a subcommand is needed: add, list or expire'],
    [['mute'], 'unknown subcommand "mute"; use add, list or expire'],
    [['add', '--for', '1h', '--comment', 'x'], 'add needs at least one --match FIELD=VALUE or a --rule'],
    [['add', '--match', 'client.ip', '--for', '1h', '--comment', 'x'], '--match: expected FIELD=VALUE (client.ip=203.0.113.7), not "client.ip"'],
    [['add', '--match', 'client.ip=', '--for', '1h', '--comment', 'x'], '--match: expected FIELD=VALUE'],
    [['add', '--match', 'a=1', '--match', 'a=2', '--for', '1h', '--comment', 'x'], '--match: a is given twice'],
    [['add', '--match', 'a=1', '--comment', 'x'], 'add needs --for DURATION'],
    [['add', '--match', 'a=1', '--for', '2', '--comment', 'x'], '--for: expected a duration such as 30s, 5m, 2h or 30d, not "2"'],
    [['add', '--match', 'a=1', '--for', '31d', '--comment', 'x'], '--for: at most 30d, not 31d'],
    [['add', '--match', 'a=1', '--for', '1h'], 'add needs --comment TEXT'],
    [['add', '--match', 'a=1', '--for', '1h', '--comment', '  '], 'add needs --comment TEXT'],
    [['add', '--match'], '--match needs a value'],
    [['add', '--until', 'tomorrow'], 'unknown option --until for silences add'],
    [['add', '--rule', 'a', '--rule', 'b', '--for', '1h', '--comment', 'x'], '--rule is given twice'],
    [['add', '--match', 'a=1', '--for', '1h', '--for', '2h', '--comment', 'x'], '--for is given twice'],
    [['list', 'all'], 'list takes no arguments, not "all"'],
    [['expire'], 'expire needs the id of a silence'],
    [['expire', 'a', 'b'], 'expire takes one id, not "a b"'],
  ])('refuses %j: %s', (args, message) => {
    expect(() => parseSilencesArgs(args)).toThrow(message);
  });
});

describe('silences', () => {
  const silence = (overrides: Partial<Silence> = {}): Silence => ({
    id: 's-1',
    matchers: { 'client.ip': '203.0.113.7' },
    startsAt: '2026-12-05T10:00:00.000Z',
    endsAt: '2026-12-05T12:00:00.000Z',
    comment: 'pen test',
    ...overrides,
  });
  const alert = (key: Record<string, string>, rules = ['credential-stuffing'], entities?: string[]) => ({ key, rules, ...(entities ? { entities } : {}) });

  it('matches an alert whose key or linked entities hold every matcher, and whose rules hold the rule when one is given', () => {
    expect(silenceMatches(silence(), alert({ 'client.ip': '203.0.113.7' }))).toBe(true);
    expect(silenceMatches(silence(), alert({ 'client.ip': '203.0.113.8' }))).toBe(false);
    // A takeover's incident keyed on its victim, with the attacker's IP linked into it.
    expect(silenceMatches(silence(), alert({ 'actor.userId': 'u-17' }, ['account-takeover-sequence'], ['actor.userId=u-17', 'client.ip=203.0.113.7']))).toBe(true);
    expect(silenceMatches(silence({ matchers: { 'client.ip': '203.0.113.7', 'actor.userId': 'u-18' } }), alert({ 'client.ip': '203.0.113.7' }))).toBe(false);
    expect(silenceMatches(silence({ rule: 'authn-failures-per-ip' }), alert({ 'client.ip': '203.0.113.7' }))).toBe(false);
    expect(silenceMatches(silence({ rule: 'credential-stuffing' }), alert({ 'client.ip': '203.0.113.7' }, ['authn-failures-per-ip', 'credential-stuffing']))).toBe(true);
    // A rule alone: every alert of that rule.
    expect(silenceMatches(silence({ matchers: {}, rule: 'credential-stuffing' }), alert({ 'client.ip': '198.51.100.1' }))).toBe(true);
  });

  it('is in force from its start to (not including) its end, and says so', () => {
    const at = (iso: string): number => Date.parse(iso);
    expect(silenceInForce(silence(), at('2026-12-05T09:59:59.999Z'))).toBe(false);
    expect(silenceInForce(silence(), at('2026-12-05T10:00:00.000Z'))).toBe(true);
    expect(silenceInForce(silence(), at('2026-12-05T12:00:00.000Z'))).toBe(false);
    expect(describeSilence(silence({ rule: 'credential-stuffing' }), at('2026-12-05T11:00:00Z'))).toBe('s-1  active until 2026-12-05T12:00:00.000Z  client.ip=203.0.113.7, rule credential-stuffing  (pen test)');
    expect(describeSilence(silence(), at('2026-12-05T13:00:00Z'))).toBe('s-1  ended 2026-12-05T12:00:00.000Z  client.ip=203.0.113.7  (pen test)');
  });
});

describe('what a silence may name', () => {
  const vocabulary = silenceVocabularyOf(loadRuleSet([DEFAULT_RULES_PATH]).rules, 'the default rule pack');

  it('knows the rules of the set and the fields their alerts are keyed on, the default keys included', () => {
    expect(vocabulary.rules.has('credential-stuffing')).toBe(true);
    // The default pack's groupBy fields, and the user, IP and consumer of a stateless detection without one.
    expect([...vocabulary.fields].sort()).toStrictEqual(['actor.consumerId', 'actor.userId', 'client.ip', 'invocation.resource.api', 'invocation.route', 'rule.id']);
    // What the alerter adds to any rule set: the risk rule, and a storm guard's campaign alert keyed by its rule.
    expect(vocabulary.rules.has('risk-threshold')).toBe(true);
    expect(unknownToRules({ matchers: { 'rule.id': 'credential-stuffing' }, rule: 'risk-threshold' }, vocabulary)).toBeUndefined();
    expect(silenceVocabularyOf([{ rule: { id: 'r' } as never, groupBy: ['client.geo.country_iso_code'] }], 'x').fields.has('client.geo.country_iso_code')).toBe(true);
  });

  it('accepts what the rules can produce', () => {
    expect(unknownToRules({ matchers: { 'client.ip': '203.0.113.7', 'invocation.route': '/v1/login' }, rule: 'credential-stuffing' }, vocabulary)).toBeUndefined();
    expect(unknownToRules({ matchers: {}, rule: 'credential-stuffing' }, vocabulary)).toBeUndefined();
  });

  it('names a misspelt rule or field, with the nearest it knows, and every problem at once', () => {
    expect(unknownToRules({ matchers: {}, rule: 'credential-stufing' }, vocabulary)).toBe(
      'no rule "credential-stufing" in the default rule pack; did you mean credential-stuffing?: the silence would hold back nothing',
    );
    expect(unknownToRules({ matchers: { 'client.iq': '203.0.113.7', 'source.ip': '203.0.113.7' }, rule: 'nothing-like-it-at-all' }, vocabulary)).toBe(
      [
        `no rule "nothing-like-it-at-all" in the default rule pack (its rules: ${[...vocabulary.rules].sort().join(', ')})`,
        'no alert of the default rule pack has client.iq in its key or entities; did you mean client.ip? (they have actor.consumerId, actor.userId, client.ip, invocation.resource.api, invocation.route, rule.id)',
        'no alert of the default rule pack has source.ip in its key or entities (they have actor.consumerId, actor.userId, client.ip, invocation.resource.api, invocation.route, rule.id): the silence would hold back nothing',
      ].join('; '),
    );
  });
});
