/**
 * The parse functions read Lua replies as ioredis hands them over (RESP2): Lua numbers arrive as
 * numbers, strings and sorted-set scores as strings, and a Lua `false` (GET of a missing key) as
 * null. The request builders are the other half of the contract: what the scripts are called with.
 */
import {
  cardinalityReadLimit,
  cardinalityRequest,
  cardinalityRuleSchema,
  compileFilter,
  evaluateThreshold,
  geoVelocityRequest,
  MAX_LOCATIONS_PER_KEY,
  geoVelocityRuleSchema,
  newValueRequest,
  newValueRuleSchema,
  parseDistinctShareState,
  parseDistinctState,
  parseFirstSeenState,
  parseGeoState,
  parseSequenceState,
  parseWindowState,
  sequenceRequest,
  sequenceRuleSchema,
  stateKey,
  thresholdReadLimit,
  thresholdRequest,
  thresholdRuleSchema,
  type DetectionInput,
  type DistinctMember,
  type DistinctState,
  type Location,
  type SequenceState,
  type WindowState,
} from '../../detectors';
import { eventSchema } from '../../schemas';
import { deviceEvent, invocationEvent, policyEvent } from './fixtures';

const T = Date.parse('2024-05-01T10:30:00.250Z');
type Reply = (string | number | null)[];

/** What windowAdd-2.lua (version 3) returns for a state: { count, fired or false, upTo or false, first or false, member, score, ... }. */
function windowReply(state: WindowState): Reply {
  return [
    state.count,
    state.lastFired === undefined ? null : String(state.lastFired),
    state.flood === undefined ? null : state.flood.count,
    state.flood === undefined ? null : String(state.flood.firstTime),
    ...state.members.flatMap((member) => [member.value === undefined ? member.id : `${member.id}|${member.value}`, String(member.time)]),
  ];
}

/** What distinctAdd-3.lua returns: { bound, fired or false, held, false, 0, member, time, ... } or, capped, { bound, fired, held, count, n, value1..n, member, time, ... }. */
function distinctReply(state: DistinctState, held = 0): Reply {
  const fired = state.lastFired === undefined ? null : String(state.lastFired);
  const pairs = (members: readonly DistinctMember[]): Reply => members.flatMap((member) => [member.value === undefined ? member.id : `${member.id}|${member.value}`, String(member.time)]);
  if (state.capped) return [state.bound, fired, held, state.capped.count, state.capped.values.length, ...state.capped.values, ...pairs(state.capped.members)];
  if (state.members) return [state.bound, fired, held, null, 0, ...pairs(state.members)];
  return [state.bound, null, 0];
}

/** What sequenceAdd-2.lua returns: { fired or false, "step:id", score, ... }. */
function sequenceReply(state: SequenceState): Reply {
  return [state.lastFired === undefined ? null : String(state.lastFired), ...state.entries.flatMap((entry) => [`${entry.step}:${entry.id}`, String(entry.time)])];
}

