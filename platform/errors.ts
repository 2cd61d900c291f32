/**
 * One error hierarchy for Vigil. Every error says whether trying again can help (`retriable`)
 * and keeps what caused it (`cause`), so a consumer knows whether to redeliver or dead-letter.
 */
export class VigilError extends Error {
  /** A stable machine-readable code, e.g. `schema_invalid`. */
  readonly code: string;
  /** True when the same operation may succeed later (a store is down, a broker is rebalancing). */
  readonly retriable: boolean;

  constructor(message: string, options: { code: string; retriable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.retriable = options.retriable;
  }
}

/** Input that can never be accepted as it is: a bad event, a bad rule, a bad message. */
export class ValidationError extends VigilError {
  /** Each problem as `path: message`, e.g. `client.ip: Invalid IP address`. */
  readonly issues: readonly string[];

  constructor(message: string, issues: readonly string[], code = 'validation_failed') {
    super(`${message}: ${issues.join('; ')}`, { code, retriable: false });
    this.issues = issues;
  }
}

/** The environment does not describe a usable configuration. */
export class ConfigError extends VigilError {
  readonly issues: readonly string[];

  constructor(issues: readonly string[]) {
    super(`invalid configuration:\n  - ${issues.join('\n  - ')}`, { code: 'config_invalid', retriable: false });
    this.issues = issues;
  }
}

/** A downstream store (Elasticsearch, Redis, Kafka) refused or could not be reached. */
export class StoreUnavailableError extends VigilError {
  readonly store: string;

  constructor(store: string, message: string, cause?: unknown) {
    super(`${store}: ${message}`, { code: 'store_unavailable', retriable: true, cause });
    this.store = store;
  }
}

/** A store accepted the request but rejected the content for good (e.g. a mapping conflict). */
export class StoreRejectedError extends VigilError {
  readonly store: string;

  constructor(store: string, message: string, cause?: unknown) {
    super(`${store}: ${message}`, { code: 'store_rejected', retriable: false, cause });
    this.store = store;
  }
}

const PROGRAMMER_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

/**
 * The error under kafkajs's KafkaJSNumberOfRetriesExceeded: kafkajs wraps the last error of its
 * retrier in it, itself marked not retriable, even around a timeout or a partition without a
 * leader. What it wraps says whether trying again later can help.
 */
export function unwrapKafkaRetries(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.name === 'KafkaJSNumberOfRetriesExceeded' && current.cause !== undefined; depth++) current = current.cause;
  return current;
}

/**
 * Whether an error is worth retrying. Programmer errors never are; Vigil errors say so
 * themselves; kafkajs's "retries exceeded" by what it wraps (a dead-letter or detections topic
 * without a leader for a few seconds paused nothing: the consumer crashed, six times over, and the
 * process exited); anything else (a socket reset, a timeout from a client library) is presumed
 * transient, because the retry helper bounds how often we try.
 */
export function isRetriable(thrown: unknown): boolean {
  const error = unwrapKafkaRetries(thrown);
  if (error instanceof VigilError) return error.retriable;
  if (PROGRAMMER_ERRORS.some((type) => error instanceof type)) return false;
  if (typeof error === 'object' && error !== null && 'retriable' in error) {
    return error.retriable === true;
  }
  return true;
}

/** A message for any thrown value, without assuming it is an Error. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** A URL without its user and password, for messages (logs and errors never carry credentials). */
export function urlWithoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}
