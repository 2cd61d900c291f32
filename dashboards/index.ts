/**
 * Vigil's Kibana objects as code: the typed panel definitions (src/definitions.ts), the saved
 * objects and NDJSON rendered from them, the query behind each panel, their offline validation,
 * and the client that installs them through Kibana's saved objects API.
 */
export * from './src/model';
export * from './src/definitions';
export * from './src/fields';
export * from './src/saved-objects';
export * from './src/queries';
export * from './src/validate';
export * from './src/kibana-client';
export * from './src/links';
