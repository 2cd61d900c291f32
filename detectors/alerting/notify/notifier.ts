import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import type { AlertChange } from '../../../schemas';
import { createLogger, retry, sleep, type Logger } from '../../../platform';
import { routesFor, type Destination } from '../destinations';
import { toDeadLetter } from './dead-letter';
import { postOnce } from './http';
import { NotificationError } from './notification-error';
import { requestRenderer, type RenderRequest } from './request';

/** Counters of a notifier. */
export interface NotifierStats {
  /** Deliveries waiting or in flight now (a gauge: 0 after {@link Notifier.drain}). */
  queued: number;
  /** Deliveries the destination accepted (2xx). */
  sent: number;
  /** Retries, over all deliveries (a delivery that succeeded on its 4th attempt adds 3). */
  retried: number;
  /** Deliveries given up: retries exhausted, a status not worth retrying, or a full queue. */
  failed: number;
  /** Dead-letter records written: to the topic, or to the log when there is no producer. */
  deadLettered: number;
}

/** Options of {@link createNotifier}. */
export interface NotifierOptions {
  /** Where notifications go, from {@link parseDestinations}. Only these: never anything from event data. */
  destinations: readonly Destination[];
  /** A connected kafkajs producer for the dead-letter topic; without one, dead letters go to the log. */
  producer?: Producer;
  /** The dead-letter topic, `config.alerting.notificationDeadLetterTopic`. */
  deadLetterTopic: string;
  /** The notifier names its own child logger (`component: 'notifier'`): pass the parent. @defaultValue a silent logger */
  logger?: Logger;
  /** Attempts after the first. @defaultValue 5 */
  retries?: number;
  /** Delay before the first retry, before jitter. @defaultValue 500 */
  initialDelayMs?: number;
  /** Upper bound of one delay, `Retry-After` included. @defaultValue 30000 */
  maxDelayMs?: number;
  /** Deliveries one destination may hold waiting; beyond that they are dead-lettered at once. @defaultValue 1000 */
  maxQueuedPerDestination?: number;
  /** The clock, in ms since the epoch (`sentAt`, signature timestamps). @defaultValue Date.now */
  now?: () => number;
  /** @defaultValue the global fetch */
  fetchImpl?: typeof fetch;
}

/** Sends alert changes to their destinations. */
export interface Notifier {
  /** Queues one delivery per destination the change routes to. Never throws, never waits. */
  notify(change: AlertChange): void;
  /** Resolves when every queued delivery has been sent or dead-lettered, including ones queued meanwhile. */
  drain(): Promise<void>;
  /** A copy of the counters. */
  stats(): NotifierStats;
  /** Outcomes per destination name, for metrics labelled by destination. */
  destinationStats(): Record<string, DestinationStats>;
}

/** Outcomes of one destination's deliveries since the notifier was created. */
export interface DestinationStats {
  sent: number;
  retried: number;
  failed: number;
}

interface Delivery {
  destination: Destination;
  change: AlertChange;
  deliveryId: string;
  /** Rendered per attempt: a webhook is signed (and stamped) at send time. */
  render: RenderRequest;
}

/** One destination's queue: deliveries chained one after another. */
interface Lane {
  tail: Promise<void>;
  waiting: number;
}

/**
 * Creates a notifier: it sends each alert change to the destinations it routes to, as a signed
 * webhook, a Slack message or a PagerDuty event.
 *
 * Deliveries to different destinations run concurrently; deliveries to one destination run one
 * at a time, in `notify` order, so a destination never sees a `resolved` before its `opened`
 * (a destination retrying holds back its own queue, no other). An attempt that fails with a
 * network error, a timeout (`timeoutMs` of the destination), 429 or 5xx is retried with the
 * platform's `retry` (exponential backoff with jitter, at least `Retry-After` when the destination
 * sends one, capped at `maxDelayMs`). Any other answer but 2xx (3xx included: redirects are not
 * followed) is final. A delivery that fails for good is written to the dead-letter topic, keyed by
 * the alert id, as a {@link NotificationDeadLetter}.
 *
 * Every notification carries a delivery id (`X-Vigil-Delivery`) kept across retries: delivery is
 * at-least-once (a timeout may hide a success), so receivers deduplicate on it.
 */
