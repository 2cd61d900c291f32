/**
 * Ingest: the producer SDK services import (emitter, HTTP middleware) and the consumer group
 * that validates, dead-letters, enriches and indexes events.
 */
export * from './emitter';
export * from './http-middleware';
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
