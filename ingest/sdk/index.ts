/**
 * `@vigil/sdk`: what a service needs to send Vigil events. The emitter (validate, buffer, send to
 * Kafka in batches), the HTTP middleware (one invocation event per request), the event contract
 * they check against, and the error they throw. It depends on kafkajs and zod and nothing else,
 * and loads nothing at import beyond them, so it is cheap to add to any service.
 */
export * from './emitter';
export * from './http-middleware';
export type { SdkLogger } from './logger';
/** The emitter's own message writer: lets a consumer recognise a message as the SDK wrote it (Vigil's decode does, ingest/classify.ts). */
export { AFTER_ID, fastMessage, type FastMessage } from './fast-check';
export { ValidationError, VigilError } from '../../platform/errors';
export { CURRENT_SCHEMA_VERSION, FAMILIES, type Family } from '../../schemas/envelope';
export {
  describeIssues,
  eventSchema,
  familySchemas,
  type EventInputOf,
  type EventOf,
  type VigilEvent,
  type VigilEventInput,
} from '../../schemas/event';