export function createNotifier(options: NotifierOptions): Notifier {
  const log = (options.logger ?? createLogger({ level: 'silent' })).child({ component: 'notifier' });
  const fetchImpl = options.fetchImpl ?? fetch;
  const now = options.now ?? Date.now;
  const retries = options.retries ?? 5;
  const initialDelayMs = options.initialDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const maxQueued = options.maxQueuedPerDestination ?? 1000;
  const destinations = [...options.destinations];
  const counters: NotifierStats = { queued: 0, sent: 0, retried: 0, failed: 0, deadLettered: 0 };
  const byDestination: Record<string, DestinationStats> = {};
  const countFor = (destination: Destination): DestinationStats => (byDestination[destination.name] ??= { sent: 0, retried: 0, failed: 0 });
  const lanes = new Map<string, Lane>();
  /** Dead letters written outside a lane (a full queue), awaited by drain. */
  const outside = new Set<Promise<void>>();

  async function deadLetter(delivery: Delivery, error: unknown, attempts: number, body: string | undefined): Promise<void> {
    const { destination, change } = delivery;
    counters.failed += 1;
    countFor(destination).failed += 1;
    const record = toDeadLetter(destination, change, error, attempts, body);
    const context = { destination: destination.name, alertId: change.alert.id, kind: change.kind, deliveryId: delivery.deliveryId, attempts };
    if (options.producer === undefined) {
      counters.deadLettered += 1;
      log.error({ ...context, deadLetter: record }, 'notification failed; no dead-letter producer, so the dead letter is this log line');
      return;
    }
    try {
      await options.producer.send({ topic: options.deadLetterTopic, messages: [{ key: change.alert.id, value: JSON.stringify(record) }] });
      counters.deadLettered += 1;
      log.warn({ ...context, err: error, topic: options.deadLetterTopic }, 'notification failed; dead-lettered');
    } catch (sendError) {
      // The last place the notification exists: log all of it.
      log.error({ ...context, err: sendError, deadLetter: record }, 'notification failed and the dead-letter write failed too');
    }
  }

  async function deliver(delivery: Delivery): Promise<void> {
    const { destination, change } = delivery;
    let attempts = 0;
    let body: string | undefined;
    try {
      await retry(
        async (number) => {
          attempts = number + 1;
          const request = delivery.render(now());
          body = request.body;
          await postOnce(fetchImpl, destination, request, now);
        },
        {
          retries,
          initialDelayMs,
          maxDelayMs,
          onRetry: async (error, retryNumber, delayMs) => {
            counters.retried += 1;
            countFor(destination).retried += 1;
            log.warn({ destination: destination.name, alertId: change.alert.id, kind: change.kind, retry: retryNumber, delayMs, err: error }, 'notification attempt failed; retrying');
            const asked = error instanceof NotificationError ? error.retryAfterMs : undefined;
            if (asked !== undefined && asked > delayMs) await sleep(Math.min(asked, maxDelayMs) - delayMs);
          },
        },
      );
      counters.sent += 1;
      countFor(destination).sent += 1;
      log.debug({ destination: destination.name, alertId: change.alert.id, kind: change.kind, attempts }, 'notification sent');
    } catch (error) {
      await deadLetter(delivery, error, attempts, body);
    }
  }

  function enqueue(destination: Destination, change: AlertChange): void {
    const deliveryId = randomUUID();
    const delivery: Delivery = { destination, change, deliveryId, render: requestRenderer(destination, change, deliveryId) };
    let lane = lanes.get(destination.name);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), waiting: 0 };
      lanes.set(destination.name, lane);
    }
    if (lane.waiting >= maxQueued) {
      const error = new Error(`the queue of destination ${destination.name} is full (${maxQueued} deliveries)`);
      const written = deadLetter(delivery, error, 0, delivery.render(now()).body).finally(() => outside.delete(written));
      outside.add(written);
      return;
    }
    const current = lane;
    current.waiting += 1;
    counters.queued += 1;
    current.tail = current.tail
      .then(() => deliver(delivery))
      .catch((error: unknown) => log.error({ err: error, destination: destination.name }, 'notifier lane failed'))
      .finally(() => {
        current.waiting -= 1;
        counters.queued -= 1;
      });
  }

  return {
    notify(change) {
      try {
        // A snapshot: the alerter may go on updating its alert object while this one waits.
        const snapshot = structuredClone(change);
        for (const destination of routesFor(destinations, snapshot)) enqueue(destination, snapshot);
      } catch (error) {
        log.error({ err: error, alertId: change?.alert?.id }, 'could not queue a notification');
      }
    },
    async drain() {
      while (counters.queued > 0 || outside.size > 0) {
        await Promise.all([...[...lanes.values()].map((lane) => lane.tail), ...outside]);
      }
    },
    stats() {
      return { ...counters };
    },
    destinationStats() {
      return structuredClone(byDestination);
    },
  };
}
