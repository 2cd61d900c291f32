import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino replaces with `[redacted]` wherever they appear in a log line. Secrets reach logs
 * through error objects and request context; tests assert each of these stays out.
 */
export const REDACT_PATHS: readonly string[] = [
  'password',
  '*.password',
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["x-api-key"]',
  '*.*.headers.authorization',
  '*.*.headers.cookie',
  '*.*.password',
  '*.*.token',
  '*.*.apiKey',
  '*.*.secret',
  'cookie',
  '*.cookie',
  'sessionId',
  '*.sessionId',
  '*.*.sessionId',
  'secret',
  '*.secret',
  // PagerDuty's routing key: in a destination (`routingKey`) and in an Events API body
  // (`routing_key`), e.g. a notifier dead letter logged as `{ deadLetter: { payload } }`.
  'routingKey',
  '*.routingKey',
  'routing_key',
  '*.routing_key',
  '*.*.routing_key',
];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. @defaultValue 'info' */
  level?: string;
  /** Where lines go; tests pass a stream to read them back. @defaultValue stdout */
  destination?: DestinationStream;
}

/** The root logger; components take `logger.child({ component: '...' })`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'vigil' },
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination,
  );
}
