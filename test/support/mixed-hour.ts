import type { Kafka } from 'kafkajs';
import type { Config } from '../../platform';
import { eventSchema, type VigilEvent, type VigilEventInput } from '../../schemas';
import { seededRandom } from '../../scripts/simulated-traffic';

/**
 * One hour of mixed traffic (policy, invocation and device events) for the event-time tests:
 * ordinary users, plus what the stateful rules look for, each placed at a known minute:
 * - travellers: u-travel-1 in London at minute 5 and in Australia at minute 25, u-travel-2 in the
 *   US at minute 35 and in Brazil at minute 40 (impossible travel, new country);
 * - first-seen values: u-1005 signs in from a new device at minute 30 and pays a minute later
 *   (new device, then the sensitive-write sequence);
 * - a sequence: five failed logins from one IP, then a success from it, at minute 20;
 * - credential stuffing on the login endpoint (accounts-v1 /v1/login) from one IP at minutes 10–11
 *   (an incident keyed on the IP);
 * - two incidents on that endpoint itself, far apart: a request flood from three IPs at minute 18,
 *   and a rate-limited one from three others at minute 50. Each is one incident of the endpoint's
 *   group; the first resolves (15 minutes quiet, in event time) before the second opens.
 * Steps that a rule compares across topics are more than the alignment skew apart; the events
 * of one request (its policy decisions, invocation and device) are milliseconds apart, as they are.
 */

const SOURCE = { service: 'edge-gateway-eu', kind: 'gateway', instance: 'gw-eu-1' } as const;
const LOGIN = { api: 'accounts-v1', method: 'POST', path: '/v1/login' } as const;
const USERS = 30;

