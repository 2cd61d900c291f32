import { seededRandom } from '../../scripts/simulated-traffic';
import { AUTH_CONTEXTS, FAMILIES, POLICY_KINDS, eventSchema, type VigilEvent } from '../../schemas';

const DEVICE_TYPES = ['mobile', 'desktop', 'tablet', 'server', 'iot', 'unknown'] as const;
const DEVICE_ACTIONS = ['login', 'logout', 'session', 'transaction', 'registration', 'password_change', 'other'] as const;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const IPS = ['81.2.69.142', '10.1.2.3', '203.0.113.9', '2001:4860:4860::8888', '::ffff:81.2.69.142', 'fd00::1'];
const TIMES = ['2026-06-01T10:00:00.250Z', '2026-06-01T12:00:00.250+02:00', '2026-06-01T10:00:00Z', '2026-06-01T10:00:00.123456Z', '2026-06-01T04:30:00.5-05:30'];

/**
 * Random valid events of every family, kind, outcome and shape: each optional field absent,
 * present, or (where the contract allows it) an empty string; on device events, each of IP,
 * user agent and device id given in client, in device, in both the same, or in both different.
 */
export function randomEvents(seed: number, count: number): VigilEvent[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const maybe = <T>(value: () => T): T | undefined => (random() < 0.5 ? value() : undefined);
  const text = (): string => pick(['', 'a', 'invalid_credentials', 'é 東 ✓ 😀 "quoted" \\', 'x'.repeat(256)]);
  const name = (prefix: string): string => `${prefix}-${Math.floor(random() * 1000)}`;
  const events: VigilEvent[] = [];
  for (let n = 0; n < count; n++) {
    const family = FAMILIES[n % FAMILIES.length] ?? 'policy';
    const raw: Record<string, unknown> = {
      id: `evt-prop-${seed}-${n}`,
      schemaVersion: 1,
      family,
      time: pick(TIMES),
      source: { service: name('svc'), kind: pick(['gateway', 'service']), instance: maybe(() => name('pod')), environment: maybe(() => 'production') },
      correlation: { requestId: maybe(() => name('req')), traceId: maybe(() => name('trace')), sessionId: maybe(() => name('sess')) },
      actor: { userId: maybe(() => name('u')), consumerId: maybe(() => name('app')), tenantId: maybe(() => name('tenant')) },
      client: {},
      labels: maybe(() => (random() < 0.2 ? {} : { region: 'eu_west', empty: '', run: name('run') })),
    };
    const resource = { api: name('api'), method: pick(METHODS), path: pick(['/', '/v1/login', '/a%00b', `/${'p'.repeat(500)}`]) };
    const client: Record<string, unknown> = {};
    if (family === 'device') {
      const device: Record<string, unknown> = { type: pick(DEVICE_TYPES), action: pick(DEVICE_ACTIONS), os: maybe(text), fingerprint: maybe(() => name('fp')) };
      const pairs = [
        ['ip', 'ip', () => pick(IPS)],
        ['userAgent', 'userAgent', () => pick(['', 'okhttp/4.12', 'Mozilla/5.0\t(X11)'])],
        ['deviceId', 'deviceId', () => name('dev')],
      ] as const;
      for (const [clientKey, deviceKey, value] of pairs) {
        const where = pick(['none', 'client', 'device', 'both-same', 'both-different']);
        const first = value();
        if (where === 'client' || where.startsWith('both')) client[clientKey] = first;
        if (where === 'device' || where === 'both-same') device[deviceKey] = first;
        if (where === 'both-different') device[deviceKey] = clientKey === 'ip' ? (first === '10.1.2.3' ? '10.9.9.9' : '10.1.2.3') : `${first}-other`;
      }
      if (device.deviceId === undefined && device.fingerprint === undefined) device.fingerprint = name('fp');
      if (random() < 0.5) device.geo = { lat: random() * 180 - 90, lon: random() * 360 - 180, accuracyKm: maybe(() => random() * 100), country: maybe(() => 'FR'), city: maybe(text) };
      raw.device = device;
    } else {
      if (random() < 0.7) client.ip = pick(IPS);
      if (random() < 0.7) client.userAgent = pick(['', 'curl/8.5.0']);
      if (random() < 0.3) client.deviceId = name('dev');
      if (family === 'policy') {
        raw.policy = {
          kind: pick(POLICY_KINDS),
          name: name('policy'),
          outcome: pick(['pass', 'fail']),
          reason: maybe(text),
          authContext: maybe(() => pick(AUTH_CONTEXTS)),
          scopes: maybe(() => (random() < 0.3 ? [] : ['payments:write', name('scope')])),
          group: name('group'),
          resource,
        };
      } else {
        raw.invocation = {
          resource,
          route: pick(['/', '/v1/accounts/:id']),
          status: 100 + Math.floor(random() * 500),
          latencyMs: pick([0, 12.5, random() * 5000, 3_600_000]),
          bytesIn: maybe(() => Math.floor(random() * 1e6)),
          bytesOut: maybe(() => pick([0, Math.floor(random() * 1e9)])),
          upstreamService: maybe(() => name('upstream')),
          group: maybe(() => name('group')),
        };
      }
    }
    raw.client = client;
    // Undefined members out: the contract's objects are strict about keys, not about undefined.
    events.push(eventSchema.parse(JSON.parse(JSON.stringify(raw))));
  }
  return events;
}