describe('parseWindowState (windowAdd-2, version 3)', () => {
  it('reads a reply as ioredis returns it', () => {
    const reply: Reply = [3, null, null, null, 'evt-0001-aaaa|81.2.69.142', '1714559128250', 'evt-0002-aaaa|2001:db8::7', '1714559300250', 'evt-0003-aaaa', '1714559400250'];
    expect(parseWindowState(reply)).toStrictEqual({
      count: 3,
      members: [
        { id: 'evt-0001-aaaa', value: '81.2.69.142', time: 1714559128250 },
        { id: 'evt-0002-aaaa', value: '2001:db8::7', time: 1714559300250 },
        { id: 'evt-0003-aaaa', time: 1714559400250 },
      ],
    });
  });

  it('reads the last detection time, and a flood: the window up to the event counted whole, its newest members as evidence', () => {
    expect(parseWindowState([120, '1714559100250', 95, '1714559000250', 'evt-0001-aaaa', '1714559128250'])).toStrictEqual({
      count: 120,
      lastFired: 1714559100250,
      flood: { count: 95, firstTime: 1714559000250 },
      members: [{ id: 'evt-0001-aaaa', time: 1714559128250 }],
    });
  });

  it('keeps a value that itself holds the separator whole', () => {
    expect(parseWindowState([1, null, null, null, 'evt-0001-aaaa|curl/8.5 | extra', '1'])).toMatchObject({ members: [{ id: 'evt-0001-aaaa', value: 'curl/8.5 | extra' }] });
  });

  it.each<[string, WindowState]>([
    ['empty', { count: 0, members: [] }],
    ['fired, with values', { count: 2, lastFired: T - 1, members: [{ id: 'evt-a-000001', value: 'u-1', time: T - 2 }, { id: 'evt-b-000001', value: '', time: T }] }],
    ['without values', { count: 1, members: [{ id: 'evt-a-000001', time: T }] }],
    ['a flood', { count: 900, lastFired: T - 60_000, flood: { count: 450, firstTime: T - 299_000 }, members: [{ id: 'evt-a-000001', time: T - 1 }, { id: 'evt-b-000001', time: T }] }],
  ])('round-trips a state through the reply: %s', (_name, state) => {
    expect(parseWindowState(windowReply(state))).toStrictEqual(state);
  });

  it('decides on a parsed reply as on the state itself', () => {
    const rule = thresholdRuleSchema.parse({
      id: 'too-many-failures',
      version: 1,
      name: 'Too many failures',
      description: 'Failed logins for one user.',
      severity: 'medium',
      type: 'threshold',
      groupBy: ['actor.userId'],
      window: '5m',
      threshold: 2,
      distinctField: 'client.ip',
    });
    const input: DetectionInput = { event: eventSchema.parse(policyEvent()) };
    const context = { key: { 'actor.userId': 'user-1' }, keyText: 'actor.userId=user-1', now: T };
    const reply: Reply = [2, null, null, null, 'evt-0000-aaaa|81.2.69.142', String(T - 30_000), 'evt-0001-aaaa|81.2.69.142', String(T)];
    const evaluation = evaluateThreshold(input, parseWindowState(reply), rule, context);
    expect(evaluation).toMatchObject({ outcome: 'detected', detection: { reason: '2 matching events for user user-1 from 1 IP in 30s; threshold 2 in 5m.' } });
    expect(evaluateThreshold(input, parseWindowState([2, String(T - 60_000), ...reply.slice(2)]), rule, context).outcome).toBe('none');
  });
});

describe('parseDistinctState (distinctAdd-3)', () => {
  it('reads a reply as ioredis returns it: every event of the range, "<id>|<value>" and its time', () => {
    expect(parseDistinctState([3, null, 4, null, 0, 'evt-0001-aaaa|u-1', '1000', 'evt-0002-aaaa|u-2', '2000', 'evt-0003-aaaa|u-1', '3000', 'evt-0004-aaaa|a|b', '4000'])).toStrictEqual({
      bound: 3,
      members: [
        { id: 'evt-0001-aaaa', value: 'u-1', time: 1000 },
        { id: 'evt-0002-aaaa', value: 'u-2', time: 2000 },
        { id: 'evt-0003-aaaa', value: 'u-1', time: 3000 },
        // A value may hold the separator: the id never does.
        { id: 'evt-0004-aaaa', value: 'a|b', time: 4000 },
      ],
    });
  });

  it('reads a reply below the least count: the bound alone', () => {
    expect(parseDistinctState([2, null, 0])).toStrictEqual({ bound: 2 });
  });

  it('reads a capped reply (too many events held): the count up to the event, values, then the events', () => {
    expect(parseDistinctState([9, '1714559100250', 5000, 8, 2, '404', '/accounts/7', 'evt-0001-aaaa|404', '1000'])).toStrictEqual({
      bound: 9,
      lastFired: 1714559100250,
      capped: { count: 8, values: ['404', '/accounts/7'], members: [{ id: 'evt-0001-aaaa', value: '404', time: 1000 }] },
    });
  });

  it.each<[string, DistinctState, number]>([
    ['below the least count', { bound: 1 }, 0],
    ['every event', { bound: 2, lastFired: T, members: [{ id: 'evt-1', value: 'u-1', time: T - 1 }, { id: 'evt-2', value: '17', time: T }] }, 2],
    ['empty range', { bound: 4, members: [] }, 0],
    ['capped', { bound: 80, lastFired: T, capped: { count: 80, values: ['u-1', 'u-2'], members: [{ id: 'evt-1', value: 'u-1', time: T }] } }, 900],
  ])('round-trips a state through the reply: %s', (_name, state, held) => {
    expect(parseDistinctState(distinctReply(state, held))).toStrictEqual(state);
  });
});

