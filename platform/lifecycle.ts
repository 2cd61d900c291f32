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
 * when called again or during a start.
 */
export function createLifecycle(name: string, steps: LifecycleSteps): Lifecycle {
  let state: LifecycleState = 'new';
  const lifecycle: Lifecycle = {
    start: async () => {
      if (state !== 'new') throw new Error(`${name} cannot start: it is ${state}`);
      state = 'starting';
      try {
        await steps.start();
        // A stop during the start wins: the runnable stays stopped.
        if (state === 'starting') state = 'running';
      } catch (error) {
        steps.onStartFailure?.(error);
        await lifecycle.stop();
        throw error;
      }
    },
    stop: async () => {
      if (state === 'stopped') return;
      state = 'stopped';
      await steps.stop();
    },
    state: () => state,
  };
  return lifecycle;
}
