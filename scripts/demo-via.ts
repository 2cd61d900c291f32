import { randomBytes } from 'node:crypto';
import type { Kafka, Message, Producer } from 'kafkajs';
import type { EmitInput, EmitResult, Emitter, EmitterStats } from '../ingest/sdk';
import { REFUSALS, kongRecord, type GatewayCall } from './gateway-records';

/**
 * The rules a Kong log record cannot feed (docs/gateways/README.md, "which detection rules then
 * work"): they need the username a login was tried with, scopes, validator reasons or device
 * events, which a gateway log does not carry.
 */
export const KONG_CANNOT_CARRY: ReadonlySet<string> = new Set([
  'authn-failures-per-user',
  'credential-stuffing',
  'authz-failure-privileged-scope',
  'json-threat-violation',
  'xml-threat-violation',
  'basic-auth-on-2fa-resource',
  'impossible-travel',
  'new-device-for-user',
  'new-device-then-sensitive-write',
  'new-country-for-user',
]);

type Common = Pick<EmitInput<'policy'>, 'time' | 'correlation' | 'client' | 'actor'>;

interface Pending {
  common: Common;
  policies: EmitInput<'policy'>['policy'][];
  invocation?: EmitInput<'invocation'>['invocation'];
}

/** What {@link kongEmitter} did: Kong records produced, and the SDK events it could not render. */
export interface KongEmitterStats {
  records: number;
  messages: number;
  /** Device events: Kong logs requests, not devices. */
  notCarried: number;
}

/**
 * An {@link Emitter} that renders what a simulated gateway emits as the Kong log objects Kong
 * would have written for the same requests (one record per request: its policy events and
 * invocation folded into a status, a consumer and the refusing plugin's headers), produced to a
 * raw topic for an in-process `vigil adapt --format kong`. A request's record is written when its
 * invocation arrives, or at flush for requests that had none.
 */
export function kongEmitter(kafka: Pick<Kafka, 'producer'>, topic: string): Emitter & { kong(): KongEmitterStats } {
  const producer: Producer = kafka.producer();
  let connected: Promise<void> | undefined;
  const pending = new Map<string, Pending>();
  const ready: Message[] = [];
  const counts: KongEmitterStats = { records: 0, messages: 0, notCarried: 0 };
  let accepted = 0;
  let delivered = 0;
  let anonymous = 0;

  const render = (request: Pending): void => {
    const { common, policies, invocation } = request;
    const failed = (kind: string): boolean => policies.some((policy) => policy.kind === kind && policy.outcome === 'fail');
    const anyFail = policies.some((policy) => policy.outcome === 'fail');
    const status = invocation?.status ?? (failed('authn') ? 401 : failed('rate_limit') ? 429 : failed('authz') ? 403 : anyFail ? 400 : 200);
    const resource = invocation?.resource ?? policies[0]?.resource;
    if (resource === undefined) return;
    const route = invocation?.route ?? resource.path;
    const call: GatewayCall = {
      // Kong (3.5+) gives every request an id; the attacks' SDK calls name none.
      requestId: common.correlation?.requestId ?? randomBytes(16).toString('hex'),
      time: common.time === undefined ? new Date() : new Date(common.time),
      clientIp: common.client?.ip ?? '192.0.2.1',
      method: resource.method,
      uri: resource.path,
      status,
      ...(invocation?.latencyMs !== undefined ? { latencyMs: invocation.latencyMs } : {}),
      // An auth plugin names the consumer only once it authenticated one.
      ...(common.actor?.consumerId !== undefined && status !== 401 ? { consumer: common.actor.consumerId } : {}),
      service: resource.api,
      route: { name: route, paths: [route] },
      ...(common.client?.userAgent !== undefined ? { userAgent: common.client.userAgent } : {}),
      ...(status === 401 ? { responseHeaders: REFUSALS.kongKeyAuth } : status === 429 ? { responseHeaders: REFUSALS.kongRateLimited } : {}),
    };
    ready.push({ key: call.clientIp, value: JSON.stringify(kongRecord(call)) });
    counts.records++;
  };
  const requestOf = (input: EmitInput<'policy'> | EmitInput<'invocation'>): Pending => {
    const key = input.correlation?.requestId ?? `anonymous-${anonymous++}`;
    let request = pending.get(key);
    if (request === undefined) {
      request = { common: commonOf(input), policies: [] };
      pending.set(key, request);
    }
    return request;
  };
  const commonOf = (input: EmitInput<'policy'> | EmitInput<'invocation'>): Common => ({
    ...(input.time !== undefined ? { time: input.time } : {}),
    ...(input.correlation !== undefined ? { correlation: input.correlation } : {}),
    ...(input.client !== undefined ? { client: input.client } : {}),
    ...(input.actor !== undefined ? { actor: input.actor } : {}),
  });
  const result = (): EmitResult => ({ id: `kong-${accepted}`, accepted: true });

  const flush = async (): Promise<void> => {
    for (const request of pending.values()) render(request);
    pending.clear();
    if (ready.length === 0) return;
    connected ??= producer.connect();
    await connected;
    const batch = ready.splice(0, ready.length);
    // In the order the gateway wrote them, under the broker's request size.
    for (let start = 0; start < batch.length; start += 200) {
      await producer.send({ topic, messages: batch.slice(start, start + 200), acks: -1 });
    }
    counts.messages += batch.length;
    delivered += batch.length;
  };

  return {
    policy(input) {
      accepted++;
      // A request with no correlation id is one record per event.
      if (input.correlation?.requestId === undefined) {
        render({ common: commonOf(input), policies: [input.policy] });
        return result();
      }
      requestOf(input).policies.push(input.policy);
      return result();
    },
    invocation(input) {
      accepted++;
      const request = requestOf(input);
      request.invocation = input.invocation;
      render(request);
      pending.delete(input.correlation?.requestId ?? '');
      return result();
    },
    device() {
      accepted++;
      counts.notCarried++;
      return { id: `kong-device-${counts.notCarried}`, accepted: false };
    },
    flush,
    async close() {
      await flush();
      if (connected !== undefined) await producer.disconnect();
    },
    stats(): EmitterStats {
      return { accepted, delivered, dropped: 0, sendFailures: 0, buffered: pending.size + ready.length, bufferedBytes: 0 };
    },
    kong: () => ({ ...counts }),
  };
}
