import {
  cardinalityRuleSchema,
  cardinalityType,
  compileFilter,
  detectionId,
  evaluateCardinality,
  evaluateMatch,
  evaluateNewValue,
  evaluateSequence,
  evaluateThreshold,
  matchRuleSchema,
  matchedSteps,
  newValueRuleSchema,
  parseDistinctShareState,
  sequenceRuleSchema,
  thresholdRuleSchema,
  type DetectionInput,
  type DistinctState,
  type Evaluation,
  type EvaluationContext,
  type SequenceState,
  type WindowState,
} from '../../detectors';
import { eventSchema, type VigilEvent } from '../../schemas';
import { deviceEvent, policyEvent, withField } from './fixtures';

/** The time of the example events (12:30:00.250 at +02:00), in ms. */
const T = Date.parse('2024-05-01T10:30:00.250Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;

function event(example: object, changes: Record<string, unknown> = {}): VigilEvent {
  let value: object = example;
  for (const [path, replacement] of Object.entries(changes)) value = withField(value, path, replacement);
  return eventSchema.parse(value);
}

/** A policy event at `time` ms with the given id. */
const policyAt = (id: string, time: number, changes: Record<string, unknown> = {}): DetectionInput => ({
  event: event(policyEvent(), { id, time: new Date(time).toISOString(), ...changes }),
});

const common = { version: 1, description: 'A rule under test.', severity: 'medium' } as const;

/** The detection of an evaluation that must have fired. */
function detected(evaluation: Evaluation): Extract<Evaluation, { outcome: 'detected' }>['detection'] {
  if (evaluation.outcome !== 'detected') throw new Error(`expected a detection, got ${evaluation.reasonCode}`);
  return evaluation.detection;
}

describe('evaluateThreshold', () => {
  const rule = thresholdRuleSchema.parse({
    ...common,
    id: 'authn-failures-per-user',
    name: 'Repeated authentication failures',
    noun: 'failed logins',
    type: 'threshold',
    groupBy: ['actor.userId'],
    window: '5m',
    threshold: 10,
    distinctField: 'client.ip',
  });
  const context: EvaluationContext = { key: { 'actor.userId': 'u-17' }, keyText: 'actor.userId=u-17', now: T };
  const input = policyAt('evt-last-0010', T);
  const ips = ['81.2.69.142', '81.2.69.143', '2001:db8::7'];

  /** A window of `count` events, the first 4m32s before T and the last at T, from three IPs. */
  function window(count: number, extra: Partial<WindowState> = {}): WindowState {
    const members = Array.from({ length: count }, (_, index) => ({
      id: index === count - 1 ? 'evt-last-0010' : `evt-${String(index).padStart(4, '0')}-fail`,
      value: ips[index % ips.length] ?? '',
      time: count === 1 ? T : T - 272_000 + Math.round((272_000 * index) / (count - 1)),
    }));
    return { count, members, ...extra };
  }

  it('stays quiet one event below the threshold', () => {
    expect(evaluateThreshold(input, window(9), rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_threshold' });
  });

  it('fires at the threshold, with a sentence an analyst can act on', () => {
    const state = window(10);
    const detection = detected(evaluateThreshold(input, state, rule, context));
    expect(detection.reason).toBe('10 failed logins for user u-17 from 3 IPs in 4m32s; threshold 10 in 5m.');
    expect(detection).toStrictEqual({
      reasonCode: 'threshold_reached',
      reason: detection.reason,
      observedValue: 10,
      threshold: 10,
      distinct: { field: 'client.ip', values: ips },
      eventIds: state.members.map((member) => member.id),
      windowStart: T - 272_000,
      windowEnd: T,
      // Named by the 5-minute period its window ends in (epoch-aligned), not by its oldest event.
      identity: ['authn-failures-per-user', 'actor.userId=u-17', `period-${Math.floor(T / 300_000)}`],
      cooldownMs: 300_000,
    });
  });

  it('says "1 IP" when every event came from one address', () => {
    const state = window(10);
    const one = { ...state, members: state.members.map((member) => ({ ...member, value: '81.2.69.142' })) };
    expect(detected(evaluateThreshold(input, one, rule, context)).reason).toContain(' from 1 IP in ');
  });

  it('leaves out the spread when the rule has no distinctField', () => {
    const plain = { ...rule, distinctField: undefined };
    const detection = detected(evaluateThreshold(input, window(12), plain, context));
    expect(detection.reason).toBe('12 failed logins for user u-17 in 4m32s; threshold 10 in 5m.');
    expect(detection.distinct).toBeUndefined();
  });

  it('keeps firing above the threshold while nothing fired in the window', () => {
    expect(detected(evaluateThreshold(input, window(25), rule, context)).observedValue).toBe(25);
  });

  it('is suppressed when the rule fired for the key within the window', () => {
    expect(evaluateThreshold(input, window(11, { lastFired: T - 299_999 }), rule, context)).toStrictEqual({
      outcome: 'none',
      reasonCode: 'suppressed_in_window',
    });
    expect(evaluateThreshold(input, window(11, { lastFired: T }), rule, context).outcome).toBe('none');
  });

  it('is suppressed when it fired earlier in the same batch, even with an older stored mark', () => {
    expect(evaluateThreshold(input, window(11), rule, { ...context, firedEarlierInBatch: T - SECOND }).outcome).toBe('none');
    expect(evaluateThreshold(input, window(11, { lastFired: T - 10 * MINUTE }), rule, { ...context, firedEarlierInBatch: T - SECOND }).outcome).toBe(
      'none',
    );
  });

  it('is suppressed for a late event whose time falls just before the last detection', () => {
    expect(evaluateThreshold(input, window(11, { lastFired: T + MINUTE }), rule, context).outcome).toBe('none');
  });

  it('counts the fullest window of the rule\'s length holding the event, not all that was read either side', () => {
    // Read: four events 4 minutes before, this one, five 4 minutes after; no 5-minute window holds 10.
    const members = [
      ...Array.from({ length: 4 }, (_, index) => ({ id: `evt-before-00${index}`, value: '81.2.69.142', time: T - 4 * MINUTE + index })),
      { id: 'evt-last-0010', value: '81.2.69.142', time: T },
      ...Array.from({ length: 5 }, (_, index) => ({ id: `evt-after-000${index}`, value: '81.2.69.142', time: T + 4 * MINUTE + index })),
    ];
    expect(evaluateThreshold(input, { count: 10, members }, rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_threshold' });
    // Without the middle gap they all fit in one window: a late event completes it.
    const close = members.map((member, index) => ({ ...member, time: T - 2 * MINUTE + index * 10 * SECOND }));
    const late = policyAt('evt-last-0010', close[4]?.time ?? 0);
    const detection = detected(evaluateThreshold(late, { count: 10, members: close }, rule, context));
    expect(detection.observedValue).toBe(10);
    expect(detection.windowStart).toBe(T - 2 * MINUTE);
    expect(detection.windowEnd).toBe(T - 2 * MINUTE + 90 * SECOND);
    expect(detection.reason).toBe('10 failed logins for user u-17 from 1 IP in 1m30s; threshold 10 in 5m.');
  });

  it('in a flood, counts the whole window that ends at the event, from its oldest event, its newest as evidence', () => {
    const newest = window(10);
    const detection = detected(evaluateThreshold(input, { ...newest, count: 5000, flood: { count: 2400, firstTime: T - 299 * SECOND } }, rule, context));
    expect(detection.observedValue).toBe(2400);
    expect(detection.windowStart).toBe(T - 299 * SECOND);
    expect(detection.windowEnd).toBe(T);
    expect(detection.eventIds).toEqual(newest.members.map((member) => member.id));
    expect(detection.reason).toMatch(/^2400 failed logins for user u-17 from \d+ IPs? \(among the latest 10\) in 4m59s; threshold 10 in 5m\.$/);
    // A flood either side, but fewer than the threshold up to the event: the rest came after it.
    expect(evaluateThreshold(input, { count: 5000, flood: { count: 5, firstTime: T - MINUTE }, members: newest.members.slice(5) }, rule, context).outcome).toBe('none');
    // The next detection of a steady flood comes one window after the last, not two.
    expect(evaluateThreshold(input, { ...newest, count: 5000, lastFired: T - 300 * SECOND, flood: { count: 2400, firstTime: T - 299 * SECOND } }, rule, context).outcome).toBe('detected');
    expect(evaluateThreshold(input, { ...newest, count: 5000, lastFired: T - 299 * SECOND, flood: { count: 2400, firstTime: T - 299 * SECOND } }, rule, context).outcome).toBe('none');
  });

  it('fires again when the last detection is exactly one window old', () => {
    expect(evaluateThreshold(input, window(10, { lastFired: T - 300_000 }), rule, context).outcome).toBe('detected');
    expect(evaluateThreshold(input, window(10), rule, { ...context, firedEarlierInBatch: T - 300_000 }).outcome).toBe('detected');
  });
});

describe('evaluateCardinality', () => {
  const rule = cardinalityRuleSchema.parse({
    ...common,
    id: 'credential-stuffing',
    name: 'Credential stuffing',
    noun: 'authentication attempts',
    type: 'cardinality',
    groupBy: ['client.ip'],
    field: 'actor.userId',
    window: '10m',
    threshold: 8,
  });
  const context: EvaluationContext = { key: { 'client.ip': '81.2.69.142' }, keyText: 'client.ip=81.2.69.142', now: T };
  const input = policyAt('evt-last-0008', T);

  /** `count` events of one new user each, a second apart, the last at the event's time T. */
  function distinct(count: number, extra: Partial<DistinctState> = {}): DistinctState {
    return {
      bound: count,
      members: Array.from({ length: count }, (_, index) => ({ id: `evt-${String(index).padStart(4, '0')}-try`, value: `u-${index + 1}`, time: T - (count - 1 - index) * SECOND })),
      ...extra,
    };
  }
  const valuesOf = (state: DistinctState): string[] => (state.members ?? []).flatMap((member) => (member.value === undefined ? [] : [member.value]));
  const idsOf = (state: DistinctState): string[] => (state.members ?? []).map((member) => member.id);

  it('stays quiet one distinct value below the threshold', () => {
    expect(evaluateCardinality(input, distinct(7), rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_threshold' });
    // The bound the script read says the same without the events: nothing to search.
    expect(evaluateCardinality(input, { bound: 7 }, rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_threshold' });
  });

  it('counts distinct values, not events', () => {
    const members = Array.from({ length: 40 }, (_, index) => ({ id: `evt-${String(index).padStart(4, '0')}-try`, value: `u-${index % 3}`, time: T - index * SECOND }));
    expect(evaluateCardinality(input, { bound: 8, members: members.reverse() }, rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_threshold' });
  });

  it('fires at the threshold, showing five values and an ellipsis', () => {
    const state = distinct(8);
    const detection = detected(evaluateCardinality(input, state, rule, context));
    expect(detection).toStrictEqual({
      reasonCode: 'cardinality_reached',
      reason: 'IP 81.2.69.142: authentication attempts with 8 distinct users (u-1, u-2, u-3, u-4, u-5, …) within 10m; threshold 8.',
      observedValue: 8,
      threshold: 8,
      distinct: { field: 'actor.userId', values: valuesOf(state) },
      eventIds: idsOf(state),
      windowStart: T - 7 * SECOND,
      windowEnd: T,
      identity: ['credential-stuffing', 'client.ip=81.2.69.142', `period-${Math.floor(T / 600_000)}`],
      cooldownMs: 600_000,
    });
  });

  it('shows every value, without an ellipsis, when there are five or fewer', () => {
    const small = { ...rule, threshold: 5 };
    expect(detected(evaluateCardinality(input, distinct(5), small, context)).reason).toContain('(u-1, u-2, u-3, u-4, u-5) within');
  });

  it('a late event completes the first window holding it that reaches N, ending after it', () => {
    // Users 1-3 up to the event (at T), users 4-9 over the next 6 minutes: 8 are first reached at T + 5m.
    const before = distinct(3).members ?? [];
    const after = Array.from({ length: 6 }, (_, index) => ({ id: `evt-later-${index}`, value: `u-${index + 4}`, time: T + (index + 1) * MINUTE }));
    const detection = detected(evaluateCardinality(input, { bound: 9, members: [...before, ...after] }, rule, context));
    expect([detection.windowStart, detection.windowEnd, detection.observedValue]).toStrictEqual([T - 2 * SECOND, T + 5 * MINUTE, 8]);
    expect(detection.identity).toStrictEqual(['credential-stuffing', 'client.ip=81.2.69.142', `period-${Math.floor((T + 5 * MINUTE) / 600_000)}`]);
    // A window must hold the event: the same users after T + 10m are no window of it.
    const tooLate = after.map((member) => ({ ...member, time: member.time + 10 * MINUTE }));
    expect(evaluateCardinality(input, { bound: 9, members: [...before, ...tooLate] }, rule, context).outcome).toBe('none');
    // Nor do values spread wider than the window either side, though the range holds them all.
    const spread = [...before.map((member) => ({ ...member, time: member.time - 9 * MINUTE })), ...after.map((member) => ({ ...member, time: member.time + 4 * MINUTE }))];
    expect(evaluateCardinality(input, { bound: 9, members: spread }, rule, context).outcome).toBe('none');
  });

  it('falls back to the window ending at the event when too many events are held to read (capped)', () => {
    const capped = { count: 8, values: ['u-1', 'u-2'], members: [{ id: 'evt-1', time: T - MINUTE }] };
    const detection = detected(evaluateCardinality(input, { bound: 12, capped }, rule, context));
    expect([detection.windowStart, detection.windowEnd, detection.observedValue, detection.eventIds]).toStrictEqual([T - 10 * MINUTE, T, 8, ['evt-1']]);
    expect(evaluateCardinality(input, { bound: 12, capped: { ...capped, count: 7 } }, rule, context).outcome).toBe('none');
  });

  it('is suppressed within the window, also via the batch, and fires again one window later', () => {
    expect(evaluateCardinality(input, distinct(9, { lastFired: T - 599_999 }), rule, context).outcome).toBe('none');
    expect(evaluateCardinality(input, distinct(9), rule, { ...context, firedEarlierInBatch: T - SECOND })).toStrictEqual({
      outcome: 'none',
      reasonCode: 'suppressed_in_window',
    });
    expect(evaluateCardinality(input, distinct(9, { lastFired: T - 600_000 }), rule, context).outcome).toBe('detected');
  });

  describe('with counted: distinct values of the failures only, and their share of the attempts', () => {
    const failed = { field: 'policy.outcome', equals: 'fail' };
    // The rule as written (a duration as text), for the schema to parse again.
    const written = { ...rule, window: '10m' };
    const counting = cardinalityRuleSchema.parse({ ...written, noun: 'failed logins', counted: { filter: failed, minShare: 0.5 } });

    it('validates the option: minShare defaults to 0.5 and stays within 0 to 1', () => {
      expect(cardinalityRuleSchema.parse({ ...written, counted: { filter: failed } }).counted).toStrictEqual({ filter: failed, minShare: 0.5 });
      expect(() => cardinalityRuleSchema.parse({ ...written, counted: { filter: failed, minShare: 1.5 } })).toThrow(/minShare/);
      expect(() => cardinalityRuleSchema.parse({ ...written, counted: { minShare: 0.5 } })).toThrow(/filter/);
    });

    /** `counted` distinct users failing and `others` other users signing in (one event each), all in the minute up to T. */
    const shared = (counted: number, others: number): DistinctState => ({
      bound: counted,
      members: [
        ...Array.from({ length: counted }, (_, index) => ({ id: `evt-f${index}`, value: `u-${index + 1}`, time: T - (counted - 1 - index) * SECOND })),
        ...Array.from({ length: others }, (_, index) => ({ id: `evt-p${index}`, value: `p-${index}`, time: T - 30 * SECOND - index * SECOND, other: true as const })).reverse(),
      ],
    });

    it('fires when the counted values reach the threshold and are at least minShare of all the values', () => {
      const detection = detected(evaluateCardinality(input, shared(10, 10), { ...counting, threshold: 10 }, context));
      expect(detection.reason).toBe(
        'IP 81.2.69.142: failed logins with 10 distinct users (u-1, u-2, u-3, u-4, u-5, …) within 10m, 10 of the 20 distinct users of its matching events (50%); threshold 10, and at least 50%.',
      );
      expect(detection.observedValue).toBe(10);
      // The evidence is the counted events.
      expect(detection.eventIds).toStrictEqual(Array.from({ length: 10 }, (_, index) => `evt-f${index}`));
    });

    it('runs after the rules its counted filter names (detectedBy)', () => {
      expect(cardinalityType.references?.(counting)).toStrictEqual([]);
      const after = cardinalityRuleSchema.parse({ ...written, counted: { filter: { any: [failed, { detectedBy: 'new-device-for-user' }] } } });
      expect(cardinalityType.references?.(after)).toStrictEqual(['new-device-for-user']);
    });

    it('stays quiet below the share (an office NAT: a few typos among many sign-ins), and below the threshold first', () => {
      expect(evaluateCardinality(input, shared(10, 11), { ...counting, threshold: 10 }, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_share' });
      expect(evaluateCardinality(input, shared(7, 0), counting, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_threshold' });
      // Capped: the share the script counted up to the event; a reply without it is no share at all.
      const capped = { count: 8, values: [], members: [] };
      expect(evaluateCardinality(input, { bound: 8, capped: { ...capped, share: { counted: 10, total: 21 } } }, counting, context).outcome).toBe('none');
      expect(evaluateCardinality(input, { bound: 8, capped: { ...capped, share: { counted: 10, total: 20 } } }, counting, context).outcome).toBe('detected');
      expect(evaluateCardinality(input, { bound: 8, capped }, counting, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_share' });
    });

    /** `failing` users failing once each, a second apart up to T, and `successes` sign-ins of the users `successUser(n)` in the minute before. */
    const attempts = (failing: number, successes: number, successUser: (n: number) => string, failuresEach = 1): DistinctState => {
      const failures = Array.from({ length: failing * failuresEach }, (_, index) => ({
        id: `evt-f${index}`,
        value: `u-${(index % failing) + 1}`,
        time: T - (failing * failuresEach - 1 - index) * SECOND,
      }));
      const passes = Array.from({ length: successes }, (_, index) => ({ id: `evt-p${index}`, value: successUser(index), time: T - MINUTE + index * 100, other: true as const }));
      return { bound: failing, members: [...failures, ...passes] };
    };

    it('fires on stuffing padded with the successes of one account of its own: the share is of users, not events (6 December 2026)', () => {
      // 10 failing users and 30 sign-ins of one account: 10 of 40 events, but 10 of 11 users.
      const detection = detected(evaluateCardinality(input, attempts(10, 30, () => 'own-account'), counting, context));
      expect(detection.observedValue).toBe(10);
      expect(detection.reason).toMatch(/, 10 of the 11 distinct users of its matching events \(91%\); threshold 8, and at least 50%\.$/);
    });

    it('keeps an office NAT quiet: many staff signing in, a few of them failing first (a user who fails and signs in counts once)', () => {
      // 8 of 40 staff mistype before signing in: 8 of 40 users.
      expect(evaluateCardinality(input, attempts(8, 40, (n) => `u-${n + 1}`), counting, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_share' });
      // The morning after a password change: 10 of 30 staff try their old password 4 times, then sign in.
      // More failed attempts than sign-ins (40 of 70 events), but a third of the users.
      expect(evaluateCardinality(input, attempts(10, 30, (n) => `u-${n + 1}`, 4), counting, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_share' });
    });

    it('decides the same in the fallback (too many events to read): the script counts users there too', () => {
      // The replies distinctShare-4 gives for the two cases above when capped: failing users, the same, then the other users.
      const fallback = (failing: number, otherUsers: number): DistinctState =>
        parseDistinctShareState([failing, null, 900, failing, failing, otherUsers, 0, 0]);
      const padded = attempts(10, 30, () => 'own-account');
      const office = attempts(8, 40, (n) => `u-${n + 1}`);
      const decision = (state: DistinctState): string => {
        const evaluation = evaluateCardinality(input, state, counting, context);
        return evaluation.outcome === 'detected' ? 'detected' : evaluation.reasonCode;
      };
      expect([decision(padded), decision(fallback(10, 1))]).toStrictEqual(['detected', 'detected']);
      expect([decision(office), decision(fallback(8, 32))]).toStrictEqual(['below_share', 'below_share']);
    });

    it('takes the first window that reaches both the threshold and the share', () => {
      // 8 users failing in the seconds up to T and 10 others signing in before them: 8 of 18 users in any window holding T.
      const state = shared(8, 10);
      expect(evaluateCardinality(input, state, counting, context)).toStrictEqual({ outcome: 'none', reasonCode: 'below_share' });
      const more = [...(state.members ?? []), ...Array.from({ length: 3 }, (_, index) => ({ id: `evt-g${index}`, value: `u-${index + 20}`, time: T + (index + 1) * MINUTE }))];
      // A new user failing a minute for 3 minutes: 9 of 19 at T + 1m, 10 of 20 at T + 2m, the first window reaching both.
      const detection = detected(evaluateCardinality(input, { bound: 11, members: more }, counting, context));
      expect([detection.windowEnd, detection.observedValue]).toStrictEqual([T + 2 * MINUTE, 10]);
    });
  });
});

describe('evaluateSequence', () => {
  const fail = { all: [{ field: 'policy.kind', equals: 'authn' }, { field: 'policy.outcome', equals: 'fail' }] };
  const pass = { all: [{ field: 'policy.kind', equals: 'authn' }, { field: 'policy.outcome', equals: 'pass' }] };
  const source = {
    ...common,
    id: 'account-takeover-sequence',
    name: 'Failures then a success',
    type: 'sequence',
    groupBy: ['client.ip'],
    window: '10m',
    steps: [
      { name: 'failed login', count: 5, filter: fail },
      { name: 'successful login', filter: pass },
    ],
  };
  const rule = sequenceRuleSchema.parse(source);
  const context: EvaluationContext = { key: { 'client.ip': '81.2.69.142' }, keyText: 'client.ip=81.2.69.142', now: T };
  const success = policyAt('evt-success-01', T, { 'policy.outcome': 'pass' });
  /** The success as the sequenceAdd script returns it: the event just added is in the window too. */
  const own = { step: 1, id: 'evt-success-01', time: T };

  /** `count` failures, one every 10 s, the last `lastBefore` ms before T. */
  const failures = (count: number, lastBefore = 10 * SECOND): SequenceState['entries'] =>
    Array.from({ length: count }, (_, index) => ({
      step: 0,
      id: `evt-fail-${String(index).padStart(4, '0')}`,
      time: T - lastBefore - (count - 1 - index) * 10 * SECOND,
    }));

  it('finds the steps an event matches', () => {
    const steps = rule.steps.map((step) => compileFilter(step.filter));
    expect(matchedSteps(success, steps)).toStrictEqual([1]);
    expect(matchedSteps(policyAt('evt-fail-0099', T), steps)).toStrictEqual([0]);
    expect(matchedSteps(policyAt('evt-authz-001', T, { 'policy.kind': 'authz' }), steps)).toStrictEqual([]);
  });

  it('fires on the final step of an ordered chain, with the events oldest first', () => {
    const state: SequenceState = { entries: [...failures(5), own] };
    const detection = detected(evaluateSequence(success, state, rule, [1], context));
    expect(detection).toStrictEqual({
      reasonCode: 'sequence_completed',
      reason: 'IP 81.2.69.142: 5× failed login → successful login within 50s; the rule allows 10m.',
      observedValue: 6,
      eventIds: ['evt-fail-0000', 'evt-fail-0001', 'evt-fail-0002', 'evt-fail-0003', 'evt-fail-0004', 'evt-success-01'],
      windowStart: T - 50 * SECOND,
      windowEnd: T,
      time: T,
      identity: ['account-takeover-sequence', 'client.ip=81.2.69.142', `period-${Math.floor(T / 600_000)}`],
      cooldownMs: 600_000,
    });
  });

  it('takes the latest events when a step has more than it needs', () => {
    const detection = detected(evaluateSequence(success, { entries: [...failures(8), own] }, rule, [1], context));
    expect(detection.eventIds).toStrictEqual(['evt-fail-0003', 'evt-fail-0004', 'evt-fail-0005', 'evt-fail-0006', 'evt-fail-0007', 'evt-success-01']);
  });

  it('accepts an earlier step at the same instant as the step after it', () => {
    expect(evaluateSequence(success, { entries: [...failures(5, 0), own] }, rule, [1], context).outcome).toBe('detected');
  });

  it('stays quiet with a step short of its count', () => {
    expect(evaluateSequence(success, { entries: [...failures(4), own] }, rule, [1], context)).toStrictEqual({
      outcome: 'none',
      reasonCode: 'sequence_incomplete',
    });
  });

  it('stays quiet when the earlier steps came after the final one', () => {
    const later = failures(5, -60 * SECOND); // all after T
    expect(evaluateSequence(success, { entries: [...later, own] }, rule, [1], context).outcome).toBe('none');
    // Four before and one after is still four.
    const mixed = [...failures(4), { step: 0, id: 'evt-fail-late', time: T + SECOND }];
    expect(evaluateSequence(success, { entries: [...mixed, own] }, rule, [1], context).outcome).toBe('none');
  });

  it('stays quiet when an earlier step fell out of the window', () => {
    const old = failures(5, 10 * MINUTE - 30 * SECOND); // the oldest is more than 10m before T, the next exactly 10m
    expect(evaluateSequence(success, { entries: [...old, own] }, rule, [1], context).outcome).toBe('none');
  });

  it('stays quiet on an event that is not the final step while no final step is recorded', () => {
    const failure = policyAt('evt-fail-0099', T);
    expect(evaluateSequence(failure, { entries: failures(20) }, rule, [0], context)).toStrictEqual({
      outcome: 'none',
      reasonCode: 'waiting_for_final_step',
    });
  });

  it('stays quiet on an earlier step that comes after the final step in event time', () => {
    const late = policyAt('evt-fail-late1', T + SECOND);
    expect(evaluateSequence(late, { entries: [...failures(4), own] }, rule, [0], context).outcome).toBe('none');
  });

  it('completes a chain when its missing earlier step arrives after the final one (out of order)', () => {
    // The success (T) was recorded first; the fifth failure (T - 10 s) arrives late.
    const fifth = policyAt('evt-fail-0004', T - 10 * SECOND);
    const recorded = [...failures(4, 20 * SECOND), own];
    const detection = detected(evaluateSequence(fifth, { entries: recorded }, rule, [0], context));
    expect(detection.eventIds).toStrictEqual(['evt-fail-0000', 'evt-fail-0001', 'evt-fail-0002', 'evt-fail-0003', 'evt-fail-0004', 'evt-success-01']);
    expect(detection.windowStart).toBe(T - 50 * SECOND);
    expect(detection.windowEnd).toBe(T);
    // It happened at its final step (T), not at the late failure's time, as in order.
    expect(detection.time).toBe(T);
    // The period of its final step (T), as in order.
    expect(detection.identity).toStrictEqual(['account-takeover-sequence', 'client.ip=81.2.69.142', `period-${Math.floor(T / 600_000)}`]);
  });

  it('does not report again a chain that the late event is not part of', () => {
    // Five failures and the success are complete already; an older sixth failure changes nothing.
    const older = policyAt('evt-fail-older', T - 5 * MINUTE);
    expect(evaluateSequence(older, { entries: [...failures(5), own] }, rule, [0], context).outcome).toBe('none');
  });

  it('never counts the final event as one of its own earlier steps', () => {
    const bothSteps = [...failures(4), { step: 0, id: 'evt-success-01', time: T }, own];
    expect(evaluateSequence(success, { entries: bothSteps }, rule, [0, 1], context).outcome).toBe('none');
  });

  it('keeps the order across three steps: A, then B, then C', () => {
    const three = sequenceRuleSchema.parse({
      ...source,
      steps: [
        { name: 'new device', filter: { detectedBy: 'new-device-for-user' } },
        { name: 'password change', filter: { field: 'policy.kind', equals: 'authz' } },
        { name: 'payment', filter: pass },
      ],
    });
    const a = { step: 0, id: 'evt-a-000001', time: T - 3 * MINUTE };
    const b = { step: 1, id: 'evt-b-000001', time: T - 2 * MINUTE };
    const c = { step: 2, id: 'evt-success-01', time: T };
    expect(detected(evaluateSequence(success, { entries: [a, b, c] }, three, [2], context)).eventIds).toStrictEqual([a.id, b.id, c.id]);
    // B before A: the chain is out of order.
    const early = { ...b, time: T - 4 * MINUTE };
    expect(evaluateSequence(success, { entries: [a, early, c] }, three, [2], context)).toStrictEqual({ outcome: 'none', reasonCode: 'sequence_incomplete' });
    // A missing.
    expect(evaluateSequence(success, { entries: [b, c] }, three, [2], context).outcome).toBe('none');
  });

  // Suspected bug (detectors/rule-types/sequence.ts, evaluateSequence): when one earlier event
  // matched two steps, it is taken for both, and the chain lists it twice.
  it('does not take one earlier event for two steps', () => {
    const overlapping = sequenceRuleSchema.parse({
      ...source,
      steps: [
        { name: 'any login', filter: { field: 'policy.kind', equals: 'authn' } },
        { name: 'failed login', filter: fail },
        { name: 'successful login', filter: pass },
      ],
    });
    const failure = 'evt-fail-000001';
    const entries = [
      { step: 0, id: failure, time: T - MINUTE },
      { step: 1, id: failure, time: T - MINUTE },
      { step: 0, id: 'evt-success-01', time: T },
      { step: 2, id: 'evt-success-01', time: T },
    ];
    expect(evaluateSequence(success, { entries }, overlapping, [0, 2], context)).toStrictEqual({ outcome: 'none', reasonCode: 'sequence_incomplete' });
  });

  it('is suppressed within the window after firing, also via the batch, and fires one window later', () => {
    const entries = [...failures(5), own];
    expect(evaluateSequence(success, { entries, lastFired: T - 599_999 }, rule, [1], context)).toStrictEqual({
      outcome: 'none',
      reasonCode: 'suppressed_in_window',
    });
    expect(evaluateSequence(success, { entries }, rule, [1], { ...context, firedEarlierInBatch: T - SECOND }).outcome).toBe('none');
    expect(evaluateSequence(success, { entries, lastFired: T - 600_000 }, rule, [1], context).outcome).toBe('detected');
  });
});

describe('evaluateNewValue', () => {
  const rule = newValueRuleSchema.parse({
    ...common,
    id: 'new-device-for-user',
    name: 'New device for a user',
    type: 'new_value',
    groupBy: ['actor.userId'],
    field: 'device.deviceId',
    horizon: '30d',
  });
  const context: EvaluationContext = { key: { 'actor.userId': 'user-3' }, keyText: 'actor.userId=user-3', now: T };
  const input: DetectionInput = { event: event(deviceEvent()) };

  it('learns a key\'s first value instead of reporting it (minKnownValues 1)', () => {
    expect(rule.minKnownValues).toBe(1);
    expect(evaluateNewValue(input, { known: 0, value: 'phone-3' }, rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'learning' });
  });

  it('is quiet for a value seen before, however much history the key has', () => {
    expect(evaluateNewValue(input, { previous: T - MINUTE, known: 4, value: 'phone-3' }, rule, context)).toStrictEqual({
      outcome: 'none',
      reasonCode: 'seen_before',
    });
    expect(evaluateNewValue(input, { previous: T - MINUTE, known: 0, value: 'phone-3' }, rule, context).outcome).toBe('none');
  });

  it('fires on a new value once the key has history', () => {
    const detection = detected(evaluateNewValue(input, { known: 1, value: 'phone-3' }, rule, context));
    expect(detection).toStrictEqual({
      reasonCode: 'new_value',
      reason: 'New device phone-3 for user user-3: not seen in the last 30d, which held 1 other device.',
      observedValue: 1,
      distinct: { field: 'device.deviceId', values: ['phone-3'] },
      eventIds: ['evt-0003-cccc'],
      windowStart: T - 2_592_000_000,
      windowEnd: T,
      identity: ['new-device-for-user', 'actor.userId=user-3', 'phone-3', `period-${Math.floor(T / 2_592_000_000)}`],
    });
    expect(detected(evaluateNewValue(input, { known: 2, value: 'phone-3' }, rule, context)).reason).toMatch(/held 2 other devices\.$/);
  });

  it('names the detection by value and horizon period, not by the event: two events of one request carrying the new value give one id', () => {
    const other: DetectionInput = { event: event(deviceEvent(), { id: 'evt-0003-dddd', time: new Date(T + 2).toISOString() }) };
    const first = detected(evaluateNewValue(input, { known: 1, value: 'phone-3' }, rule, context));
    const second = detected(evaluateNewValue(other, { known: 1, value: 'phone-3' }, rule, context));
    expect(second.eventIds).toStrictEqual(['evt-0003-dddd']);
    expect(detectionId(second.identity)).toBe(detectionId(first.identity));
    // A value seen again only after a whole horizon falls in another period: another detection.
    const later: DetectionInput = { event: event(deviceEvent(), { time: new Date(T + rule.horizon).toISOString() }) };
    expect(detectionId(detected(evaluateNewValue(later, { known: 1, value: 'phone-3' }, rule, context)).identity)).not.toBe(detectionId(first.identity));
  });

  it('honours a larger minKnownValues at its edge, and 0 reports even the first value', () => {
    const three = { ...rule, minKnownValues: 3 };
    expect(evaluateNewValue(input, { known: 2, value: 'phone-3' }, three, context).outcome).toBe('none');
    expect(evaluateNewValue(input, { known: 3, value: 'phone-3' }, three, context).outcome).toBe('detected');
    const eager = { ...rule, minKnownValues: 0 };
    expect(detected(evaluateNewValue(input, { known: 0, value: 'phone-3' }, eager, context)).reason).toContain('which held 0 other devices.');
  });
});

describe('evaluateMatch', () => {
  const rule = matchRuleSchema.parse({ ...common, id: 'basic-auth-on-2fa-resource', name: '2FA-protected API reached with basic authentication', type: 'match' });
  const context: EvaluationContext = { key: { 'actor.userId': 'user-1' }, keyText: 'actor.userId=user-1', now: T };

  it('turns one event into a detection that says what, who and where from', () => {
    const input: DetectionInput = { event: event(policyEvent(), { 'policy.outcome': 'pass', 'policy.reason': undefined, 'policy.authContext': 'basic' }), geo: { country: 'GB' } };
    const evaluation = evaluateMatch(input, rule, context);
    expect(evaluation).toStrictEqual({
      outcome: 'detected',
      detection: {
        reasonCode: 'matched',
        reason: '2FA-protected API reached with basic authentication: authn pass on POST /payments/123 by user user-1 via consumer app-1 from 81.2.69.142 (GB).',
        observedValue: 1,
        eventIds: ['evt-0001-aaaa'],
        windowStart: T,
        windowEnd: T,
        identity: ['basic-auth-on-2fa-resource', 'actor.userId=user-1', 'evt-0001-aaaa'],
      },
    });
  });

  it('sets no cooldown: every matching event is its own detection', () => {
    expect(detected(evaluateMatch({ event: event(policyEvent()) }, rule, context)).cooldownMs).toBeUndefined();
  });
});
