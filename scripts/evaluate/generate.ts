/**
 * The evaluator's traffic: an hour of event time from a few hundred users of a made-up platform,
 * with attacks and hard benign cases injected, each labelled with the keys a correct incident
 * would be on and its event-time interval. Seeded: the same seed gives the same traffic, another
 * seed other IPs, users, times and sizes. Pure apart from the injected geo lookup, which finds
 * addresses by what the geo database says of them (a city, or only a country).
 */
import type { EmitInput } from '../../ingest/sdk';
import { seededRandom } from '../simulated-traffic';

/** What the geo database says of an address: geoip-lite's answer, reduced. `city` is '' when it knows only the country. */
export interface GeoAnswer {
  country: string;
  city: string;
  lat: number;
  lon: number;
}

/** Looks an address up in the geo database the pipeline uses; undefined when it is not located. */
export type Locate = (ip: string) => GeoAnswer | undefined;

/** One event to produce, at its event time (epoch ms). */
export type PlannedEvent =
  | { family: 'policy'; at: number; input: EmitInput<'policy'> }
  | { family: 'invocation'; at: number; input: EmitInput<'invocation'> }
  | { family: 'device'; at: number; input: EmitInput<'device'> };

/** The attacks and hard benign cases the generator injects. */
export const ATTACK_CASES = [
  'credential-stuffing',
  'brute-force-takeover',
  'impossible-travel',
  'enumeration',
  'distributed-flood',
  'rate-limit-storm',
  'privileged-authz-failures',
  'threat-payloads',
  'step-up-bypass',
] as const;
export const BENIGN_CASES = ['typos', 'shared-nat', 'ramp-2x', 'flash-crowd', 'plausible-travel', 'coarse-geoip', 'new-device-read-only'] as const;

/** A labelled case: what was injected, and what a correct incident would be on. */
export interface EvaluationCase {
  id: string;
  kind: 'attack' | 'benign';
  description: string;
  /**
   * The keys a correct incident is on, each as the values that together name it (an IP; a user;
   * an API and a route). For a benign case, the keys an alert about it would be on.
   */
  keys: string[][];
  /** Every other value the case put on its events (IPs, typed usernames, consumers): an alert keyed by one belongs to it. */
  entities: string[];
  /** Event-time interval of the case (ISO 8601). */
  start: string;
  end: string;
  events: number;
}

/** Options of {@link generateTraffic}. */
export interface GenerateOptions {
  seed: number;
  /** End of the event-time hour (epoch ms); rounded down to a minute so buckets align. */
  end: number;
  locate: Locate;
  /** Background users. @defaultValue 400 */
  users?: number;
  /** Background requests per user over the hour, on average. @defaultValue 30 */
  requestsPerUser?: number;
  /** Source IPs of the distributed flood. @defaultValue 800 */
  floodSources?: number;
  /** Multiplies the volumes of the ramp, the flash crowd and the shared NAT (tests scale down). @defaultValue 1 */
  volume?: number;
  /** Put on every event's `labels` beside `case`. */
  runId?: string;
}

/** The generated traffic: its events in event-time order, and the labelled cases. */
export interface GeneratedTraffic {
  seed: number;
  start: number;
  end: number;
  events: PlannedEvent[];
  cases: EvaluationCase[];
  background: { users: number; events: number };
}

const MINUTE = 60_000;
/** The fewest background users the cases need (those they borrow, and some left to read). */
export const MIN_USERS = 50;
const LOGIN = { api: 'identity-v2', route: '/v2/sessions', group: 'identity' } as const;
const ENDPOINTS = [
  { api: 'orders-v3', route: '/v3/orders', method: 'GET', group: 'commerce' },
  { api: 'orders-v3', route: '/v3/orders/:id', method: 'GET', group: 'commerce' },
  { api: 'orders-v3', route: '/v3/orders', method: 'POST', group: 'commerce' },
  { api: 'catalog-v2', route: '/v2/items', method: 'GET', group: 'public' },
  { api: 'catalog-v2', route: '/v2/items/:id', method: 'GET', group: 'public' },
  { api: 'payments-v1', route: '/v1/transfers', method: 'POST', group: 'payments' },
  { api: 'payments-v1', route: '/v1/transfers/:id', method: 'GET', group: 'payments' },
  { api: 'profile-v1', route: '/v1/me', method: 'GET', group: 'accounts' },
  { api: 'profile-v1', route: '/v1/me', method: 'PATCH', group: 'accounts' },
] as const;
type Endpoint = { api: string; route: string; method: string; group: string };
const APPS = ['web-portal', 'ios-app', 'android-app'];
const FIRST = ['ana', 'ben', 'chen', 'dara', 'eli', 'fatima', 'goran', 'hana', 'ivan', 'jun', 'kofi', 'lena', 'mateo', 'nia', 'omar', 'priya', 'quinn', 'rosa', 'sven', 'tariq', 'uma', 'vera', 'wei', 'yusuf', 'zoe'];
const LAST = ['novak', 'silva', 'khan', 'meyer', 'rossi', 'tanaka', 'okafor', 'dubois', 'larsen', 'garcia', 'ivanova', 'murphy', 'haddad', 'kim', 'costa', 'berg'];
const USER_AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36',
];
const TOOLS = ['python-requests/2.32.3', 'curl/8.9.1', 'Go-http-client/1.1', 'okhttp/4.12.0', 'axios/1.7.7'];

