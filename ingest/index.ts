/**
 * Ingest: the consumer group that validates, dead-letters, enriches, correlates, runs the rules
 * on and indexes events. The producer SDK services import (emitter, HTTP middleware) is the
 * package in ./sdk, imported by its own path and never re-exported here: this barrel reaches
 * the pipeline's dependencies.
 */
export * from './classify';
export * from './enrich';
export * from './geoip-lite';
export * from './geoip-lite-files';
export * from './maxmind';
export * from './geo-database';
export * from './event-document';
export * from './event-from-document';
export * from './content-hash';
export * from './id-conflicts';
export * from './dead-letter';
export * from './detection-input';
export * from './ingest.consumer';
export * from './correlation';
export * from './stages';
export * from './http-intake';
export * from './adapters';
export * from './adapt.consumer';
