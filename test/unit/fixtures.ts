/**
 * Example events shared by the unit tests. Every function returns a fresh object, so a test may
 * change what it gets without touching another test's data.
 */
import type { KafkaPosition } from '../../ingest';
import type { EmitInput } from '../../ingest/sdk';
import type { EventInputOf } from '../../schemas';

/** The envelope of the example events: what the emitter fills in when a caller leaves it out. */
export function envelope(): { id: string; schemaVersion: 1; time: string; source: { service: string; kind: 'gateway' } } {
  return {
    id: 'evt-0001-aaaa',
    schemaVersion: 1,
    // An offset on purpose: documents and index names must come out in UTC.
    time: '2024-05-01T12:30:00.250+02:00',
    source: { service: 'edge-gateway-eu', kind: 'gateway' },
  };
}

/** A failed API-key check, as a caller hands it to `emitter.policy()`. */
export function policyInput(): EmitInput<'policy'> {
  return {
    correlation: { requestId: 'req-1', traceId: 'trace-1', sessionId: 'sess-1' },
    actor: { userId: 'user-1', consumerId: 'app-1', tenantId: 'tenant-1' },
    client: { ip: '81.2.69.142', userAgent: 'curl/8.5.0', deviceId: 'device-1' },
    labels: { region: 'eu_west' },
    policy: {
      kind: 'authn',
      name: 'verify-api-key',
      outcome: 'fail',
      reason: 'invalid_credentials',
      authContext: 'api_key',
      scopes: ['payments:write'],
      group: 'payments',
      resource: { api: 'payments-v2', method: 'POST', path: '/payments/123' },
    },
  };
}

/** One API call, as a caller hands it to `emitter.invocation()`. */
export function invocationInput(): EmitInput<'invocation'> {
  return {
    correlation: { requestId: 'req-2' },
    actor: { consumerId: 'app-2' },
    client: { ip: '10.1.2.3', userAgent: 'okhttp/4.12' },
    invocation: {
      resource: { api: 'accounts-v1', method: 'GET', path: '/accounts/42' },
      route: '/accounts/:id',
      status: 404,
      latencyMs: 12.5,
      bytesIn: 0,
      bytesOut: 321,
      upstreamService: 'accounts-service',
      group: 'accounts',
    },
  };
}

/** A login from a phone that knows where it is, as a caller hands it to `emitter.device()`. */
export function deviceInput(): EmitInput<'device'> {
  return {
    actor: { userId: 'user-3' },
    correlation: { requestId: 'req-3', sessionId: 'sess-3' },
    device: {
      deviceId: 'phone-3',
      fingerprint: 'fp-3',
      type: 'mobile',
      os: 'Android 14',
      userAgent: 'VigilApp/1.0 (Android)',
      ip: '8.8.8.8',
      action: 'password_change',
      geo: { lat: 48.8566, lon: 2.3522, accuracyKm: 0.5, country: 'FR', city: 'Paris' },
    },
  };
}

/** A complete, valid policy event. */
export function policyEvent(): EventInputOf<'policy'> {
  return { ...policyInput(), ...envelope(), family: 'policy' };
}

/** A complete, valid invocation event. */
export function invocationEvent(): EventInputOf<'invocation'> {
  return { ...invocationInput(), ...envelope(), id: 'evt-0002-bbbb', family: 'invocation' };
}

/** A complete, valid device event. */
export function deviceEvent(): EventInputOf<'device'> {
  return { ...deviceInput(), ...envelope(), id: 'evt-0003-cccc', family: 'device' };
}

/** The smallest valid event of each family: only required fields. */
export function minimalEvents(): { policy: EventInputOf<'policy'>; invocation: EventInputOf<'invocation'>; device: EventInputOf<'device'> } {
  const resource = { api: 'api-1', method: 'GET', path: '/' } as const;
  return {
    policy: {
      ...envelope(),
      family: 'policy',
      policy: { kind: 'rate_limit', name: 'spike-arrest', outcome: 'pass', group: 'default', resource },
    },
    invocation: {
      ...envelope(),
      family: 'invocation',
      invocation: { resource, route: '/', status: 200, latencyMs: 0 },
    },
    device: {
      ...envelope(),
      family: 'device',
      device: { fingerprint: 'fp-min', type: 'unknown', action: 'other' },
    },
  };
}

/** Where the example messages were read from. */
export function kafkaPosition(): KafkaPosition {
  return { topic: 'vigil.events.policy', partition: 2, offset: '1234567890123' };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A deep copy of `value` with the field at a dotted `path` replaced (or removed, when
 * `replacement` is undefined): for invalid examples that the types would refuse.
 */
export function withField(value: object, path: string, replacement: unknown): Record<string, unknown> {
  const copy: unknown = structuredClone(value);
  if (!isRecord(copy)) throw new TypeError('expected an object');
  const keys = path.split('.');
  const last = keys.pop();
  if (last === undefined) throw new TypeError('empty path');
  let target: Record<string, unknown> = copy;
  for (const key of keys) {
    // A missing object on the way (an envelope default left out) is created.
    const next = target[key] ?? {};
    if (!isRecord(next)) throw new TypeError(`no object at ${key} of ${path}`);
    target[key] = next;
    target = next;
  }
  if (replacement === undefined) delete target[last];
  else target[last] = replacement;
  return copy;
}

/** Every dotted path in `value` whose value is null or undefined (an empty list: none). */
export function absentValuePaths(value: unknown, path = ''): string[] {
  if (value === null || value === undefined) return [path || '(root)'];
  if (Array.isArray(value)) return value.flatMap((item, index) => absentValuePaths(item, `${path}[${index}]`));
  if (isRecord(value)) {
    return Object.entries(value).flatMap(([key, child]) => absentValuePaths(child, path ? `${path}.${key}` : key));
  }
  return [];
}
