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
  // ioredis puts the command on a reply error: a refused AUTH (or HELLO … AUTH) carries the user
  // and password as its arguments, which the secrets list misses when the password is short.
  '*.command.args',
  '*.*.command.args',
];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. @defaultValue 'info' */
  level?: string;
  /** Where lines go; tests pass a stream to read them back. @defaultValue stdout */
  destination?: DestinationStream;
  /**
   * Secret values (passwords, API keys) blanked wherever they appear in a line: in any field, and
   * inside error messages and stacks, which path-based redaction can't reach. @defaultValue none
   */
  secrets?: readonly string[];
}

/** `text` with every secret value replaced by `[redacted]` (as given, and as JSON would write it). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let clean = text;
  for (const needle of needlesOf(secrets)) if (clean.includes(needle)) clean = clean.split(needle).join('[redacted]');
  return clean;
}

function needlesOf(secrets: readonly string[]): string[] {
  // JSON escapes some characters, so a secret is looked for both as given and as JSON would write it.
  return [...new Set(secrets.flatMap((value) => [value, JSON.stringify(value).slice(1, -1)]))].filter((needle) => needle !== '');
}

/** A stream that writes each line with every secret value replaced, then passes it on. */
function scrubbing(secrets: readonly string[], destination: DestinationStream): DestinationStream {
  const needles = needlesOf(secrets);
  return {
    write(line: string) {
      let clean = line;
      for (const needle of needles) if (clean.includes(needle)) clean = clean.split(needle).join('[redacted]');
      destination.write(clean);
    },
  };
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
    options.secrets && options.secrets.length > 0 ? scrubbing(options.secrets, options.destination ?? pino.destination(1)) : options.destination,
  );
}