describe('parseDistinctShareState (distinctShare-4)', () => {
  it('reads the counted events then the others, both "<id>|<value>" (an other without a value, or a bare id of version 2, has none)', () => {
    const reply = [2, '1714559100250', 5, null, 0, 0, 0, 2, 'evt-1|u-1', '1000', 'evt-3|u-2', '3000', 'evt-2|u-9', '2000', 'evt-4|', '2500', 'evt-5', '2600'];
    expect(parseDistinctShareState(reply)).toStrictEqual({
      bound: 2,
      lastFired: 1714559100250,
      members: [
        { id: 'evt-1', value: 'u-1', time: 1000 },
        { id: 'evt-3', value: 'u-2', time: 3000 },
        { id: 'evt-2', value: 'u-9', time: 2000, other: true },
        { id: 'evt-4', time: 2500, other: true },
        { id: 'evt-5', time: 2600, other: true },
      ],
    });
  });

  it('reads a capped reply: the count and the share in values up to the event, values, the counted events', () => {
    expect(parseDistinctShareState([9, null, 900, 8, 8, 11, 2, 'u-1', 'u-2', 1, 'evt-1|u-1', '1000'])).toStrictEqual({
      bound: 9,
      capped: { count: 8, share: { counted: 8, total: 19 }, values: ['u-1', 'u-2'], members: [{ id: 'evt-1', value: 'u-1', time: 1000 }] },
    });
  });

  it('reads a reply below the threshold (no events, no fired mark)', () => {
    expect(parseDistinctShareState([1, null, 0])).toStrictEqual({ bound: 1 });
  });
});

describe('parseSequenceState (sequenceAdd-2)', () => {
  it('reads a reply as ioredis returns it (newest first): step and id, then the score', () => {
    expect(parseSequenceState([null, '1:evt-0003-aaaa', '1714559400250', '0:evt-0002-aaaa', '1714559360250', '0:evt-0001-aaaa', '1714559350250'])).toStrictEqual({
      entries: [
        { step: 1, id: 'evt-0003-aaaa', time: 1714559400250 },
        { step: 0, id: 'evt-0002-aaaa', time: 1714559360250 },
        { step: 0, id: 'evt-0001-aaaa', time: 1714559350250 },
      ],
    });
  });

  it('splits at the first colon only: event ids may hold colons', () => {
    expect(parseSequenceState(['1714559100250', '2:gw:eu:0001-aaaa', '5'])).toStrictEqual({
      lastFired: 1714559100250,
      entries: [{ step: 2, id: 'gw:eu:0001-aaaa', time: 5 }],
    });
  });

  it.each<[string, SequenceState]>([
    ['empty', { entries: [] }],
    ['fired', { lastFired: T - 5, entries: [{ step: 0, id: 'evt-a-000001', time: T - 10 }, { step: 3, id: 'evt-b-000001', time: T }] }],
  ])('round-trips a state through the reply: %s', (_name, state) => {
    expect(parseSequenceState(sequenceReply(state))).toStrictEqual(state);
  });
});

describe('parseFirstSeenState (firstSeen-1)', () => {
  it('reads a value never seen (false → null) with the number of others', () => {
    expect(parseFirstSeenState([null, 2], 'phone-3')).toStrictEqual({ known: 2, value: 'phone-3' });
    expect(parseFirstSeenState([null, 0], 'phone-3')).toStrictEqual({ known: 0, value: 'phone-3' });
  });

  it('leaves the count out when the script did not count (a known value)', () => {
    expect(parseFirstSeenState(['1714559400250', null], 'phone-3')).toStrictEqual({ previous: 1714559400250, value: 'phone-3' });
  });

  it('reads the time a known value was last seen (a score, so text)', () => {
    expect(parseFirstSeenState(['1714559400250', 3], 'phone-3')).toStrictEqual({ previous: 1714559400250, known: 3, value: 'phone-3' });
  });
});

