/** Where a {@link Lifecycle} is: it starts once, and stopping is final. */
export type LifecycleState = 'new' | 'starting' | 'running' | 'stopped';

/** What a {@link Lifecycle} runs: the owner's own start and stop work. */
export interface LifecycleSteps {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Told of a failed start before what had started is stopped (to log it, say). */
  onStartFailure?(error: unknown): void;
}

/** The start/stop pair of a runnable that can be started once and stopped any number of times. */
export interface Lifecycle {
  // Properties, not methods: the owner hands them on as its own start and stop, detached.
  start: () => Promise<void>;
  stop: () => Promise<void>;
  state: () => LifecycleState;
}

/**
 * Wraps `steps` in the one start/stop discipline every runnable Vigil assembles follows: a second
 * start (or a start after stop) throws, naming `name` and the state; a failed start stops what
 * had started before rethrowing, so nothing is left half open; stop runs its steps once, even
 * when called again.
 *
 * A stop during the start wins. It stops what has started so far at once (closing the clients a
 * part still starting waits on), and resolves only once the start has settled and what started
 * after it was stopped too (the steps' stop runs a second time then: it must stop only what is
 * running). The start then rejects, saying it was stopped.
 */
export function createLifecycle(name: string, steps: LifecycleSteps): Lifecycle {
  let state: LifecycleState = 'new';
  /** The start under way: settles once it ran, and, if a stop came meanwhile, once that stop's second round ran. */
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const lifecycle: Lifecycle = {
    start: () => {
      if (state !== 'new') return Promise.reject(new Error(`${name} cannot start: it is ${state}`));
      state = 'starting';
      starting = (async () => {
        let failure: { error: unknown } | undefined;
        try {
          await steps.start();
        } catch (error) {
          failure = { error };
        }
        // Read again: stop() may have run while the start awaited.
        if ((state as LifecycleState) === 'stopped') {
          // What started after the stop is stopped now.
          await steps.stop();
          throw new Error(`${name} was stopped while starting`, failure ? { cause: failure.error } : undefined);
        }
        if (failure) {
          steps.onStartFailure?.(failure.error);
          starting = undefined;
          await lifecycle.stop();
          throw failure.error;
        }
        state = 'running';
      })();
      return starting;
    },
    stop: () => {
      if (stopping) return stopping;
      const duringStart = state === 'starting' ? starting : undefined;
      state = 'stopped';
      stopping = (async () => {
        await steps.stop();
        // The start's own error is the starter's to hear.
        if (duringStart) await duringStart.catch(() => undefined);
      })();
      return stopping;
    },
    state: () => state,
  };
  return lifecycle;
}
