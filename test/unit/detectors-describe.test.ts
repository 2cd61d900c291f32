import { eventPhrase, fieldLabel, keyPhrase, type DetectionInput } from '../../detectors';
import { eventSchema, type VigilEvent } from '../../schemas';
import { deviceEvent, invocationEvent, minimalEvents, policyEvent, withField } from './fixtures';

function event(example: object, changes: Record<string, unknown> = {}): VigilEvent {
  let value: object = example;
  for (const [path, replacement] of Object.entries(changes)) value = withField(value, path, replacement);
  return eventSchema.parse(value);
}

describe('fieldLabel', () => {
  it.each([
    ['actor.userId', 'user', 'users'],
    ['actor.consumerId', 'consumer', 'consumers'],
    ['client.ip', 'IP', 'IPs'],
    ['device.deviceId', 'device', 'devices'],
    ['geo.country', 'country', 'countries'],
    ['invocation.resource.path', 'path', 'paths'],
  ])('names %s "%s" and "%s"', (field, one, many) => {
    expect(fieldLabel(field)).toBe(one);
    expect(fieldLabel(field, true)).toBe(many);
  });

  it('leaves an unknown field as written, singular or plural', () => {
    expect(fieldLabel('policy.group')).toBe('policy.group');
    expect(fieldLabel('policy.group', true)).toBe('policy.group');
  });
});

describe('keyPhrase', () => {
  it('words the group-by values in order, joined by "and"', () => {
    expect(keyPhrase({ 'actor.userId': 'u-17' })).toBe('user u-17');
    expect(keyPhrase({ 'actor.userId': 'u-17', 'client.ip': '1.2.3.4' })).toBe('user u-17 and IP 1.2.3.4');
    expect(keyPhrase({ 'policy.group': 'payments', 'geo.country': 'GB' })).toBe('policy.group payments and country GB');
  });

  it('says "this event" when there is no key', () => {
    expect(keyPhrase({})).toBe('this event');
  });
});

describe('eventPhrase', () => {
  it('words a policy event: kind, outcome, reason, resource, who and where from', () => {
    const input: DetectionInput = { event: event(policyEvent()), geo: { country: 'GB' } };
    expect(eventPhrase(input)).toBe('authn fail (invalid_credentials) on POST /payments/123 by user user-1 via consumer app-1 from 81.2.69.142 (GB)');
  });

  it('leaves out what the event does not say', () => {
    expect(eventPhrase({ event: event(minimalEvents().policy) })).toBe('rate_limit pass on GET /');
    expect(eventPhrase({ event: event(policyEvent(), { actor: { consumerId: 'app-1' } }) })).toBe(
      'authn fail (invalid_credentials) on POST /payments/123 by consumer app-1 from 81.2.69.142',
    );
  });

  it('words an invocation: method, path and status', () => {
    expect(eventPhrase({ event: event(invocationEvent()) })).toBe('GET /accounts/42 → 404 by consumer app-2 from 10.1.2.3');
  });

  it('words a device event, from the device IP when the client has none', () => {
    expect(eventPhrase({ event: event(deviceEvent()), geo: { country: 'FR' } })).toBe('password_change on mobile device phone-3 by user user-3 from 8.8.8.8 (FR)');
    expect(eventPhrase({ event: event(minimalEvents().device) })).toBe('other on unknown device fp-min');
  });
});
