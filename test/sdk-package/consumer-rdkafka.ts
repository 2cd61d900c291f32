// Type-checked by scripts/check-sdk-package.sh (node10 and node16 resolution) against the
// installed tarball's .d.ts, where node-rdkafka is not installed: the `rdkafka` entry point's
// types stand on their own.
import { createEmitter } from '@vigil/sdk';
import { rdkafkaClient, type RdkafkaClientOptions } from '@vigil/sdk/rdkafka';

const options: RdkafkaClientOptions = {
  brokers: ['127.0.0.1:1'],
  ssl: { ca: 'PEM' },
  sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'secret' },
  librdkafka: { 'linger.ms': 10 },
};
const emitter = createEmitter({ kafka: rdkafkaClient(options), source: { service: 'consumer', kind: 'service' } });
// @ts-expect-error: the mechanisms are kafkajs's names
rdkafkaClient({ brokers: [], sasl: { mechanism: 'gssapi', username: 'u', password: 'p' } });

export const used: unknown[] = [emitter];
