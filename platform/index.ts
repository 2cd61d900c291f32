/** Shared plumbing: configuration, logging, errors and retries. Imports nothing of Vigil's. */
export * from './errors';
export * from './retry';
export * from './config';
export * from './logger';
