import type { EmitInput, Emitter } from '../ingest/sdk';

/** A deterministic pseudo-random source (mulberry32), so a demo run can be reproduced. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Source = NonNullable<EmitInput<'policy'>['source']>;

/** The simulated producers: two edge gateways and three services behind them. */
export const SIMULATED_SOURCES: readonly Source[] = [
  { service: 'edge-gateway-eu', kind: 'gateway', instance: 'gw-eu-1', environment: 'prod' },
  { service: 'edge-gateway-us', kind: 'gateway', instance: 'gw-us-1', environment: 'prod' },
  { service: 'payments-api', kind: 'service', instance: 'payments-7d9f', environment: 'prod' },
  { service: 'accounts-service', kind: 'service', instance: 'accounts-5c2a', environment: 'prod' },
  { service: 'mobile-bff', kind: 'service', instance: 'bff-2', environment: 'prod' },
];

// Public networks from several countries (resolved by geoip-lite), and an internal one.
const NETWORKS = ['81.2.69.', '8.8.8.', '46.101.12.', '91.198.174.', '185.60.216.', '104.16.85.', '1.1.1.', '200.160.2.', '10.20.3.'];
const APIS = [
  { api: 'payments-v2', group: 'payments', routes: ['/v2/payments', '/v2/payments/:id', '/v2/refunds'] },
  { api: 'accounts-v1', group: 'accounts', routes: ['/v1/accounts/:id', '/v1/accounts/:id/profile', '/v1/login'] },
  { api: 'catalog-v1', group: 'public', routes: ['/v1/products', '/v1/products/:id'] },
];
const CONSUMERS = ['app-mobile-ios', 'app-mobile-android', 'web-checkout', 'partner-acme', 'partner-globex'];
const AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36',
  'okhttp/4.12.0',
  'Vigil-Partner-Client/2.3',
];