describe('parseGeoState (locationAdd-2)', () => {
  const location: Location = { lat: 51.5074, lon: -0.1278, accuracyKm: 20, country: 'GB', city: 'London', ip: '81.2.69.142', time: '2024-05-01T10:30:00.250Z', eventId: 'evt-0001-aaaa' };
  const later: Location = { ...location, time: '2024-05-01T11:30:00.250Z', eventId: 'evt-0002-bbbb' };

  it('is empty when the key has no neighbours (false → null)', () => {
    expect(parseGeoState([null, null])).toStrictEqual({});
  });

  it('reads back exactly what geoVelocityRequest stored, before and after', () => {
    const rule = geoVelocityRuleSchema.parse({
      id: 'impossible-travel',
      version: 1,
      name: 'Impossible travel',
      description: 'Too fast between two places.',
      severity: 'high',
      type: 'geo_velocity',
      groupBy: ['actor.userId'],
    });
    const request = geoVelocityRequest(location, rule, { key: { 'actor.userId': 'u-17' }, keyText: 'actor.userId=u-17', now: T, prefix: 'test' });
    expect(request).toStrictEqual({
      script: 'locationAdd',
      keys: ['test:rule:{impossible-travel|actor.userId=u-17}:locations', 'test:rule:{impossible-travel|actor.userId=u-17}:located'],
      args: [location.eventId, T, JSON.stringify(location), T - 86_400_000, 86_400_000, MAX_LOCATIONS_PER_KEY],
    });
    expect(parseGeoState([request.args[2], null])).toStrictEqual({ previous: location });
    expect(parseGeoState([null, JSON.stringify(later)])).toStrictEqual({ next: later });
  });
});

