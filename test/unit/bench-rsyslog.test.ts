import { RSYSLOG_BATCH, RSYSLOG_WORKERS, rsyslogConfig, rsyslogRefusal, type RsyslogPlan } from '../../bench/rsyslog';
import { loadConfig } from '../../platform';

const plan: RsyslogPlan = {
  brokers: ['127.0.0.1:9092', '127.0.0.1:9093'],
  topics: ['t-policy', 't-invocation', 't-device'],
  consumerGroup: 'bench-ingest',
  elasticsearchUrl: 'http://127.0.0.1:9200',
  index: 'bench-raw',
  workDirectory: '/tmp/bench "work"',
  errorFile: '/tmp/errors.json',
};

describe("the throughput bench's rsyslog configuration", () => {
  it('reads every topic in one group and ships each message unchanged, in bulk, without _type', () => {
    const text = rsyslogConfig(plan);
    const inputs = text.split('\n').filter((line) => line.startsWith('input('));
    expect(inputs).toHaveLength(3);
    for (const [position, topic] of plan.topics.entries()) {
      expect(inputs[position]).toBe(
        `input(type="imkafka" topic="${topic}" broker="127.0.0.1:9092,127.0.0.1:9093" consumergroup="bench-ingest" confParam=["auto.offset.reset=earliest"] ruleset="ship")`,
      );
    }
    expect(text).toContain('template(name="raw" type="string" string="%msg%")');
    expect(text).toContain('server="127.0.0.1" serverport="9200" searchIndex="bench-raw" template="raw"');
    expect(text).toContain('bulkmode="on" esVersion.major="8"');
    expect(text).toContain(`queue.workerThreads="${RSYSLOG_WORKERS}" queue.dequeueBatchSize="${RSYSLOG_BATCH}"`);
  });

  it('escapes quotes and backslashes in the strings it writes', () => {
    expect(rsyslogConfig(plan)).toContain('global(workDirectory="/tmp/bench \\"work\\"" maxMessageSize="64k")');
    expect(rsyslogConfig({ ...plan, index: 'a\\b' })).toContain('searchIndex="a\\\\b"');
  });

  it('gives port 80 to a URL without one', () => {
    expect(rsyslogConfig({ ...plan, elasticsearchUrl: 'http://es.local' })).toContain('server="es.local" serverport="80"');
  });

  it('refuses an Elasticsearch it cannot reach as configured, naming the URL without its credentials', () => {
    expect(() => rsyslogConfig({ ...plan, elasticsearchUrl: 'https://127.0.0.1:9201' })).toThrow(
      'the rsyslog path runs against a plain http Elasticsearch at the root of its host, without credentials; ELASTICSEARCH_URL is https://127.0.0.1:9201/',
    );
    expect(() => rsyslogConfig({ ...plan, elasticsearchUrl: 'http://elastic:s3cret@127.0.0.1:9200' })).toThrow('ELASTICSEARCH_URL is http://127.0.0.1:9200/');
    // omelasticsearch's server is a host: a path prefix (a proxy's /es) would be dropped.
    expect(() => rsyslogConfig({ ...plan, elasticsearchUrl: 'http://127.0.0.1:9200/es' })).toThrow('ELASTICSEARCH_URL is http://127.0.0.1:9200/es');
  });

  // A secured store refused rsyslog, and the bench waited out its deadline for nothing.
  it('is refused against a secured Kafka or an Elasticsearch that takes credentials, naming the settings', () => {
    expect(rsyslogRefusal(loadConfig({}))).toBeUndefined();
    expect(rsyslogRefusal(loadConfig({ KAFKA_TLS: 'on' }))).toBe('the rsyslog path reads a plain Kafka listener; KAFKA_TLS, KAFKA_TLS_CA_FILE or KAFKA_SASL_MECHANISM is set');
    expect(rsyslogRefusal(loadConfig({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p-long-enough' }))).toMatch(/^the rsyslog path reads a plain Kafka listener/);
    expect(rsyslogRefusal(loadConfig({ ELASTICSEARCH_API_KEY: 'a2V5OnNlY3JldA==' }))).toBe(
      'the rsyslog path indexes without credentials; ELASTICSEARCH_API_KEY, ELASTICSEARCH_USERNAME or ELASTICSEARCH_PASSWORD is set',
    );
  });
});
