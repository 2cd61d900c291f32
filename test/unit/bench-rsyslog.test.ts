import { RSYSLOG_BATCH, RSYSLOG_WORKERS, rsyslogConfig, type RsyslogPlan } from '../../bench/rsyslog';

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
      'the rsyslog path runs against a plain http Elasticsearch without credentials; ELASTICSEARCH_URL is https://127.0.0.1:9201',
    );
    expect(() => rsyslogConfig({ ...plan, elasticsearchUrl: 'http://elastic:s3cret@127.0.0.1:9200' })).toThrow('ELASTICSEARCH_URL is http://127.0.0.1:9200');
  });
});