/** Counts of what {@link emitSimulatedTraffic} emitted, by family. */
export interface TrafficSummary {
  policy: number;
  invocation: number;
  device: number;
  total: number;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** A stable number per name, so each simulated user keeps one home network, IP and device. */
function stableHash(name: string): number {
  let hash = 2166136261;
  for (let index = 0; index < name.length; index++) hash = Math.imul(hash ^ name.charCodeAt(index), 16777619) >>> 0;
  return hash;
}

/** Where a simulated user always comes from: legitimate users don't teleport. */
export function homeOf(user: string): { ip: string; userAgent: string; mobile: boolean } {
  const hash = stableHash(user);
  // Simulated users u-<n> get distinct addresses; households sharing one IP are not modelled.
  const numbered = /^u-(\d+)$/.exec(user);
  const slot = numbered ? Number(numbered[1]) : hash;
  const publicNetworks = NETWORKS.length - 1; // never the internal network
  const network = NETWORKS[slot % publicNetworks] as string;
  const host = 1 + (Math.floor(slot / publicNetworks) % 250);
  const userAgent = AGENTS[(hash >>> 8) % AGENTS.length] as string;
  return { ip: `${network}${host}`, userAgent, mobile: userAgent.includes('iPhone') || userAgent.startsWith('okhttp') };
}

/** Options of {@link emitSimulatedTraffic}. */
export interface SimulatedTrafficOptions {
  /** The pseudo-random seed. @defaultValue 42 */
  seed?: number;
  /** Labels put on every event. @defaultValue none */
  labels?: Record<string, string>;
  /** The end of the simulated period. @defaultValue the current time */
  now?: Date;
  /**
   * Spread the requests in order over this many milliseconds ending at `now`, each up to a second
   * earlier than its place (gateways' clocks and batches disagree a little), as a stream of that
   * length would be; a large count then stays at a realistic rate per user and per endpoint.
   * Unset, every event falls at random in the minute before `now` (the demo's and tests' traffic).
   * @defaultValue unset
   */
  periodMs?: number;
}

/**
 * Emits `count` realistic events through the SDK: per simulated request, the gateway's policy
 * decisions (authN, authZ, rate limit, JSON threat protection) and the invocation, all sharing a
 * request id; logins also report the device. Mostly passes, with the failures real traffic has.
 */
export function emitSimulatedTraffic(emitters: readonly Emitter[], count: number, options: SimulatedTrafficOptions = {}): TrafficSummary {
  const random = seededRandom(options.seed ?? 42);
  const summary: TrafficSummary = { policy: 0, invocation: 0, device: 0, total: 0 };
  const base = (options.now ?? new Date()).getTime();
  const labels = options.labels;
  const periodMs = options.periodMs;
  let request = 0;
  while (summary.total < count) {
    request++;
    const emitter = emitters[request % emitters.length] as Emitter;
    const user = `u-${1000 + Math.floor(random() * 250)}`;
    const consumerId = pick(random, CONSUMERS);
    const home = homeOf(user);
    const ip = home.ip;
    const target = pick(random, APIS);
    const route = pick(random, target.routes);
    const path = route.replace(':id', String(1000 + Math.floor(random() * 9000)));
    const method = route.endsWith('payments') || route.endsWith('refunds') || route.endsWith('login') ? 'POST' : 'GET';
    // One draw either way, so the rest of the sequence (users, routes, outcomes) is the same.
    const time = new Date(
      periodMs === undefined ? base - Math.floor(random() * 60_000) : base - periodMs + Math.floor((summary.total / count) * periodMs) - Math.floor(random() * 1000),
    ).toISOString();
    const requestId = `req-${request.toString(36)}-${Math.floor(random() * 1e9).toString(36)}`;
    const sessionId = `s-${user}-${Math.floor(random() * 3)}`;
    const userAgent = home.userAgent;
    const common = {
      time,
      correlation: { requestId, sessionId },
      actor: { userId: user, consumerId, tenantId: 'acme-bank' },
      client: { ip, userAgent },
      ...(labels ? { labels } : {}),
    };
    const resource = { api: target.api, method, path } as const;
    const remaining = (): number => count - summary.total;

    const authnFailed = random() < 0.04;
    emitter.policy({
      ...common,
      policy: {
        kind: 'authn',
        name: 'verify-oauth2-token',
        outcome: authnFailed ? 'fail' : 'pass',
        ...(authnFailed ? { reason: pick(random, ['invalid_token', 'expired_token', 'invalid_credentials']) } : {}),
        authContext: route.endsWith('login') ? 'basic' : 'oauth2',
        group: target.group,
        resource,
      },
    });
    summary.policy++;
    summary.total++;
    let status = authnFailed ? 401 : 200;
    if (!authnFailed && remaining() > 0) {
      const limited = random() < 0.03;
      emitter.policy({
        ...common,
        policy: { kind: 'rate_limit', name: 'spike-arrest-100rps', outcome: limited ? 'fail' : 'pass', ...(limited ? { reason: 'quota_exceeded' } : {}), group: target.group, resource },
      });
      summary.policy++;
      summary.total++;
      if (limited) status = 429;
    }
    if (status === 200 && remaining() > 0 && method === 'POST') {
      const threat = false; // benign traffic carries no threat-protection violations
      emitter.policy({
        ...common,
        policy: { kind: 'json_threat', name: 'json-threat-protection', outcome: threat ? 'fail' : 'pass', ...(threat ? { reason: 'object_entry_count_exceeded' } : {}), group: target.group, resource },
      });
      summary.policy++;
      summary.total++;
      if (threat) status = 400;
    }
    if (status === 200 && remaining() > 0 && target.group === 'payments') {
      const denied = random() < 0.05;
      emitter.policy({
        ...common,
        policy: { kind: 'authz', name: 'require-scope', outcome: denied ? 'fail' : 'pass', ...(denied ? { reason: 'missing_scope' } : {}), scopes: ['payments:write'], authContext: 'oauth2', group: target.group, resource },
      });
      summary.policy++;
      summary.total++;
      if (denied) status = 403;
    }
    if (remaining() > 0) {
      if (status === 200 && random() < 0.01) status = 503;
      emitter.invocation({
        ...common,
        invocation: {
          resource,
          route,
          status,
          latencyMs: Math.round((5 + random() * 120 + (status === 503 ? 2000 : 0)) * 100) / 100,
          bytesIn: method === 'POST' ? 200 + Math.floor(random() * 2000) : 0,
          bytesOut: 100 + Math.floor(random() * 8000),
          upstreamService: target.group === 'payments' ? 'payments-api' : 'accounts-service',
          group: target.group,
        },
      });
      summary.invocation++;
      summary.total++;
    }
    if (route.endsWith('login') && remaining() > 0) {
      const mobile = home.mobile;
      emitter.device({
        ...common,
        device: {
          deviceId: `dev-${user}-${mobile ? 'phone' : 'laptop'}`,
          type: mobile ? 'mobile' : 'desktop',
          os: mobile ? 'iOS 18.1' : 'Windows 11',
          action: 'login',
          ip,
        },
      });
      summary.device++;
      summary.total++;
    }
  }
  return summary;
}

/** Raw messages no SDK would send, one per dead-letter reason the pipeline can see in a message. */
export function malformedMessages(maxMessageBytes: number, maxJsonDepth: number, validPolicyEvent: object): {
  reason: string;
  value: string;
  topicFamily: 'policy' | 'invocation';
}[] {
  return [
    { reason: 'not_json', value: '{"id": "evt-broken", "family": "policy",', topicFamily: 'policy' },
    { reason: 'schema_invalid', value: JSON.stringify({ ...validPolicyEvent, policy: { kind: 'authn', outcome: 'maybe' } }), topicFamily: 'policy' },
    { reason: 'unknown_schema_version', value: JSON.stringify({ ...validPolicyEvent, schemaVersion: 99 }), topicFamily: 'policy' },
    { reason: 'too_deep', value: `${'['.repeat(maxJsonDepth + 5)}${']'.repeat(maxJsonDepth + 5)}`, topicFamily: 'policy' },
    { reason: 'too_large', value: JSON.stringify({ ...validPolicyEvent, padding: 'x'.repeat(maxMessageBytes) }), topicFamily: 'policy' },
    { reason: 'wrong_topic', value: JSON.stringify(validPolicyEvent), topicFamily: 'invocation' },
  ];
}
