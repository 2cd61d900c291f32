import { compileFilter, identityOf, inputIdentity, namedEntities, type Correlated } from '../../detectors';
import { eventSchema, type VigilEvent } from '../../schemas';
import { deviceEvent, invocationEvent, policyEvent, withField } from './fixtures';

function event(example: object, changes: Record<string, unknown>): VigilEvent {
  let value: object = example;
  for (const [path, replacement] of Object.entries(changes)) value = withField(value, path, replacement);
  return eventSchema.parse(value);
}

const authn = (outcome: 'pass' | 'fail'): VigilEvent => event(policyEvent(), { 'policy.kind': 'authn', 'policy.outcome': outcome, 'actor.userId': 'u-1' });
const invocation = (status: number, userId?: string): VigilEvent => event(invocationEvent(), { 'invocation.status': status, 'actor.userId': userId });
const failedRequest: Correlated = { request: { policies: { authn: 'fail' }, failedPolicies: ['authn'] } };

describe('identityOf (the trust model)', () => {
  it('proves a user by a passed authentication, and only claims one by a failed one', () => {
    expect(identityOf(authn('pass'))).toBe('proven');
    expect(identityOf(authn('fail'))).toBe('claimed');
  });

  it('has no user without a user id', () => {
    expect(identityOf(invocation(200, undefined))).toBe('anonymous');
  });

  it('takes a device event as proof: the service reports its own session', () => {
    expect(identityOf(event(deviceEvent(), { 'actor.userId': 'u-1' }))).toBe('proven');
  });

  it('refuses an invocation answered 401, or in a request whose authentication failed', () => {
    expect(identityOf(invocation(200, 'u-1'))).toBe('proven');
    expect(identityOf(invocation(401, 'u-1'))).toBe('claimed');
    expect(identityOf(invocation(200, 'u-1'), failedRequest)).toBe('claimed');
  });

  it('takes an authorization decision as proven unless the request failed authentication', () => {
    const authz = event(policyEvent(), { 'policy.kind': 'authz', 'policy.outcome': 'fail', 'actor.userId': 'u-1' });
    expect(identityOf(authz)).toBe('proven');
    expect(identityOf(authz, failedRequest)).toBe('claimed');
  });

  // A login's per-username rate limiter names whatever was typed: its rejections of a spray moved
  // the victim's location and raised new-country and impossible-travel against them.
  it('takes a rate limit or threat decision as proven only on a request whose authentication was seen to pass', () => {
    const passedRequest: Correlated = { request: { policies: { authn: 'pass' }, failedPolicies: [], authnUser: 'victim' } };
    for (const kind of ['rate_limit', 'json_threat', 'xml_threat', 'custom']) {
      const decision = event(policyEvent(), { 'policy.kind': kind, 'policy.outcome': 'fail', 'actor.userId': 'victim' });
      expect([kind, identityOf(decision)]).toStrictEqual([kind, 'claimed']);
      expect([kind, identityOf(decision, passedRequest)]).toStrictEqual([kind, 'proven']);
      expect([kind, identityOf(decision, failedRequest)]).toStrictEqual([kind, 'claimed']);
    }
  });

  // Request ids are often the client's own X-Request-Id: signed in as itself under id R, a client
  // could send a spray naming the victim under R, and each rejection would prove the victim.
  it('takes a rate limit or threat decision as proven only when the passed authentication named the same user', () => {
    const signedInAsAttacker: Correlated = { request: { policies: { authn: 'pass' }, failedPolicies: [], authnUser: 'attacker' } };
    const nobodyNamed: Correlated = { request: { policies: { authn: 'pass' }, failedPolicies: [] } };
    for (const kind of ['rate_limit', 'json_threat', 'xml_threat', 'custom']) {
      const decision = event(policyEvent(), { 'policy.kind': kind, 'policy.outcome': 'fail', 'actor.userId': 'victim' });
      expect([kind, identityOf(decision, signedInAsAttacker)]).toStrictEqual([kind, 'claimed']);
      expect([kind, identityOf(decision, nobodyNamed)]).toStrictEqual([kind, 'claimed']);
    }
  });

  it('is a filter field, derived when the input does not carry it', () => {
    const proven = compileFilter({ field: 'identity', equals: 'proven' });
    expect(proven({ event: authn('pass') })).toBe(true);
    expect(proven({ event: authn('fail') })).toBe(false);
    expect(inputIdentity({ event: authn('fail'), identity: 'proven' })).toBe('proven');
  });
});

describe('namedEntities (what a detection names for incident linking)', () => {
  const ip = { 'client.ip': '203.0.113.9' };
  const success = { identity: 'proven' as const, userId: 'victim', eventId: 'e-pass' };

  it('names the user a sequence\'s final step proves, on a rule keyed on the IP', () => {
    expect(namedEntities('sequence', ip, success, ['e-fail-1', 'e-fail-2', 'e-pass'])).toStrictEqual({ 'actor.userId': 'victim' });
    expect(namedEntities('match', ip, success, ['e-pass'])).toStrictEqual({ 'actor.userId': 'victim' });
  });

  it('names nobody for a claimed user, a count\'s tipping event, a key that is not an IP or already a user, or a chain completed by a late earlier step', () => {
    expect(namedEntities('sequence', ip, { ...success, identity: 'claimed' }, ['e-pass'])).toBeUndefined();
    expect(namedEntities('sequence', ip, { identity: 'proven', eventId: 'e-pass' }, ['e-pass'])).toBeUndefined();
    expect(namedEntities('threshold', ip, success, ['e-pass'])).toBeUndefined();
    expect(namedEntities('cardinality', ip, success, ['e-pass'])).toBeUndefined();
    expect(namedEntities('sequence', { 'actor.consumerId': 'web-portal' }, success, ['e-pass'])).toBeUndefined();
    expect(namedEntities('sequence', { ...ip, 'actor.userId': 'victim' }, success, ['e-pass'])).toBeUndefined();
    expect(namedEntities('sequence', ip, success, ['e-pass', 'e-fail-late'])).toBeUndefined();
  });
});
