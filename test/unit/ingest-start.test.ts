import type { Client } from '@elastic/elasticsearch';
import type { Kafka } from 'kafkajs';
import { createIngestPipeline } from '../../ingest';
import { createLogger, installTemplates, loadConfig } from '../../platform';

/**
 * The ingest pipeline's start-up order (docs/performance.md, start-up): what does not depend on
 * anything else goes out together, the group is joined only once everything is ready, and a
 * failed preparation leaves nothing connected. Fakes stand in for Kafka and Elasticsearch; every
 * call is written to a log, and Elasticsearch's requests are answered only when the test says.
 */

const config = loadConfig({});
const logger = createLogger({ level: 'silent' });
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An Elasticsearch client whose template requests wait until {@link answerAll}. */
function fakeElasticsearch(log: string[]): { client: Client; answerAll: () => void; waiting: () => number } {
  let waiting: (() => void)[] = [];
  const request = (what: string) => (parameters: { name?: string; index?: string }): Promise<object> => {
    log.push(`${what} ${parameters.name ?? parameters.index ?? ''}`);
    return new Promise((resolve) => waiting.push(() => resolve({ acknowledged: true })));
  };
  const client = {
    cluster: { putComponentTemplate: request('component template') },
    indices: {
      putIndexTemplate: request('index template'),
      putMapping: request('mapping'),
      // The version check before the puts, answered at once: no Vigil template is there yet.
      getIndexTemplate: (parameters: { name: string }) => {
        log.push(`read templates ${parameters.name}`);
        return Promise.resolve({ index_templates: [] });
      },
    },
  } as unknown as Client;
  return {
    client,
    answerAll() {
      const answering = waiting;
      waiting = [];
      for (const answer of answering) answer();
    },
    waiting: () => waiting.length,
  };
}

/** A Kafka whose topics all exist with three partitions; producers and the consumer log what they do. */
function fakeKafka(log: string[]): Kafka {
  const topicsOf = (topics: string[]) => ({ topics: topics.map((name) => ({ name, partitions: [{}, {}, {}] })) });
  const allTopics = Object.values(config.topics).concat(config.alerting.notificationTopic, config.alerting.notificationDeadLetterTopic);
  return {
    admin: () => ({
      connect: () => Promise.resolve(),
      disconnect: () => Promise.resolve(),
      listTopics: () => Promise.resolve(allTopics),
      createTopics: () => Promise.resolve(true),
      fetchTopicMetadata: ({ topics }: { topics: string[] }) => Promise.resolve(topicsOf(topics)),
    }),
    producer: () => ({
      connect: () => {
        log.push('producer connect');
        return Promise.resolve();
      },
      disconnect: () => {
        log.push('producer disconnect');
        return Promise.resolve();
      },
    }),
    consumer: () => {
      log.push('consumer created');
      return {
        events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' },
        on: () => () => undefined,
        connect: () => {
          log.push('consumer connect');
          return Promise.resolve();
        },
        subscribe: () => Promise.resolve(),
        run: () => {
          log.push('consumer run');
          return Promise.resolve();
        },
        disconnect: () => Promise.resolve(),
      };
    },
  } as unknown as Kafka;
}

describe('installTemplates', () => {
  it('sends every request at once but the event index template, which waits for the component template it composes', async () => {
    const log: string[] = [];
    const elasticsearch = fakeElasticsearch(log);
    let done = false;
    const installing = installTemplates(elasticsearch.client, config).then(() => {
      done = true;
    });
    await flush();
    // The installed templates' versions are read first (a later build's are left alone).
    expect(log[0]).toBe(`read templates ${config.indices.prefix}-*`);
    // No put answered yet: everything independent is already out (one after the other, only the first would be).
    expect(log).toEqual(
      expect.arrayContaining([
        `component template ${config.indices.prefix}-events-mappings`,
        `index template ${config.indices.prefix}-detections`,
        `index template ${config.indices.prefix}-alerts`,
        `index template ${config.indices.prefix}-pipeline`,
      ]),
    );
    expect(log.filter((line) => line.startsWith('mapping '))).toHaveLength(3);
    expect(log).not.toContain(`index template ${config.indices.prefix}-events`);
    elasticsearch.answerAll();
    await flush();
    expect(log).toContain(`index template ${config.indices.prefix}-events`);
    expect(done).toBe(false);
    while (elasticsearch.waiting() > 0) {
      elasticsearch.answerAll();
      await flush();
    }
    await installing;
    expect(done).toBe(true);
  });
});

describe('the ingest pipeline start', () => {
  const timers: NodeJS.Timeout[] = [];
  afterEach(() => timers.splice(0).forEach((timer) => clearInterval(timer)));
  /** An Elasticsearch that answers every request within a millisecond or so. */
  function answering(log: string[]): Client {
    const elasticsearch = fakeElasticsearch(log);
    timers.push(setInterval(() => elasticsearch.answerAll(), 1));
    return elasticsearch.client;
  }

  it('prepares (the geo database) beside its own set-up, and joins the group only once both are done', async () => {
    const log: string[] = [];
    let prepared: () => void = () => undefined;
    const prepare = jest.fn(() => new Promise<void>((resolve) => (prepared = resolve)));
    const pipeline = createIngestPipeline({ config, kafka: fakeKafka(log), elasticsearch: answering(log), logger, geoLookup: () => undefined, prepare });
    const starting = pipeline.start();
    for (let turn = 0; turn < 20; turn++) await flush();
    expect(prepare).toHaveBeenCalledTimes(1);
    expect(log.filter((line) => line === 'producer connect')).toHaveLength(2);
    expect(log.some((line) => line.startsWith('component template'))).toBe(true);
    expect(log).not.toContain('consumer connect');
    log.push('prepared');
    prepared();
    await starting;
    expect(log.indexOf('consumer connect')).toBeGreaterThan(log.indexOf('prepared'));
    expect(log).toContain('consumer run');
  });

  it('fails when the preparation fails, with its error, joining nothing and closing the producers', async () => {
    const log: string[] = [];
    const failure = new Error('the geo database cannot be read');
    const pipeline = createIngestPipeline({ config, kafka: fakeKafka(log), elasticsearch: answering(log), logger, geoLookup: () => undefined, prepare: () => Promise.reject(failure) });
    await expect(pipeline.start()).rejects.toBe(failure);
    expect(log).not.toContain('consumer created');
    expect(log.filter((line) => line === 'producer disconnect')).toHaveLength(2);
  });
});
