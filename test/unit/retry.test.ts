import { KafkaJSConnectionError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded } from 'kafkajs';
import {
  ConfigError,
  StoreRejectedError,
  StoreUnavailableError,
  ValidationError,
  VigilError,
  backoffDelay,
  errorMessage,
  isRetriable,
  retry,
  sleep,
} from '../../platform';

/** An operation that fails with the given errors in turn, then answers `value`; it counts its calls. */
function failing<T>(errors: Error[], value: T): { operation: (attempt: number) => Promise<T>; attempts: number[] } {
  const attempts: number[] = [];
  const operation = (attempt: number): Promise<T> => {
    attempts.push(attempt);
    const error = errors[attempts.length - 1];
    return error === undefined ? Promise.resolve(value) : Promise.reject(error);
  };
  return { operation, attempts };
}

const fast = { initialDelayMs: 1, maxDelayMs: 2 };

describe('retry', () => {
  it('returns the value of the first success without waiting', async () => {
    const { operation, attempts } = failing([], 'done');
    await expect(retry(operation, fast)).resolves.toBe('done');
    expect(attempts).toStrictEqual([0]);
  });

  it('retries a StoreUnavailableError and returns the value once it succeeds', async () => {
    const unavailable = new StoreUnavailableError('elasticsearch', 'connection refused');
    const { operation, attempts } = failing([unavailable, unavailable], 42);
    await expect(retry(operation, { ...fast, retries: 5 })).resolves.toBe(42);
    expect(attempts).toStrictEqual([0, 1, 2]);
  });

  it('gives up after `retries` retries and rethrows the last error', async () => {
    const errors = [1, 2, 3, 4].map((n) => new StoreUnavailableError('redis', `down ${n}`));
    const { operation, attempts } = failing(errors, 'never');
    await expect(retry(operation, { ...fast, retries: 2 })).rejects.toBe(errors[2]);
    expect(attempts).toStrictEqual([0, 1, 2]);
  });

  it('makes exactly one attempt with retries: 0', async () => {
    const error = new StoreUnavailableError('kafka', 'down');
    const { operation, attempts } = failing([error], 'never');
    await expect(retry(operation, { ...fast, retries: 0 })).rejects.toBe(error);
    expect(attempts).toStrictEqual([0]);
  });

  it.each([
    ['TypeError', new TypeError('undefined is not a function')],
    ['RangeError', new RangeError('Invalid time value')],
    ['ValidationError', new ValidationError('bad event', ['client.ip: Invalid IP address'])],
    ['StoreRejectedError', new StoreRejectedError('elasticsearch', 'mapper_parsing_exception')],
  ])('never retries a %s', async (_name, error) => {
    const { operation, attempts } = failing([error], 'never');
    await expect(retry(operation, { ...fast, retries: 5 })).rejects.toBe(error);
    expect(attempts).toStrictEqual([0]);
  });

  it('tells onRetry the error, the retry number and the delay before each wait', async () => {
    const errors = [new StoreUnavailableError('redis', 'a'), new StoreUnavailableError('redis', 'b')];
    const { operation } = failing(errors, 'ok');
    const calls: Array<[unknown, number, number]> = [];
    await retry(operation, { ...fast, retries: 3, random: () => 1, onRetry: (error, attempt, delayMs) => void calls.push([error, attempt, delayMs]) });
    expect(calls).toStrictEqual([
      [errors[0], 1, 1],
      [errors[1], 2, 2],
    ]);
  });

  it('uses shouldRetry when given', async () => {
    const error = new TypeError('retry me anyway');
    const { operation, attempts } = failing([error], 'ok');
    await expect(retry(operation, { ...fast, shouldRetry: (candidate) => candidate === error })).resolves.toBe('ok');
    expect(attempts).toStrictEqual([0, 1]);
  });

  it('stops waiting when the signal aborts', async () => {
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const { operation, attempts } = failing([new StoreUnavailableError('kafka', 'down')], 'never');
    const result = retry(operation, {
      initialDelayMs: 60_000,
      maxDelayMs: 60_000,
      signal: controller.signal,
      onRetry: () => controller.abort(reason),
    });
    await expect(result).rejects.toBe(reason);
    expect(attempts).toStrictEqual([0]);
  });
});

