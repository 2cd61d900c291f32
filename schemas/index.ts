/**
 * The event contract: zod schemas (the single source of the types), their JSON Schema, and the
 * Elasticsearch templates. Imports nothing but zod.
 */
export * from './envelope';
export * from './policy';
export * from './invocation';
export * from './device';
export * from './event';
export * from './elasticsearch';
export * from './detection';
export * from './alert';
export * from './pipeline';
