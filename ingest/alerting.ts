import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { createAlerter, createNotifier, parseDestinations, type Alerter, type AlertSink, type Notifier } from '../detectors';
import type { AlertChange } from '../schemas';
import type { Config, Logger } from '../platform';

/** A running alerter with its notifier. */
export interface AlertingRuntime {
  alerter: Alerter;
  notifier: Notifier;
  start(): Promise<void>;
  /** Stops consuming, waits for deliveries in flight (bounded), disconnects. */
  close(): Promise<void>;
}

/**
 * The on-call side: the alerter consumer group and the notifier it hands changes to.
 * Destinations are parsed first, so a bad VIGIL_ALERT_DESTINATIONS stops the start.
 */
export function createAlertingRuntime(options: {
  config: Config;
  kafka: Kafka;
  redis: Redis;
  elasticsearch: Client;
  logger: Logger;
  /** Also receives every change (the demo prints them). */
  observe?: (change: AlertChange) => void;
  fetchImpl?: typeof fetch;
  sweepEveryMs?: number;
}): AlertingRuntime {
  const { config, kafka, logger } = options;
  const destinations = parseDestinations(config.alerting.destinations);
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  const notifier = createNotifier({
    destinations,
    producer,
    deadLetterTopic: config.alerting.notificationDeadLetterTopic,
    logger: logger.child({ component: 'notifier' }),
    ...(options.fetchImpl ? { fetchImpl: options.fetchImpl } : {}),
  });
  const sink: AlertSink = {
    notify(change) {
      options.observe?.(change);
      notifier.notify(change);
    },
  };
  const alerter = createAlerter({
    config,
    kafka,
    redis: options.redis,
    elasticsearch: options.elasticsearch,
    sink,
    logger,
    ...(options.sweepEveryMs ? { sweepEveryMs: options.sweepEveryMs } : {}),
  });
  return {
    alerter,
    notifier,
    async start() {
      await producer.connect();
      await alerter.start();
      logger.info({ destinations: destinations.map((destination) => `${destination.name} (${destination.type})`) }, 'alerting started');
    },
    async close() {
      await alerter.stop();
      await Promise.race([notifier.drain(), new Promise((done) => setTimeout(done, 10_000).unref())]);
      await producer.disconnect();
    },
  };
}
