/**
 * rsyslog as the throughput bench's reference shipper (issue 12's "rsyslog row"): what a user who
 * only wants the events in Elasticsearch would run. imkafka reads the event topics, omelasticsearch
 * indexes each message unchanged in bulk mode, into one fresh index with Elasticsearch's default
 * dynamic mapping. Debian's rsyslog, rsyslog-kafka and rsyslog-elasticsearch packages hold the
 * daemon and both modules (`bash scripts/bench-tools.sh` installs them; `npm run bench:throughput` runs it).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Config } from '../platform';

/** omelasticsearch's action queue: worker threads, each sending bulk requests of up to this many events. */
export const RSYSLOG_WORKERS = 2;
export const RSYSLOG_BATCH = 1000;

/** Where the packaged daemon is. */
export const RSYSLOGD = '/usr/sbin/rsyslogd';

/** What one rsyslog run reads and writes. */
export interface RsyslogPlan {
  /** `host:port` of each broker. */
  brokers: readonly string[];
  topics: readonly string[];
  consumerGroup: string;
  /** Elasticsearch's URL: plain http, no credentials (the bench's local stack). */
  elasticsearchUrl: string;
  index: string;
  /** The daemon's work directory (queue files, none kept) and where failed bulk items are written. */
  workDirectory: string;
  errorFile: string;
}

/**
 * Why the rsyslog path can't run against these stores as the bench configures them, or undefined.
 * Its configuration speaks plain Kafka and plain http to Elasticsearch, without credentials (the
 * bench's local stack): a secured store would refuse it and the bench would wait out its deadline.
 */
export function rsyslogRefusal(config: Config): string | undefined {
  const { kafka, elasticsearch } = config;
  if (kafka.tls || kafka.caFile !== undefined || kafka.sasl.mechanism !== 'none') return 'the rsyslog path reads a plain Kafka listener; KAFKA_TLS, KAFKA_TLS_CA_FILE or KAFKA_SASL_MECHANISM is set';
  if (elasticsearch.apiKey !== undefined || elasticsearch.username !== undefined || elasticsearch.password !== undefined) {
    return 'the rsyslog path indexes without credentials; ELASTICSEARCH_API_KEY, ELASTICSEARCH_USERNAME or ELASTICSEARCH_PASSWORD is set';
  }
  return undefined;
}

/** A double-quoted rsyslog string. */
function quoted(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The rsyslog configuration (RainerScript) for a plan; throws on an Elasticsearch URL it can't express. */
export function rsyslogConfig(plan: RsyslogPlan): string {
  const url = new URL(plan.elasticsearchUrl);
  if (url.protocol !== 'http:' || url.username !== '' || url.password !== '' || url.pathname !== '/') {
    throw new Error(`the rsyslog path runs against a plain http Elasticsearch at the root of its host, without credentials; ELASTICSEARCH_URL is ${url.protocol}//${url.host}${url.pathname}`);
  }
  const inputs = plan.topics.map(
    (topic) =>
      `input(type="imkafka" topic=${quoted(topic)} broker=${quoted(plan.brokers.join(','))} consumergroup=${quoted(plan.consumerGroup)} confParam=["auto.offset.reset=earliest"] ruleset="ship")`,
  );
  return [
    `global(workDirectory=${quoted(plan.workDirectory)} maxMessageSize="64k")`,
    'module(load="imkafka")',
    'module(load="omelasticsearch")',
    // The message as produced, byte for byte: a JSON event is a document.
    'template(name="raw" type="string" string="%msg%")',
    ...inputs,
    'ruleset(name="ship") {',
    `  action(type="omelasticsearch" server=${quoted(url.hostname)} serverport=${quoted(url.port === '' ? '80' : url.port)} searchIndex=${quoted(plan.index)} template="raw"`,
    // esVersion.major 8 and up: no `_type` in the bulk action lines (Elasticsearch 8 refuses it).
    `    bulkmode="on" esVersion.major="8" errorfile=${quoted(plan.errorFile)}`,
    `    queue.type="LinkedList" queue.workerThreads="${RSYSLOG_WORKERS}" queue.dequeueBatchSize="${RSYSLOG_BATCH}" queue.size="500000")`,
    '}',
    '',
  ].join('\n');
}

/**
 * Checks a configuration file the way rsyslogd would load it (`-N1`: modules loaded, nothing
 * started). Throws with rsyslogd's own words, and what installs it, when it can't.
 */
export async function checkRsyslog(configFile: string): Promise<void> {
  try {
    await promisify(execFile)(RSYSLOGD, ['-N1', '-f', configFile]);
  } catch (error) {
    const { code, stderr, stdout } = error as { code?: string | number; stderr?: string; stdout?: string };
    const words = code === 'ENOENT' ? `${RSYSLOGD} not found` : `${stderr ?? ''}${stdout ?? ''}`.trim();
    throw new Error(
      `the rsyslog path can't start: ${words}. bash scripts/bench-tools.sh (run by npm run bench:throughput) installs rsyslog, rsyslog-kafka and rsyslog-elasticsearch; BENCH_PATHS without rsyslog leaves the row out`,
    );
  }
}
