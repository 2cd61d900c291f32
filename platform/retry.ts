import { isRetriable } from './errors';

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Attempts after the first one. @defaultValue 5 */
  retries?: number;
  /** Delay before the first retry, in ms. @defaultValue 100 */
  initialDelayMs?: number;
  /** Upper bound of one delay, in ms. @defaultValue 10000 */
  maxDelayMs?: number;
  /** Growth of the delay per attempt. @defaultValue 2 */
  factor?: number;
  /** Whether an error is worth another attempt. @defaultValue {@link isRetriable} */
  shouldRetry?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log or to heartbeat. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void | Promise<void>;
  /** Source of randomness for jitter; injectable so tests are deterministic. @defaultValue Math.random */
  random?: () => number;
  /** Aborts the waits between attempts. */
  signal?: AbortSignal;
}

/**
 * The delay before retry number `attempt` (1-based): exponential, capped, with "equal jitter"
 * (a uniform draw in [delay/2, delay]) so that many consumers failing together don't retry in step,
 * while no delay shrinks below half its step.
 */
export function backoffDelay(
  attempt: number,
  options: Pick<RetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'factor' | 'random'> = {},
): number {
  const initial = options.initialDelayMs ?? 100;
  const max = options.maxDelayMs ?? 10_000;
  const factor = options.factor ?? 2;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, initial * factor ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves after `ms`, or rejects early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `operation` until it succeeds, the error is not retriable, or the retries run out; then
 * rethrows the last error. The one retry helper of the code base.
 */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retries = options.retries ?? 5;
  const shouldRetry = options.shouldRetry ?? isRetriable;
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= retries || !shouldRetry(error)) throw error;
      const delayMs = backoffDelay(attempt + 1, options);
      await options.onRetry?.(error, attempt + 1, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}
