import { compileFilter, identityOf, inputIdentity, type Correlated } from '../../detectors';
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

  it('takes a later policy decision as proven unless the request failed authentication', () => {
    const authz = event(policyEvent(), { 'policy.kind': 'authz', 'policy.outcome': 'fail', 'actor.userId': 'u-1' });
    expect(identityOf(authz)).toBe('proven');
    expect(identityOf(authz, failedRequest)).toBe('claimed');
  });

  it('is a filter field, derived when the input does not carry it', () => {
    const proven = compileFilter({ field: 'identity', equals: 'proven' });
    expect(proven({ event: authn('pass') })).toBe(true);
    expect(proven({ event: authn('fail') })).toBe(false);
    expect(inputIdentity({ event: authn('fail'), identity: 'proven' })).toBe('proven');
  });
});