describe('request builders', () => {
  const extended = { key: { 'actor.userId': 'user-1' }, keyText: 'actor.userId=user-1', now: T + 5000, prefix: 'test', latenessMs: 300_000, stateGraceMs: 900_000, maxEvidence: 50 };
  const common = { version: 1, description: 'A rule under test.', severity: 'medium', groupBy: ['actor.userId'] } as const;
  const policy: DetectionInput = { event: eventSchema.parse(policyEvent()) };

  it('builds every key of one (rule, key) with one hash tag, so a script stays on one cluster slot', () => {
    const keys = (['window', 'fired', 'values', 'events', 'steps', 'seen', 'locations', 'located'] as const).map((part) => stateKey('vigil', 'r-1', 'client.ip=2001:db8::1', part));
    expect(new Set(keys.map((key) => /\{([^}]*)\}/.exec(key)?.[1]))).toStrictEqual(new Set(['r-1|client.ip=2001:db8::1']));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('thresholdRequest: the member carries the distinct value; it reads a window either side of the event', () => {
    const rule = thresholdRuleSchema.parse({ ...common, id: 'r-threshold', name: 'threshold', type: 'threshold', window: '5m', threshold: 3, distinctField: 'client.ip' });
    expect(thresholdRequest(policy, rule, extended)).toStrictEqual({
      script: 'windowAdd',
      keys: ['test:rule:{r-threshold|actor.userId=user-1}:window', 'test:rule:{r-threshold|actor.userId=user-1}:fired'],
      args: ['evt-0001-aaaa|81.2.69.142', T, T - 300_000, T + 300_000, T + 5000 - 300_000 - 300_000, 300_000 + 300_000 + 900_000, 50, 3],
    });
    // A large threshold reads more than the evidence cap, so a full window is always in hand.
    expect(thresholdReadLimit({ ...rule, threshold: 100 }, 50)).toBe(210);
    expect(thresholdRequest(policy, { ...rule, threshold: 100 }, extended).args[6]).toBe(210);
    expect(thresholdRequest(policy, { ...rule, distinctField: undefined }, extended).args[0]).toBe('evt-0001-aaaa');
  });

  it('cardinalityRequest: the value and the event, or nothing when the event has no value', () => {
    const rule = cardinalityRuleSchema.parse({ ...common, id: 'r-cardinality', name: 'cardinality', type: 'cardinality', window: '10m', field: 'client.ip', threshold: 3 });
    const request = cardinalityRequest(policy, rule, extended);
    expect(request?.script).toBe('distinctAdd');
    expect(request?.keys).toStrictEqual(['values', 'events', 'fired'].map((part) => `test:rule:{r-cardinality|actor.userId=user-1}:${part}`));
    // A window either side of the event; at most 200 events read back, 50 values and ids in a capped reply.
    expect(request?.args).toStrictEqual(['81.2.69.142', 'evt-0001-aaaa', T, T - 600_000, T + 600_000, T + 5000 - 600_000 - 300_000, 600_000 + 300_000 + 900_000, 200, 3, 50]);
    expect(cardinalityReadLimit({ ...rule, threshold: 40 }, 50)).toBe(400);
    expect(cardinalityRequest({ event: eventSchema.parse(deviceEvent()) }, rule, extended)).toBeUndefined();
  });

  it('cardinalityRequest with counted: distinctShare, counted events add their value, the others only their id', () => {
    const rule = cardinalityRuleSchema.parse({
      ...common,
      id: 'r-share',
      name: 'cardinality with a share',
      type: 'cardinality',
      window: '10m',
      field: 'actor.userId',
      threshold: 3,
      counted: { filter: { field: 'policy.outcome', equals: 'fail' } },
    });
    const failing = compileFilter({ field: 'policy.outcome', equals: 'fail' });
    const keys = ['values', 'events', 'fired', 'others'].map((part) => `test:rule:{r-share|actor.userId=user-1}:${part}`);
    const failure = cardinalityRequest(policy, rule, extended, failing);
    expect(failure?.script).toBe('distinctShare');
    expect(failure?.keys).toStrictEqual(keys);
    expect(failure?.args).toStrictEqual(['user-1', 'evt-0001-aaaa', T, T - 600_000, T + 600_000, T + 5000 - 600_000 - 300_000, 600_000 + 300_000 + 900_000, 200, 3, 1, 50]);
    const pass: DetectionInput = { event: eventSchema.parse({ ...policyEvent(), policy: { ...policyEvent().policy, outcome: 'pass' } }) };
    expect(cardinalityRequest(pass, rule, extended, failing)?.args.at(-2)).toBe(0);
    // An event that is not counted needs no value; a counted one does.
    const anonymousPass: DetectionInput = { event: eventSchema.parse({ ...policyEvent(), actor: {}, policy: { ...policyEvent().policy, outcome: 'pass' } }) };
    expect(cardinalityRequest(anonymousPass, rule, extended, failing)?.args.slice(0, 2)).toStrictEqual(['', 'evt-0001-aaaa']);
    expect(cardinalityRequest({ event: eventSchema.parse({ ...policyEvent(), actor: {} }) }, rule, extended, failing)).toBeUndefined();
  });

  it('newValueRequest: the value as text, trimmed to the horizon, or nothing without a value', () => {
    const rule = newValueRuleSchema.parse({ ...common, id: 'r-new-value', name: 'new value', type: 'new_value', field: 'invocation.status', horizon: '1d' });
    const invocation: DetectionInput = { event: eventSchema.parse(invocationEvent()) };
    expect(newValueRequest(invocation, rule, extended)).toStrictEqual({
      value: '404',
      request: { script: 'firstSeen', keys: ['test:rule:{r-new-value|actor.userId=user-1}:seen'], args: ['404', T, T - 86_400_000, 86_400_000, 864_000] },
    });
    expect(newValueRequest(policy, rule, extended)).toBeUndefined();
  });

  it('sequenceRequest: the event id and the steps it matched', () => {
    const step = { name: 'any', filter: { field: 'family', equals: 'policy' } };
    const rule = sequenceRuleSchema.parse({ ...common, id: 'r-sequence', name: 'sequence', type: 'sequence', window: '10m', steps: [step, step, step] });
    const request = sequenceRequest(policy, rule, [0, 2], extended);
    expect(request.script).toBe('sequenceAdd');
    expect(request.keys).toStrictEqual(['steps', 'fired'].map((part) => `test:rule:{r-sequence|actor.userId=user-1}:${part}`));
    expect(request.args.slice(0, 2)).toStrictEqual([T, T - 600_000]);
    expect(request.args.slice(-3)).toStrictEqual(['evt-0001-aaaa', '0,2', 2]);
  });
});
