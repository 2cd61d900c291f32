/**
 * The logging the SDK does, as an interface: a service passes its own logger, and the SDK loads
 * no logging library. A pino logger satisfies it as it is; so does a small adapter over anything
 * else (`{ warn: (fields, message) => console.warn(message, fields), child() { return this; } }`).
 */
export interface SdkLogger {
  /** A problem the service should know about but that needs no action per call. */
  warn(fields: Record<string, unknown>, message: string): void;
  /** A logger whose lines carry `bindings` as well, e.g. `{ component: 'emitter' }`. */
  child(bindings: Record<string, unknown>): SdkLogger;
}
