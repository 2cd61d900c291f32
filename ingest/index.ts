/**
 * Ingest: the consumer group that validates, dead-letters, enriches and indexes events. The
 * producer SDK services import (emitter, HTTP middleware) is the package in ./sdk, imported by
 * its own path and never re-exported here: this barrel loads geoip-lite, ioredis and more.
 */
export * from './classify';
export * from './enrich';
export * from './event-document';
export * from './dead-letter';
export * from './bulk-indexer';
export * from './infrastructure';
export * from './ingest.consumer';
export * from './detection';
export * from './correlation';
export * from './alerting';
