/**
 * Ingest: the producer SDK services import (emitter, HTTP middleware) and the consumer group
 * that validates, dead-letters, enriches, correlates, runs the rules on and indexes events.
 */
export * from './emitter';
export * from './http-middleware';
export * from './classify';
export * from './enrich';
export * from './geoip-lite';
export * from './event-document';
export * from './dead-letter';
export * from './detection-input';
export * from './ingest.consumer';
export * from './correlation';
export * from './stages';
