/**
 * Shared plumbing below every consumer: configuration, logging, errors and retries,
 * instrumentation, the Kafka clients and partition runner, the Elasticsearch clients and bulk
 * sink, and the Redis client. Imports only the contract (schemas/).
 */
export * from './errors';
export * from './retry';
export * from './config';
export * from './nearest';
export * from './logger';
export * from './instrumentation';
export * from './redis';
export * from './kafka/clients';
export * from './kafka/codecs';
export * from './kafka/partition-runner';
export * from './kafka/fetch-ahead-runner';
export * from './kafka/offset-commits';
export * from './kafka/event-time-alignment';
export * from './kafka/shared-watermark';
export * from './kafka/co-partition-assigner';
export * from './kafka/consumer-supervisor';
export * from './elasticsearch/clients';
export * from './elasticsearch/bulk-indexer';
export * from './connections';
export * from './http-server';
export * from './lifecycle';
export * from './kafka/messages';
export * from './memo';
export * from './memory';
