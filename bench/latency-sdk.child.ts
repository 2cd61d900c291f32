/**
 * The latency bench's SDK in a process of its own (`BENCH_SDK_PROCESS=child`), as a service emits:
 * the bench forks this file, which emits the traffic (bench/latency-traffic.ts) when told to and
 * sends back, over the IPC channel, what it emitted and when Kafka acknowledged each trigger.
 * Times cross as milliseconds since the epoch (`performance.timeOrigin + performance.now()`), the
 * two processes sharing the machine's clock.
 */
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import type { Emitter, EmitterCompression } from '../ingest/sdk';
import { rdkafkaClient } from '../ingest/sdk/rdkafka';
import { trafficDriver, trafficEmitter, type TrafficDriver } from './latency-traffic';

/** What the bench tells the child. */
export type ToChild =
  | { type: 'start'; id: string; brokers: readonly string[]; topics: { policy: string; invocation: string; device: string }; client: 'kafkajs' | 'rdkafka'; compression?: EmitterCompression; lingerMs: number }
  | { type: 'burst'; phase: 1 | 2; count: number }
  | { type: 'paced'; rate: number; seconds: number }
  | { type: 'close' };

/** What the child tells the bench; times in milliseconds since the epoch. */
export type FromChild =
  | { type: 'ready' }
  | { type: 'triggers'; list: [eventId: string, phase: 1 | 2, consumerId: string, ip: string, produced: number][] }
  | { type: 'plains'; list: [eventId: string, phase: 1 | 2, family: 'policy' | 'invocation', produced: number][] }
  | { type: 'acked'; list: [eventId: string, at: number][] }
  | { type: 'done'; emitted?: number }
  | { type: 'closed'; stats: ReturnType<Emitter['stats']> };

/** How often what was emitted is sent to the bench (each message costs the bench's process its parse). */
const REPORT_MS = 5;

const send = (message: FromChild): void => void process.send?.(message);
const epoch = (at: number): number => performance.timeOrigin + at;

let driver: TrafficDriver | undefined;
const triggers: Extract<FromChild, { type: 'triggers' }>['list'] = [];
const plains: Extract<FromChild, { type: 'plains' }>['list'] = [];
const acked: Extract<FromChild, { type: 'acked' }>['list'] = [];

/** Sends what gathered; triggers first, so the bench knows a trigger before its acknowledgement. */
function report(): void {
  if (triggers.length > 0) send({ type: 'triggers', list: triggers.splice(0) });
  if (plains.length > 0) send({ type: 'plains', list: plains.splice(0) });
  if (acked.length > 0) send({ type: 'acked', list: acked.splice(0) });
}
const reporting = setInterval(report, REPORT_MS);

async function handle(message: ToChild): Promise<void> {
  switch (message.type) {
    case 'start': {
      const kafka =
        message.client === 'rdkafka'
          ? rdkafkaClient({ brokers: message.brokers, clientId: `bench-lat-${message.id}` })
          : new Kafka({ brokers: [...message.brokers], clientId: `bench-lat-${message.id}`, logLevel: logLevel.ERROR });
      const emitter = trafficEmitter(kafka, message.id, message.topics, { lingerMs: message.lingerMs, ...(message.compression ? { compression: message.compression } : {}) });
      driver = trafficDriver(emitter, message.id, {
        trigger: (eventId, { phase, consumerId, ip, produced }) => void triggers.push([eventId, phase, consumerId, ip, epoch(produced)]),
        plain: (eventId, { phase, family, produced }) => void plains.push([eventId, phase, family, epoch(produced)]),
        acked: (eventId, at) => void acked.push([eventId, epoch(at)]),
      });
      send({ type: 'ready' });
      return;
    }
    case 'burst':
      await driver?.burst(message.phase, message.count);
      report();
      send({ type: 'done' });
      return;
    case 'paced': {
      const emitted = await driver?.paced(message.rate, message.seconds);
      report();
      send({ type: 'done', ...(emitted === undefined ? {} : { emitted }) });
      return;
    }
    case 'close': {
      const stats = await driver?.close();
      clearInterval(reporting);
      report();
      if (stats) send({ type: 'closed', stats });
      process.disconnect?.();
      return;
    }
  }
}

process.on('message', (message: ToChild) => {
  handle(message).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
});
