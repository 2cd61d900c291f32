import type { DetectionInput } from './input';
import { inputIp } from './input';

const LABELS: Record<string, [string, string]> = {
  'actor.userId': ['user', 'users'],
  'actor.consumerId': ['consumer', 'consumers'],
  'actor.tenantId': ['tenant', 'tenants'],
  'client.ip': ['IP', 'IPs'],
  ipNetwork: ['network', 'networks'],
  'client.deviceId': ['device', 'devices'],
  'device.deviceId': ['device', 'devices'],
  'device.fingerprint': ['device fingerprint', 'device fingerprints'],
  'geo.country': ['country', 'countries'],
  'invocation.resource.path': ['path', 'paths'],
  'policy.resource.path': ['path', 'paths'],
  'invocation.route': ['route', 'routes'],
  'invocation.resource.api': ['API', 'APIs'],
  'policy.resource.api': ['API', 'APIs'],
  'correlation.sessionId': ['session', 'sessions'],
};

/** `actor.userId` → `user` (or `users`); unknown fields stay as written. */
export function fieldLabel(field: string, plural = false): string {
  const label = LABELS[field];
  return label ? label[plural ? 1 : 0] : field;
}

/** `{ actor.userId: u-17, client.ip: 1.2.3.4 }` → `user u-17 and IP 1.2.3.4`. */
export function keyPhrase(key: Record<string, string>): string {
  const parts = Object.entries(key).map(([field, value]) => `${fieldLabel(field)} ${value}`);
  return parts.length === 0 ? 'this event' : parts.join(' and ');
}

/** One line about one event: what, who, where from. */
export function eventPhrase(input: DetectionInput): string {
  const { event } = input;
  const who = [
    event.actor.userId ? `user ${event.actor.userId}` : undefined,
    event.actor.consumerId ? `consumer ${event.actor.consumerId}` : undefined,
  ].filter(Boolean);
  const ip = inputIp(input);
  const from = ip ? ` from ${ip}${input.geo?.country ? ` (${input.geo.country})` : ''}` : '';
  const by = who.length > 0 ? ` by ${who.join(' via ')}` : '';
  switch (event.family) {
    case 'policy': {
      const { policy } = event;
      const why = policy.reason ? ` (${policy.reason})` : '';
      return `${policy.kind} ${policy.outcome}${why} on ${policy.resource.method} ${policy.resource.path}${by}${from}`;
    }
    case 'invocation': {
      const { invocation } = event;
      return `${invocation.resource.method} ${invocation.resource.path} → ${invocation.status}${by}${from}`;
    }
    case 'device':
      return `${event.device.action} on ${event.device.type} device ${event.device.deviceId ?? event.device.fingerprint ?? ''}${by}${from}`;
  }
}