/** Great-circle distance in km. */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const radians = Math.PI / 180;
  const dLat = (b.lat - a.lat) * radians;
  const dLon = (b.lon - a.lon) * radians;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * radians) * Math.cos(b.lat * radians) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** A random source bound to one seed, with the draws the generator needs. */
class Draw {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [low, high]. */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  id(): string {
    return Math.floor(this.next() * 2 ** 40).toString(36);
  }
}

/** Addresses by what the geo database says of them, never one twice. */
class Addresses {
  private readonly used = new Set<string>();
  constructor(
    private readonly draw: Draw,
    private readonly locate: Locate,
  ) {}

  /** A public IPv4 address (no private, shared, loopback, link-local or multicast range). */
  private candidate(): string {
    for (;;) {
      const first = this.draw.int(1, 223);
      const second = this.draw.int(0, 255);
      if (first === 10 || first === 127 || first === 0) continue;
      if ((first === 172 && second >= 16 && second < 32) || (first === 192 && second === 168) || (first === 100 && second >= 64 && second < 128) || (first === 169 && second === 254)) continue;
      const ip = `${first}.${second}.${this.draw.int(0, 255)}.${this.draw.int(1, 254)}`;
      if (!this.used.has(ip)) return ip;
    }
  }

  /** An address the database answers for and `accept` takes; throws naming `what` when none turns up. */
  find(what: string, accept: (geo: GeoAnswer) => boolean, tries = 400_000): { ip: string; geo: GeoAnswer } {
    for (let attempt = 0; attempt < tries; attempt++) {
      const ip = this.candidate();
      const geo = this.locate(ip);
      if (geo !== undefined && accept(geo)) {
        this.used.add(ip);
        return { ip, geo };
      }
    }
    throw new Error(`evaluate: no address found for ${what} in ${tries} tries of the geo database`);
  }

  /** An address located to a city. */
  city(what: string, accept: (geo: GeoAnswer) => boolean = () => true, tries?: number): { ip: string; geo: GeoAnswer } {
    return this.find(what, (geo) => geo.city !== '' && accept(geo), tries);
  }

  /** Any public address not used yet (located or not). */
  any(): string {
    const ip = this.candidate();
    this.used.add(ip);
    return ip;
  }
}

interface User {
  id: string;
  ip: string;
  geo: GeoAnswer;
  device: string;
  userAgent: string;
  mobile: boolean;
  app: string;
}

/**
 * Generates the evaluation traffic (see the file comment). Every case's interval lies after the
 * first quarter of the hour, so the endpoints' baselines exist when it starts.
 */