describe('sleep', () => {
  it('resolves after the delay', async () => {
    const started = Date.now();
    await sleep(5);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4);
  });

  it('rejects with the reason when the signal aborts during the wait', async () => {
    const controller = new AbortController();
    const reason = new Error('aborted during');
    const waiting = sleep(60_000, controller.signal);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });

  it('rejects at once with the reason of an already aborted signal', async () => {
    const reason = new Error('aborted before');
    await expect(sleep(60_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});

describe('backoffDelay', () => {
  it('draws between half the delay and the delay (random 0 and 1 are the bounds)', () => {
    expect(backoffDelay(1, { initialDelayMs: 100, random: () => 0 })).toBe(50);
    expect(backoffDelay(1, { initialDelayMs: 100, random: () => 1 })).toBe(100);
    expect(backoffDelay(1, { initialDelayMs: 100, random: () => 0.5 })).toBe(75);
  });

  it('grows by the factor per attempt', () => {
    const upper = (attempt: number): number => backoffDelay(attempt, { initialDelayMs: 100, factor: 3, random: () => 1 });
    expect([1, 2, 3, 4].map(upper)).toStrictEqual([100, 300, 900, 2700]);
  });

  it('doubles by default from 100 ms', () => {
    expect([1, 2, 3].map((attempt) => backoffDelay(attempt, { random: () => 1 }))).toStrictEqual([100, 200, 400]);
  });

  it('never exceeds maxDelayMs, even for huge attempt numbers', () => {
    for (const attempt of [8, 20, 100, 2000]) {
      expect(backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 10_000, random: () => 1 })).toBe(10_000);
      expect(backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 10_000, random: () => 0 })).toBe(5000);
    }
  });

  it('stays within bounds for any random draw', () => {
    const draws = [0, 0.001, 0.25, 0.5, 0.75, 0.999, 1];
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(5000, 10 * 2 ** (attempt - 1));
      for (const draw of draws) {
        const delay = backoffDelay(attempt, { initialDelayMs: 10, maxDelayMs: 5000, random: () => draw });
        expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });
});

describe('isRetriable', () => {
  it.each([
    ['a StoreUnavailableError', new StoreUnavailableError('redis', 'down'), true],
    ['a VigilError marked retriable', new VigilError('x', { code: 'x', retriable: true }), true],
    ['a ValidationError', new ValidationError('x', []), false],
    ['a ConfigError', new ConfigError(['X: bad']), false],
    ['a StoreRejectedError', new StoreRejectedError('es', 'no'), false],
    ['a TypeError', new TypeError('x'), false],
    ['a RangeError', new RangeError('x'), false],
    ['a ReferenceError', new ReferenceError('x'), false],
    ['a SyntaxError', new SyntaxError('x'), false],
    ['a plain Error (a socket reset, say)', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    ['a kafkajs connection error', new KafkaJSConnectionError('Connection error'), true],
    ['a kafkajs non-retriable error', new KafkaJSNonRetriableError('nope'), false],
    // kafkajs's retrier gives up on a topic without a leader: what it wraps decides.
    ['retries exceeded around a retriable kafkajs error', new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('There is no leader for this topic-partition'), { retryCount: 5, retryTime: 1600 }), true],
    ['retries exceeded around a socket error', new KafkaJSNumberOfRetriesExceeded(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), { retryCount: 5, retryTime: 1600 }), true],
    ['retries exceeded around a non-retriable error', new KafkaJSNumberOfRetriesExceeded(new KafkaJSNonRetriableError('SASL refused'), { retryCount: 5, retryTime: 1600 }), false],
    ['an object with retriable: false', { retriable: false }, false],
    ['an object with retriable: "yes"', { retriable: 'yes' }, false],
    ['a thrown string', 'boom', true],
  ])('%s: %p', (_name, error, expected) => {
    expect(isRetriable(error)).toBe(expected);
  });

  it('keeps the cause of a StoreUnavailableError', () => {
    const cause = new Error('ECONNREFUSED');
    const error = new StoreUnavailableError('elasticsearch', 'unreachable', cause);
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('elasticsearch: unreachable');
    expect(error.name).toBe('StoreUnavailableError');
    expect(error.store).toBe('elasticsearch');
  });
});

describe('errorMessage', () => {
  it('reads the message of an Error and stringifies anything else', () => {
    expect(errorMessage(new Error('broken'))).toBe('broken');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(42)).toBe('42');
  });
});
