import type { Client } from '@elastic/elasticsearch';
import type { EachBatchPayload, Kafka } from 'kafkajs';
import { createIngestPipeline } from '../../ingest';
import { createLogger, loadConfig } from '../../platform';
import { randomEvents } from '../support/random-events';

/**
 * How a chunk's dead letters go out (docs/hostile-input.md, 3 December 2026): the ids already
 * decided as conflicts go in one send with what decode refused, not in a second round trip after
 * indexing. Fakes stand in for Kafka and Elasticsearch and write what they are asked to a log.
 */

// kafkajs's own loop: a chunk is done when eachBatch resolves. Fetching ahead (the default) hands
// chunks to a worker per partition instead; fetch-ahead-runner.test.ts covers that.
const config = loadConfig({ VIGIL_FETCH_AHEAD: 'off' });
const logger = createLogger({ level: 'silent' });
const topic = config.topics.policy;

interface Fakes {
  log: string[];
  kafka: Kafka;
  elasticsearch: Client;
  eachBatch(): (payload: EachBatchPayload) => Promise<void>;
}

function fakes(): Fakes {
  const log: string[] = [];
  let eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  const allTopics = Object.values(config.topics).concat(config.alerting.notificationTopic, config.alerting.notificationDeadLetterTopic);
  const kafka = {
    admin: () => ({
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      listTopics: () => Promise.resolve(allTopics),
      createTopics: () => Promise.resolve(true),
      fetchTopicMetadata: ({ topics }: { topics: string[] }) => Promise.resolve({ topics: topics.map((name) => ({ name, partitions: [{}, {}, {}] })) }),
    }),
    producer: () => ({
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      send: ({ topic: to, messages }: { topic: string; messages: unknown[] }) => {
        log.push(`${to === config.topics.deadLetter ? 'dead letters' : to} ${messages.length}`);
        return Promise.resolve([]);
      },
    }),
    consumer: () => ({
      events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' },
      on: () => () => undefined,
      connect: () => Promise.resolve(),
      subscribe: () => Promise.resolve(),
      run: (options: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) => {
        eachBatch = options.eachBatch;
        return Promise.resolve();
      },
      disconnect: () => Promise.resolve(),
    }),
  } as unknown as Kafka;
  const acknowledged = (): Promise<object> => Promise.resolve({ acknowledged: true });
  const elasticsearch = {
    cluster: { putComponentTemplate: acknowledged },
    indices: { putIndexTemplate: acknowledged, putMapping: acknowledged, getIndexTemplate: () => Promise.resolve({ index_templates: [] }) },
    transport: {
      request: ({ path, bulkBody }: { path: string; bulkBody: Buffer }) => {
        if (path !== '/_bulk') return Promise.reject(new Error(`unexpected request ${path}`));
        const documents = bulkBody.toString('utf8').trim().split('\n').length / 2;
        log.push(`bulk ${documents}`);
        return Promise.resolve({ items: Array.from({ length: documents }, () => ({ create: { status: 201 } })) });
      },
    },
  } as unknown as Client;
  return {
    log,
    kafka,
    elasticsearch,
    eachBatch: () => {
      if (!eachBatch) throw new Error('the pipeline did not run its consumer');
      return eachBatch;
    },
  };
}

function batch(messages: { offset: number; value: string }[]): EachBatchPayload {
  const kafkaMessages = messages.map(({ offset, value }) => ({ offset: String(offset), value: Buffer.from(value), key: null, timestamp: '0', attributes: 0, headers: {} }));
  return {
    batch: { topic, partition: 0, messages: kafkaMessages, highWatermark: String((messages.at(-1)?.offset ?? 0) + 1) },
    isRunning: () => true,
    isStale: () => false,
    resolveOffset: () => undefined,
    commitOffsetsIfNecessary: () => Promise.resolve(),
    heartbeat: () => Promise.resolve(),
    pause: () => () => undefined,
  } as unknown as EachBatchPayload;
}

describe('the dead letters of a chunk', () => {
  const [event] = randomEvents(7, 1);
  if (!event) throw new Error('no event');
  const start = async (): Promise<Fakes> => {
    const fake = fakes();
    const pipeline = createIngestPipeline({ config, kafka: fake.kafka, elasticsearch: fake.elasticsearch, logger, geoLookup: () => undefined, clock: () => new Date('2026-06-01T12:00:00Z') });
    await pipeline.start();
    return fake;
  };

  it('go out in one send with the ids already decided as conflicts', async () => {
    const fake = await start();
    await fake.eachBatch()(batch([{ offset: 0, value: JSON.stringify(event) }]));
    // The same id with other content, decided from memory (an id conflict), and a message decode refuses.
    const other = { ...event, source: { ...event.source, service: `${event.source.service}-other` } };
    await fake.eachBatch()(batch([{ offset: 1, value: JSON.stringify(other) }, { offset: 2, value: 'not json' }]));
    expect(fake.log).toEqual(['bulk 1', 'dead letters 2']);
  });
});