/** The hour's events, ordered by event time, each checked against the contract. */
export function mixedHour(start: number, seed = 15): VigilEvent[] {
  const random = seededRandom(seed);
  const events: VigilEventInput[] = [];
  let serial = 0;
  const nextId = (): string => `evt-hour-${(serial++).toString().padStart(6, '0')}`;
  const at = (minute: number, second = 0): number => start + minute * 60_000 + Math.round(second * 1000);

  /** One request: its authentication decision, the invocation, and for a login the device. */
  function request(options: {
    time: number;
    user?: string;
    ip: string;
    consumer?: string;
    resource?: { api: string; method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; path: string };
    route?: string;
    group?: string;
    authn?: 'pass' | 'fail';
    rateLimited?: boolean;
    device?: string;
    status?: number;
  }): void {
    const resource = options.resource ?? LOGIN;
    const route = options.route ?? resource.path;
    const group = options.group ?? 'accounts';
    const requestId = `req-${serial.toString(36)}`;
    const common = {
      schemaVersion: 1 as const,
      source: SOURCE,
      correlation: { requestId },
      actor: { ...(options.user ? { userId: options.user } : {}), consumerId: options.consumer ?? 'app-mobile-ios' },
      client: { ip: options.ip, userAgent: 'okhttp/4.12.0' },
    };
    const authn = options.authn ?? 'pass';
    events.push({
      ...common,
      id: nextId(),
      family: 'policy',
      time: new Date(options.time).toISOString(),
      policy: { kind: 'authn', name: 'verify-password', outcome: authn, ...(authn === 'fail' ? { reason: 'invalid_credentials' } : {}), authContext: 'oauth2', group, resource },
    });
    let status = options.status ?? (authn === 'fail' ? 401 : 200);
    if (authn === 'pass' && options.rateLimited) {
      events.push({
        ...common,
        id: nextId(),
        family: 'policy',
        time: new Date(options.time + 1).toISOString(),
        policy: { kind: 'rate_limit', name: 'spike-arrest-100rps', outcome: 'fail', reason: 'quota_exceeded', group, resource },
      });
      status = 429;
    }
    events.push({
      ...common,
      id: nextId(),
      family: 'invocation',
      time: new Date(options.time + 3 + Math.floor(random() * 40)).toISOString(),
      invocation: { resource, route, status, latencyMs: 5 + Math.floor(random() * 100), bytesIn: 200, bytesOut: 800, upstreamService: 'accounts-service', group },
    });
    if (options.device && authn === 'pass') {
      events.push({
        ...common,
        id: nextId(),
        family: 'device',
        time: new Date(options.time + 2).toISOString(),
        device: { deviceId: options.device, type: 'mobile', os: 'iOS 18.1', action: 'login', ip: options.ip },
      });
    }
  }

  // Ordinary users at home (London and Dublin networks), one request every 3 s on average:
  // logins with their one device, reads of their account, the odd failed password.
  const homeIp = (user: number): string => (user % 2 === 0 ? `81.2.69.${20 + user}` : `185.60.216.${100 + user}`);
  for (let time = at(0, 1); time < at(60); time += 1000 + Math.floor(random() * 4000)) {
    const user = Math.floor(random() * USERS);
    const userId = `u-${1000 + user}`;
    const login = random() < 0.3;
    request({
      time,
      user: userId,
      ip: homeIp(user),
      ...(login ? { device: `dev-${userId}-phone` } : { resource: { api: 'accounts-v1', method: 'GET', path: `/v1/accounts/${1000 + user}` }, route: '/v1/accounts/:id' }),
      authn: random() < 0.02 ? 'fail' : 'pass',
    });
  }

  // u-1005 has its phone from the first minute; a new device at minute 30, a payment at 31.
  request({ time: at(1, 30), user: 'u-1005', ip: homeIp(5), device: 'dev-u-1005-phone' });
  request({ time: at(30), user: 'u-1005', ip: homeIp(5), device: 'dev-u-1005-tablet' });
  request({ time: at(31), user: 'u-1005', ip: homeIp(5), resource: { api: 'payments-v2', method: 'POST', path: '/v2/payments' }, route: '/v2/payments', group: 'payments' });

  // Travellers.
  request({ time: at(5), user: 'u-travel-1', ip: '81.2.69.142', device: 'dev-travel-1' });
  request({ time: at(25), user: 'u-travel-1', ip: '1.144.110.23', device: 'dev-travel-1' });
  request({ time: at(35), user: 'u-travel-2', ip: '72.229.28.185', device: 'dev-travel-2' });
  request({ time: at(40), user: 'u-travel-2', ip: '201.6.0.1', device: 'dev-travel-2' });

  // A password found: five failures from one IP for one account, then a success.
  for (let attempt = 0; attempt < 5; attempt++) request({ time: at(20, attempt * 20), user: 'u-1011', ip: '46.101.12.77', authn: 'fail' });
  request({ time: at(22, 30), user: 'u-1011', ip: '46.101.12.77', device: 'dev-u-1011-phone' });

  // Incident 1: credential stuffing on /v1/login from one IP, 25 accounts in 100 s.
  for (let attempt = 0; attempt < 25; attempt++) request({ time: at(10, attempt * 4), user: `u-stuffed-${attempt}`, ip: '185.60.216.50', authn: 'fail' });

  // The endpoint's first incident: a flood from three IPs at minute 18, once the endpoint's
  // baseline has warmed up (the surge rules' minSamples plus the lag of six minutes).
  for (let call = 0; call < 180; call++) request({ time: at(18, call / 4), ip: `5.188.10.${30 + (call % 3)}` });

  // The endpoint's second incident, 32 minutes later: a flood from three other IPs, rate limited.
  for (let call = 0; call < 180; call++) {
    request({ time: at(50, call / 4), consumer: 'partner-globex', ip: `91.198.174.${20 + (call % 3)}`, rateLimited: call % 3 === 0 });
  }

  const parsed = events.map((event, index) => {
    const result = eventSchema.safeParse(event);
    if (!result.success) throw new Error(`mixedHour built an invalid event (#${index}): ${result.error.message}`);
    return result.data;
  });
  // Stable: events at one time keep the order they were built in.
  return parsed.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/**
 * Produces events in the order given, each to its family's topic, keyed as the SDK keys them
 * (user, else consumer, else IP), so one key's events of one family share a partition.
 */
export async function produceEvents(kafka: Kafka, config: Config, events: readonly VigilEvent[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, idempotent: true });
  await producer.connect();
  try {
    const BATCH = 500;
    for (let from = 0; from < events.length; from += BATCH) {
      const slice = events.slice(from, from + BATCH);
      await producer.sendBatch({
        acks: -1,
        topicMessages: (['policy', 'invocation', 'device'] as const).map((family) => ({
          topic: config.topics[family],
          messages: slice
            .filter((event) => event.family === family)
            .map((event) => ({ key: event.actor.userId ?? event.actor.consumerId ?? event.client.ip ?? event.id, value: JSON.stringify(event) })),
        })).filter((topicMessages) => topicMessages.messages.length > 0),
      });
    }
  } finally {
    await producer.disconnect();
  }
}
