/**
 * The latency bench's traffic and its SDK emitter (bench/latency.bench.ts), apart from the bench
 * so that it can run in the bench's own process or in a child of its own (`latency-sdk.child.ts`),
 * as a service emits from a process of its own.
 *
 * Gateway requests as pairs (an authN pass, then the invocation, sharing a request id, so
 * correlation joins them) that no default rule fires on, and every TRIGGER_EVERY-th event a JSON
 * threat protection failure from a consumer of its own.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createEmitter, type Emitter, type EmitterCompression, type EmitterKafka, type SdkLogger } from '../ingest/sdk';
import { sleep } from '../platform/retry';

/** One trigger in every this many events. */
export const TRIGGER_EVERY = 100;
/** A burst emits this many events per turn of the event loop, so the pipeline runs in between. */
const BURST = 250;
/** How often the emitter's delivered count is read to stamp when Kafka acknowledged each trigger. */
const ACK_SAMPLE_MS = 1;

/** What the traffic tells about each event it emits; times are `performance.now()` of its process. */
export interface TrafficSink {
  trigger(eventId: string, trigger: { phase: 1 | 2; consumerId: string; ip: string; produced: number }): void;
  plain(eventId: string, plain: { phase: 1 | 2; family: 'policy' | 'invocation'; produced: number }): void;
  /** Kafka acknowledged the trigger (acks=-1), sampled every ACK_SAMPLE_MS from the emitter's delivered count. */
  acked(eventId: string, at: number): void;
}

/** Emits the bench's traffic through one emitter. */
export interface TrafficDriver {
  /** `count` events of `phase` as fast as the SDK takes them; resolves once Kafka acknowledged them all. */
  burst(phase: 1 | 2, count: number): Promise<void>;
  /** Phase 2: paced at `rate` events/s for `seconds`, emitting what is due every millisecond or so; how many were emitted. */
  paced(rate: number, seconds: number): Promise<number>;
  /** Stops sampling acknowledgements and closes the emitter; its final stats. */
  close(): Promise<ReturnType<Emitter['stats']>>;
}

/** The bench's emitter for run `id`: an edge gateway emitting to `topics`, wherever it runs. */
export function trafficEmitter(
  kafka: EmitterKafka,
  id: string,
  topics: { policy: string; invocation: string; device: string },
  options: { lingerMs: number; compression?: EmitterCompression; logger?: SdkLogger },
): Emitter {
  return createEmitter({
    kafka,
    topics,
    source: { service: 'edge-gateway-bench', kind: 'gateway', instance: `gw-${id}`, environment: 'bench' },
    lingerMs: options.lingerMs,
    maxBuffer: 50_000,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.compression ? { compression: options.compression } : {}),
  });
}

/** The traffic of run `id` through `emitter`, told to `sink`. */
export function trafficDriver(emitter: Emitter, id: string, sink: TrafficSink): TrafficDriver {
  let count = 0;
  let request = 0;
  let pending: { requestId: string; user: number } | undefined;
  /** Triggers not yet acknowledged by Kafka, oldest first, with their place in the emitter's buffer (from 1). */
  const unacked: { eventId: string; sequence: number }[] = [];
  const resource = (user: number) => ({ api: 'accounts-v1', method: 'GET', path: `/v1/accounts/${1000 + user}` }) as const;
  const common = (user: number, requestId: string) => ({
    correlation: { requestId, sessionId: `s-${id}-${user}` },
    actor: { userId: `u-${user}`, consumerId: 'app-mobile-ios', tenantId: 'acme-bank' },
    // Private addresses: no geo, so the location rules stay quiet; one per user, so per-IP rules do too.
    client: { ip: `10.20.${Math.floor(user / 250)}.${(user % 250) + 1}`, userAgent: 'okhttp/4.12.0' },
  });
  const next = (phase: 1 | 2): void => {
    count++;
    const eventId = `evt-${id}-${count}`;
    if (count % TRIGGER_EVERY === 0) {
      const consumerId = `bench-${id}-${count}`;
      const ip = `10.30.${Math.floor(count / 25_000) % 250}.${(Math.floor(count / 100) % 250) + 1}`;
      sink.trigger(eventId, { phase, consumerId, ip, produced: performance.now() });
      unacked.push({ eventId, sequence: count });
      emitter.policy({
        id: eventId,
        correlation: { requestId: `req-${id}-t${count}` },
        actor: { consumerId },
        client: { ip },
        policy: {
          kind: 'json_threat',
          name: 'json-threat-protection',
          outcome: 'fail',
          reason: 'container_depth_exceeded',
          group: 'payments',
          resource: { api: 'payments-v2', method: 'POST', path: '/v2/payments' },
        },
      });
      return;
    }
    if (pending === undefined) {
      const user = request % 1000;
      pending = { requestId: `req-${id}-${request++}`, user };
      sink.plain(eventId, { phase, family: 'policy', produced: performance.now() });
      emitter.policy({
        id: eventId,
        ...common(user, pending.requestId),
        policy: { kind: 'authn', name: 'verify-oauth2-token', outcome: 'pass', authContext: 'oauth2', group: 'accounts', resource: resource(user) },
      });
      return;
    }
    const { requestId, user } = pending;
    pending = undefined;
    sink.plain(eventId, { phase, family: 'invocation', produced: performance.now() });
    emitter.invocation({
      id: eventId,
      ...common(user, requestId),
      invocation: { resource: resource(user), route: '/v1/accounts/:id', status: 200, latencyMs: 18, group: 'accounts' },
    });
  };
  // The emitter sends its buffer in order and counts what was delivered, so a trigger is
  // acknowledged once `delivered` reaches its sequence.
  const acks = setInterval(() => {
    const { delivered } = emitter.stats();
    const at = performance.now();
    while (unacked.length > 0 && (unacked[0]?.sequence ?? Infinity) <= delivered) {
      const trigger = unacked.shift();
      if (trigger) sink.acked(trigger.eventId, at);
    }
  }, ACK_SAMPLE_MS);
  return {
    async burst(phase, total) {
      for (let emitted = 0; emitted < total; ) {
        for (let burst = 0; burst < BURST && emitted < total; burst++, emitted++) next(phase);
        // Hand the loop to the pipeline between bursts; hold back while Kafka is behind the SDK.
        if (emitter.stats().buffered > 5_000) await emitter.flush();
        else await nextTurn();
      }
      await emitter.flush();
    },
    async paced(rate, seconds) {
      const started = performance.now();
      const end = started + seconds * 1000;
      let emitted = 0;
      for (let now = started; now < end; now = performance.now()) {
        const due = Math.floor(((now - started) / 1000) * rate);
        // The emitter sends on its own: lingerMs after the first event it holds.
        for (; emitted < due; emitted++) next(2);
        await sleep(1);
      }
      return emitted;
    },
    async close() {
      clearInterval(acks);
      await emitter.close();
      return emitter.stats();
    },
  };
}