export function generateTraffic(options: GenerateOptions): GeneratedTraffic {
  if (!Number.isInteger(options.seed)) throw new Error(`evaluate: the seed must be an integer, not ${String(options.seed)}`);
  const draw = new Draw(options.seed);
  const addresses = new Addresses(draw, options.locate);
  const end = Math.floor(options.end / MINUTE) * MINUTE;
  const start = end - 60 * MINUTE;
  const userCount = options.users ?? 400;
  if (!Number.isInteger(userCount) || userCount < MIN_USERS) throw new Error(`evaluate: users must be an integer of at least ${MIN_USERS}, not ${String(options.users)}`);
  const requestsPerUser = options.requestsPerUser ?? 30;
  const volume = options.volume ?? 1;
  const runLabel: Record<string, string> = options.runId !== undefined ? { run: options.runId } : {};
  const events: PlannedEvent[] = [];
  const cases: EvaluationCase[] = [];
  let current = 'background';
  let caseEvents = 0;
  const labels = (): Record<string, string> => ({ ...runLabel, case: current });
  const push = (event: PlannedEvent): void => {
    // Whole milliseconds, as the event's time says.
    event.at = Math.round(event.at);
    events.push(event);
    caseEvents++;
  };
  const iso = (at: number): string => new Date(Math.round(at)).toISOString();

  // --- Event builders: a request is its policy decisions and the invocation, sharing a request id.
  const names = new Set<string>();
  const newName = (): string => {
    for (;;) {
      const name = `${draw.pick(FIRST)}.${draw.pick(LAST)}${draw.int(1, 999)}`;
      if (!names.has(name)) {
        names.add(name);
        return name;
      }
    }
  };
  const newUser = (what: string, accept?: (geo: GeoAnswer) => boolean): User => {
    const home = addresses.city(what, accept);
    const userAgent = draw.pick(USER_AGENTS);
    const name = newName();
    return { id: name, ip: home.ip, geo: home.geo, device: `dev-${draw.id()}`, userAgent, mobile: /iPhone|Android/.test(userAgent), app: draw.pick(APPS) };
  };
  interface Request {
    at: number;
    endpoint: Endpoint;
    ip: string;
    userId?: string;
    consumerId?: string;
    userAgent?: string;
    sessionId?: string;
    authn?: { outcome: 'pass' | 'fail'; context: 'basic' | 'oauth2' | 'jwt' | '2fa' | 'api_key'; reason?: string; name?: string };
    authz?: { outcome: 'pass' | 'fail'; scopes: string[]; reason?: string };
    rateLimited?: boolean;
    threat?: 'json' | 'xml';
    status?: number;
    latencyMs?: number;
  }
  const request = (r: Request): void => {
    const common = {
      time: iso(r.at),
      correlation: { requestId: `req-${draw.id()}`, ...(r.sessionId !== undefined ? { sessionId: r.sessionId } : {}) },
      actor: { ...(r.userId !== undefined ? { userId: r.userId } : {}), ...(r.consumerId !== undefined ? { consumerId: r.consumerId } : {}) },
      client: { ip: r.ip, ...(r.userAgent !== undefined ? { userAgent: r.userAgent } : {}) },
      labels: labels(),
    };
    const path = r.endpoint.route.replace(':id', String(draw.int(10_000, 99_999)));
    const resource = { api: r.endpoint.api, method: r.endpoint.method as 'GET', path };
    const group = r.endpoint.group;
    let status = r.status ?? 200;
    let offset = 0;
    const policy = (input: EmitInput<'policy'>['policy']): void => {
      push({ family: 'policy', at: r.at + offset, input: { ...common, time: iso(r.at + offset), policy: input } });
      offset += 1;
    };
    if (r.authn) {
      policy({
        kind: 'authn',
        name: r.authn.name ?? (r.authn.context === 'api_key' ? 'key-auth' : r.authn.context === 'basic' || r.authn.context === '2fa' ? 'verify-password' : 'verify-token'),
        outcome: r.authn.outcome,
        ...(r.authn.reason !== undefined ? { reason: r.authn.reason } : {}),
        authContext: r.authn.context,
        group,
        resource,
      });
      if (r.authn.outcome === 'fail') status = r.status ?? 401;
    }
    if (status < 400 || r.rateLimited === true) {
      policy({ kind: 'rate_limit', name: 'quota-per-consumer', outcome: r.rateLimited === true ? 'fail' : 'pass', ...(r.rateLimited === true ? { reason: 'quota_exceeded' } : {}), group, resource });
      if (r.rateLimited === true) status = 429;
    }
    if (status < 400 && r.endpoint.method !== 'GET') {
      const kind = r.threat === 'xml' ? 'xml_threat' : 'json_threat';
      policy({ kind, name: `${kind === 'xml_threat' ? 'xml' : 'json'}-threat-protection`, outcome: r.threat ? 'fail' : 'pass', ...(r.threat === 'json' ? { reason: draw.pick(['container_depth_exceeded', 'object_entry_count_exceeded', 'string_length_exceeded']) } : r.threat === 'xml' ? { reason: 'entity_expansion' } : {}), group, resource });
      if (r.threat) status = 400;
    }
    if (status < 400 && r.authz) {
      policy({ kind: 'authz', name: 'require-scope', outcome: r.authz.outcome, ...(r.authz.reason !== undefined ? { reason: r.authz.reason } : {}), scopes: r.authz.scopes, authContext: r.authn?.context === 'api_key' ? 'api_key' : 'oauth2', group, resource });
      if (r.authz.outcome === 'fail') status = 403;
    }
    push({
      family: 'invocation',
      at: r.at + offset,
      input: {
        ...common,
        time: iso(r.at + offset),
        invocation: {
          resource,
          route: r.endpoint.route,
          status,
          latencyMs: r.latencyMs ?? Math.round((8 + draw.float() * 90) * 10) / 10,
          group,
          upstreamService: `${r.endpoint.api.split('-')[0] ?? r.endpoint.api}-service`,
        },
      },
    });
  };
  const deviceLogin = (at: number, user: User, ip = user.ip, device = user.device, userAgent = user.userAgent): void => {
    push({
      family: 'device',
      at,
      input: {
        time: iso(at),
        actor: { userId: user.id, consumerId: user.app },
        client: { ip, userAgent },
        device: { deviceId: device, type: user.mobile ? 'mobile' : 'desktop', action: 'login', ip },
        labels: labels(),
      },
    });
  };
  /** A sign-in: password and second factor, the device reported, then `requests` requests. */
  const session = (user: User, at: number, requests: number, choose: () => Endpoint = () => draw.pick(ENDPOINTS), options: { ip?: string; device?: string; userAgent?: string; failures?: number } = {}): number => {
    const ip = options.ip ?? user.ip;
    const sessionId = `s-${draw.id()}`;
    let time = at;
    for (let failure = 0; failure < (options.failures ?? 0); failure++) {
      request({ at: time, endpoint: { ...LOGIN, method: 'POST' }, ip, userId: user.id, consumerId: user.app, userAgent: options.userAgent ?? user.userAgent, authn: { outcome: 'fail', context: 'basic', reason: 'invalid_credentials' } });
      time += draw.int(4, 20) * 1000;
    }
    request({ at: time, endpoint: { ...LOGIN, method: 'POST' }, ip, userId: user.id, consumerId: user.app, userAgent: options.userAgent ?? user.userAgent, sessionId, authn: { outcome: 'pass', context: '2fa' } });
    deviceLogin(time + 5, user, ip, options.device ?? user.device, options.userAgent ?? user.userAgent);
    for (let n = 0; n < requests; n++) {
      time += draw.int(3, 45) * 1000;
      const endpoint = choose();
      const scoped = endpoint.group === 'payments' ? { authz: { outcome: 'pass' as const, scopes: [endpoint.method === 'GET' ? 'payments:read' : 'payments:write'] } } : {};
      request({ at: time, endpoint, ip, userId: user.id, consumerId: user.app, userAgent: options.userAgent ?? user.userAgent, sessionId, authn: { outcome: 'pass', context: 'jwt' }, ...scoped, ...(draw.chance(0.004) ? { rateLimited: true } : {}) });
    }
    return time;
  };
  const within = (from: number, to: number): number => from + draw.float() * (to - from);
  const open = (id: string): { begin: () => void; close: (c: Omit<EvaluationCase, 'id' | 'events'>) => void } => ({
    begin: () => {
      current = id;
      caseEvents = 0;
    },
    close: (c) => {
      // Every case must happen within the hour: one cut short would be graded on what it lacks.
      // (A benign case's trailing reads may run past it and are cut: its interval ends with the hour.)
      if (c.kind === 'attack' && Date.parse(c.end) >= end) throw new Error(`evaluate: the attack ${id} runs past the hour (${c.end}); a generator bug`);
      cases.push({ id, ...c, end: iso(Math.min(Date.parse(c.end), end - 1)), events: caseEvents });
      current = 'background';
    },
  });
  // Where each case happens: its start minute, after the first quarter, spread over the hour.
  const startOf = (earliest = 15, latest = 52): number => start + draw.int(earliest, latest) * MINUTE + draw.int(0, 40) * 1000;

  // --- Background: users at home, a few sessions each over the hour.
  const users: User[] = [];
  for (let n = 0; n < userCount; n++) users.push(newUser('a background user'));
  const reserved = new Set<string>();
  const reserve = (count: number): User[] => {
    if (users.length - reserved.size < count) throw new Error(`evaluate: ${users.length} background users are too few for the cases (at least ${MIN_USERS})`);
    const chosen: User[] = [];
    while (chosen.length < count) {
      const user = draw.pick(users);
      if (!reserved.has(user.id)) {
        reserved.add(user.id);
        chosen.push(user);
      }
    }
    return chosen;
  };
  // The plausible traveller has no background: a session at home would make their trip a return.
  const [traveller] = reserve(1);
  // Those who will sign in on a new device only read, all hour: a write from their usual device
  // within minutes of the new one would be another case (new-device-then-sensitive-write).
  const owners = reserve(draw.int(4, 10));
  const reads = ENDPOINTS.filter((item) => item.method === 'GET');
  let backgroundEvents = 0;
  for (const user of users) {
    if (user === traveller) continue;
    if (owners.includes(user)) {
      caseEvents = 0;
      session(user, within(start, start + 10 * MINUTE), draw.int(2, 6), () => draw.pick(reads));
      backgroundEvents += caseEvents;
      continue;
    }
    const sessions = Math.max(1, Math.round((requestsPerUser / 10) * (0.5 + draw.float())));
    caseEvents = 0;
    for (let s = 0; s < sessions; s++) session(user, within(start, end - 5 * MINUTE), draw.int(4, 16));
    backgroundEvents += caseEvents;
  }

  // --- Attacks.
  {
    const c = open('credential-stuffing');
    c.begin();
    const attacker = addresses.city('the stuffing IP');
    const tries = draw.int(25, 60);
    const from = startOf();
    const span = draw.int(2, 6) * MINUTE;
    const tool = draw.pick(TOOLS);
    const typed: string[] = [];
    for (let n = 0; n < tries; n++) {
      // Leaked lists hold real accounts beside dead ones.
      const userId = draw.chance(0.2) ? newUser('a leaked account').id : newName();
      typed.push(userId);
      request({ at: from + (n * span) / tries, endpoint: { ...LOGIN, method: 'POST' }, ip: attacker.ip, userId, consumerId: 'web-portal', userAgent: tool, authn: { outcome: 'fail', context: 'basic', reason: 'invalid_credentials' } });
    }
    c.close({ kind: 'attack', description: `${attacker.ip} (${attacker.geo.city}, ${attacker.geo.country}) tries ${tries} accounts once each in ${span / MINUTE} min`, keys: [[attacker.ip]], entities: typed, start: iso(from), end: iso(from + span) });
  }
  {
    const c = open('brute-force-takeover');
    c.begin();
    const [victim] = reserve(1) as [User];
    const attacker = addresses.city('the brute-force IP', (geo) => geo.country !== victim.geo.country);
    const failures = draw.int(10, 25);
    const from = startOf(15, 40);
    const gap = draw.int(8, 25) * 1000;
    const tool = draw.pick(TOOLS);
    for (let n = 0; n < failures; n++) {
      request({ at: from + n * gap, endpoint: { ...LOGIN, method: 'POST' }, ip: attacker.ip, userId: victim.id, consumerId: victim.app, userAgent: tool, authn: { outcome: 'fail', context: 'basic', reason: 'invalid_credentials' } });
    }
    const taken = from + failures * gap;
    const last = session(victim, taken, draw.int(1, 4), () => draw.pick(ENDPOINTS.filter((endpoint) => endpoint.group === 'accounts')), { ip: attacker.ip, device: `dev-${draw.id()}`, userAgent: tool });
    c.close({ kind: 'attack', description: `${failures} failed logins for ${victim.id} from ${attacker.ip}, then a success and account reads`, keys: [[victim.id], [attacker.ip]], entities: [], start: iso(from), end: iso(last) });
  }
  {
    const c = open('impossible-travel');
    c.begin();
    const [user] = reserve(1) as [User];
    const far = addresses.city('a city far from the user', (geo) => distanceKm(geo, user.geo) > 6000);
    const from = startOf(15, 28);
    session(user, from, draw.int(1, 3));
    const away = from + draw.int(5, 25) * MINUTE;
    const last = session(user, away, draw.int(1, 3), () => draw.pick(ENDPOINTS), { ip: far.ip, device: `dev-${draw.id()}`, userAgent: draw.pick(USER_AGENTS) });
    c.close({ kind: 'attack', description: `${user.id} signs in at home (${user.geo.city}, ${user.geo.country}), then from ${far.geo.city}, ${far.geo.country} ${Math.round(distanceKm(user.geo, far.geo))} km away ${Math.round((away - from) / MINUTE)} min later`, keys: [[user.id]], entities: [far.ip], start: iso(from), end: iso(last) });
  }
  {
    const c = open('enumeration');
    c.begin();
    const consumer = `partner-${draw.pick(LAST)}-${draw.int(10, 99)}`;
    const scraper = addresses.city('the enumerating IP');
    const walks = draw.int(40, 90);
    const from = startOf();
    const span = draw.int(2, 4) * MINUTE;
    const endpoint = draw.pick(ENDPOINTS.filter((item) => item.route.endsWith(':id')));
    for (let n = 0; n < walks; n++) {
      request({ at: from + (n * span) / walks, endpoint, ip: scraper.ip, consumerId: consumer, userAgent: draw.pick(TOOLS), authn: { outcome: 'pass', context: 'api_key' }, status: 404 });
    }
    c.close({ kind: 'attack', description: `${consumer} from ${scraper.ip} walks ${walks} ids of ${endpoint.api} ${endpoint.route} in ${span / MINUTE} min, all 404`, keys: [[consumer], [scraper.ip]], entities: [], start: iso(from), end: iso(from + span) });
  }
  {
    const c = open('distributed-flood');
    c.begin();
    const sources = options.floodSources ?? 800;
    const minutes = draw.int(2, 4);
    const from = start + draw.int(20, 50) * MINUTE;
    const span = minutes * MINUTE;
    const ips: string[] = [];
    const typed: string[] = [];
    let attempts = 0;
    for (let n = 0; n < sources; n++) {
      const ip = addresses.any();
      ips.push(ip);
      // Each source stays under the per-IP rate (5 a minute): at most 4 tries a minute, spread
      // evenly over the flood, each as another made-up user.
      const tries = draw.int(1, 4 * minutes);
      for (let t = 0; t < tries; t++) {
        const userId = `${draw.pick(FIRST)}${draw.int(1, 9999)}`;
        typed.push(userId);
        attempts++;
        request({ at: from + ((t + 0.2 + 0.6 * draw.float()) * (span - 1000)) / tries, endpoint: { ...LOGIN, method: 'POST' }, ip, userId, consumerId: 'web-portal', userAgent: draw.pick(TOOLS), authn: { outcome: 'fail', context: 'basic', reason: 'invalid_credentials' }, latencyMs: 12 + draw.int(0, 30) });
      }
    }
    c.close({ kind: 'attack', description: `${attempts} failed logins on ${LOGIN.api} ${LOGIN.route} from ${sources} IPs in ${minutes} min, invented usernames, no errors or latency`, keys: [[LOGIN.api, LOGIN.route]], entities: [...ips, ...new Set(typed)], start: iso(from), end: iso(from + span) });
  }
  {
    const c = open('rate-limit-storm');
    c.begin();
    const consumer = `partner-${draw.pick(LAST)}-${draw.int(100, 999)}`;
    const ip = addresses.city('the rate-limit storm IP');
    const rejections = draw.int(70, 160);
    const from = startOf();
    const span = draw.int(30, 60) * 1000;
    const endpoint = draw.pick(ENDPOINTS.filter((item) => item.method === 'GET'));
    for (let n = 0; n < rejections; n++) {
      request({ at: from + (n * span) / rejections, endpoint, ip: ip.ip, consumerId: consumer, userAgent: draw.pick(TOOLS), authn: { outcome: 'pass', context: 'api_key' }, rateLimited: true });
    }
    c.close({ kind: 'attack', description: `${consumer} from ${ip.ip}: ${rejections} rate-limit rejections in ${span / 1000}s`, keys: [[consumer], [ip.ip]], entities: [], start: iso(from), end: iso(from + span) });
  }
  {
    const c = open('privileged-authz-failures');
    c.begin();
    const [user] = reserve(1) as [User];
    const ip = addresses.city('the stolen-token IP');
    const probes = draw.int(3, 8);
    const from = startOf();
    let at = from;
    for (let n = 0; n < probes; n++) {
      const scope = draw.pick(['admin:users', 'admin:write', 'payments:admin', 'admin:audit']);
      request({ at, endpoint: { api: 'admin-v1', route: draw.pick(['/admin/v1/users/:id', '/admin/v1/roles']), method: draw.pick(['GET', 'DELETE', 'PUT']), group: 'admin' }, ip: ip.ip, userId: user.id, consumerId: user.app, userAgent: draw.pick(TOOLS), authn: { outcome: 'pass', context: 'jwt' }, authz: { outcome: 'fail', scopes: [scope], reason: 'missing_scope' } });
      at += draw.int(5, 40) * 1000;
    }
    c.close({ kind: 'attack', description: `${user.id}'s token used from ${ip.ip}: ${probes} requests for admin scopes, all denied`, keys: [[user.id], [ip.ip]], entities: [], start: iso(from), end: iso(at) });
  }
  {
    const c = open('threat-payloads');
    c.begin();
    const ip = addresses.city('the threat-payload IP');
    const payloads = draw.int(3, 10);
    const from = startOf();
    let at = from;
    const writes = ENDPOINTS.filter((item) => item.method !== 'GET');
    for (let n = 0; n < payloads; n++) {
      request({ at, endpoint: draw.pick(writes), ip: ip.ip, consumerId: 'web-portal', userAgent: draw.pick(TOOLS), threat: draw.chance(0.7) ? 'json' : 'xml' });
      at += draw.int(3, 30) * 1000;
    }
    c.close({ kind: 'attack', description: `${ip.ip}, unauthenticated through web-portal: ${payloads} JSON/XML threat-protection violations`, keys: [[ip.ip]], entities: [], start: iso(from), end: iso(at) });
  }
  {
    const c = open('step-up-bypass');
    c.begin();
    const [user] = reserve(1) as [User];
    const ip = addresses.city('the step-up bypass IP');
    const from = startOf();
    let at = from;
    const tries = draw.int(1, 3);
    for (let n = 0; n < tries; n++) {
      request({ at, endpoint: { api: 'payments-v1', route: '/v1/transfers', method: 'POST', group: draw.chance(0.75) ? 'payments' : 'admin' }, ip: ip.ip, userId: user.id, consumerId: user.app, userAgent: draw.pick(TOOLS), authn: { outcome: 'pass', context: 'basic' }, authz: { outcome: 'pass', scopes: ['payments:write'] } });
      at += draw.int(20, 90) * 1000;
    }
    c.close({ kind: 'attack', description: `${user.id} from ${ip.ip}: ${tries} payments with basic authentication on a group that requires 2FA`, keys: [[user.id], [ip.ip]], entities: [], start: iso(from), end: iso(at) });
  }

  // --- Hard benign cases.
  {
    const c = open('typos');
    c.begin();
    const typists = reserve(draw.int(8, 20));
    let first = end;
    let last = start;
    for (const user of typists) {
      const at = startOf(10, 54);
      first = Math.min(first, at);
      last = Math.max(last, session(user, at, draw.int(2, 6), () => draw.pick(ENDPOINTS), { failures: draw.int(1, 2) }));
    }
    c.close({ kind: 'benign', description: `${typists.length} users mistype their password once or twice, then sign in`, keys: typists.map((user) => [user.id]), entities: typists.map((user) => user.ip), start: iso(first), end: iso(last) });
  }
  {
    const c = open('shared-nat');
    c.begin();
    const nat = addresses.city('the office NAT');
    const staff: User[] = [];
    for (let n = 0, size = Math.max(25, Math.round(draw.int(30, 50) * volume)); n < size; n++) staff.push({ ...newUser('an office user'), ip: nat.ip, geo: nat.geo, app: 'web-portal' });
    let last = start;
    for (const user of staff) {
      for (let s = draw.int(1, 3); s > 0; s--) last = Math.max(last, session(user, within(start + 5 * MINUTE, end - 5 * MINUTE), draw.int(2, 8), () => draw.pick(ENDPOINTS), { failures: draw.chance(0.05) ? 1 : 0 }));
    }
    c.close({ kind: 'benign', description: `${staff.length} staff behind one office NAT ${nat.ip} sign in normally over the hour`, keys: [[nat.ip]], entities: staff.map((user) => user.id), start: iso(start + 5 * MINUTE), end: iso(last) });
  }
  const readers = users.filter((user) => !reserved.has(user.id));
  const [rampEndpoint, crowdEndpoint] = ((): [Endpoint, Endpoint] => {
    const gets = ENDPOINTS.filter((item) => item.method === 'GET');
    const a = draw.pick(gets);
    return [a, draw.pick(gets.filter((item) => item !== a))];
  })();
  {
    const c = open('ramp-2x');
    c.begin();
    // Steady, then doubling over 30 minutes, then steady at double: signed-in users, their own IPs.
    const base = Math.max(8, Math.round(draw.int(20, 40) * volume));
    const rampStart = start + draw.int(12, 20) * MINUTE;
    const rampEnd = rampStart + 30 * MINUTE;
    for (let at = start; at < end; ) {
      const progress = Math.min(1, Math.max(0, (at - rampStart) / (rampEnd - rampStart)));
      const perMinute = base * (1 + progress);
      const user = draw.pick(readers);
      request({ at, endpoint: rampEndpoint, ip: user.ip, userId: user.id, consumerId: user.app, userAgent: user.userAgent, authn: { outcome: 'pass', context: 'jwt' } });
      at += (MINUTE / perMinute) * (0.5 + draw.float());
    }
    c.close({ kind: 'benign', description: `${rampEndpoint.api} ${rampEndpoint.route} doubles from ${base} to ${base * 2} requests a minute over 30 minutes, signed-in users`, keys: [[rampEndpoint.api, rampEndpoint.route]], entities: [], start: iso(rampStart), end: iso(rampEnd) });
  }
  {
    const c = open('flash-crowd');
    c.begin();
    const base = Math.max(5, Math.round(draw.int(10, 20) * volume));
    for (let at = start; at < end; at += (MINUTE / base) * (0.5 + draw.float())) {
      const user = draw.pick(readers);
      request({ at, endpoint: crowdEndpoint, ip: user.ip, userId: user.id, consumerId: user.app, userAgent: user.userAgent, authn: { outcome: 'pass', context: 'jwt' } });
    }
    // A sale opens: many users sign in and read the same thing within a minute or two.
    const crowdSize = Math.max(120, Math.round(draw.int(150, 300) * Math.max(volume, 0.5)));
    const from = start + draw.int(20, 50) * MINUTE;
    const fans: User[] = [];
    for (let n = 0; n < crowdSize; n++) fans.push(newUser('a flash-crowd user'));
    for (const fan of fans) {
      const at = from + Math.abs(draw.float() - draw.float()) * 2 * MINUTE;
      session(fan, at, draw.int(1, 3), () => crowdEndpoint);
    }
    c.close({ kind: 'benign', description: `${crowdSize} signed-in users, each from their own IP, read ${crowdEndpoint.api} ${crowdEndpoint.route} within two minutes (baseline ${base} a minute)`, keys: [[crowdEndpoint.api, crowdEndpoint.route]], entities: fans.map((fan) => fan.id), start: iso(from), end: iso(from + 3 * MINUTE) });
  }
  {
    const c = open('plausible-travel');
    c.begin();
    const user = traveller as User;
    // Far enough to be judged (300 km and up), close enough to reach in the time between.
    const there = addresses.city('a city 320-480 km from the traveller', (geo) => {
      const km = distanceKm(geo, user.geo);
      return km >= 320 && km <= 480;
    });
    const from = start + draw.int(1, 4) * MINUTE;
    session(user, from, draw.int(1, 3));
    const arrival = end - draw.int(3, 5) * MINUTE;
    const last = session(user, arrival, draw.int(1, 3), () => draw.pick(ENDPOINTS), { ip: there.ip });
    c.close({ kind: 'benign', description: `${user.id} signs in at ${user.geo.city}, ${user.geo.country}, then ${Math.round((arrival - from) / MINUTE)} min later at ${there.geo.city}, ${there.geo.country}, ${Math.round(distanceKm(user.geo, there.geo))} km away`, keys: [[user.id]], entities: [there.ip], start: iso(from), end: iso(last) });
  }
  {
    const c = open('coarse-geoip');
    c.begin();
    // An address the database knows only by country (its default point), and a user at home in a
    // city of that country far from that point (beyond the database's accuracy radius of it).
    let pair: { coarse: { ip: string; geo: GeoAnswer }; home: { ip: string; geo: GeoAnswer } } | undefined;
    for (let attempt = 0; attempt < 20 && pair === undefined; attempt++) {
      const coarse = addresses.find('an address located only to a country', (geo) => geo.city === '');
      try {
        pair = { coarse, home: addresses.city(`a city of ${coarse.geo.country} 1800 km from its default point`, (geo) => geo.country === coarse.geo.country && distanceKm(geo, coarse.geo) > 1800, 100_000) };
      } catch {
        // That country has no city that far from its point: try another.
      }
    }
    if (pair === undefined) throw new Error('evaluate: no country with a coarse address and a distant city in the geo database');
    const user: User = { ...newUser('a coarse-geoip user'), ip: pair.home.ip, geo: pair.home.geo };
    const from = startOf(15, 30);
    session(user, from, draw.int(1, 3));
    const coarseAt = from + draw.int(4, 15) * MINUTE;
    session(user, coarseAt, draw.int(1, 3), () => draw.pick(ENDPOINTS), { ip: pair.coarse.ip });
    const last = session(user, coarseAt + draw.int(4, 10) * MINUTE, draw.int(1, 3));
    c.close({ kind: 'benign', description: `${user.id} at home in ${pair.home.geo.city}, ${pair.home.geo.country}, then on ${pair.coarse.ip}, which the database places only in ${pair.coarse.geo.country} (${Math.round(distanceKm(pair.home.geo, pair.coarse.geo))} km away at its default point), then home`, keys: [[user.id]], entities: [pair.coarse.ip], start: iso(from), end: iso(last) });
  }
  {
    const c = open('new-device-read-only');
    c.begin();
    let first = end;
    let last = start;
    for (const user of owners) {
      const at = startOf(15, 52);
      first = Math.min(first, at);
      last = Math.max(last, session(user, at, draw.int(2, 6), () => draw.pick(reads), { device: `dev-${draw.id()}`, userAgent: draw.pick(USER_AGENTS) }));
    }
    c.close({ kind: 'benign', description: `${owners.length} users sign in on a new device at home and only read (as they do all hour)`, keys: owners.map((user) => [user.id]), entities: [], start: iso(first), end: iso(last) });
  }

  // Nothing after the hour's end: a case running over is cut, so the hour is the hour.
  const kept = events.filter((event) => event.at < end).sort((a, b) => a.at - b.at);
  return { seed: options.seed, start, end, events: kept, cases, background: { users: users.length, events: backgroundEvents } };
}
