/**
 * When a long-running command (`vigil run`, `vigil adapt`) must stop: on SIGINT or SIGTERM, or
 * when the npm launcher that started it has gone.
 *
 * `npx vigil run` and `npm start` run Vigil as a child of npm (through `sh -c`). On SIGTERM npm
 * passes the signal on and exits at once, without waiting for its child; a supervisor that
 * signalled only npm's process (or killed it) would leave Vigil running, orphaned and still a
 * member of its consumer groups. So when npm started this process (it sets `npm_command`), the
 * launcher's exit is a stop request too: the parent process id changes when the parent dies.
 * A process started otherwise (`node bin/vigil.js run`, the Docker image, `nohup`) is never
 * stopped because its parent went away.
 */

/** Why a command stops. */
export type StopReason = NodeJS.Signals | 'launcher exited';

/** What {@link stopRequested} watches; injectable for tests. */
export interface StopWatch {
  /** Subscribes to a signal once. @defaultValue process.once */
  once(signal: 'SIGINT' | 'SIGTERM', listener: () => void): void;
  /** The current parent process id. @defaultValue () => process.ppid */
  parentPid(): number;
  /** The environment: `npm_command` says npm launched the process. @defaultValue process.env */
  env: NodeJS.ProcessEnv;
  /** How often the parent is checked. @defaultValue 500 */
  everyMs?: number;
}

const PROCESS_WATCH: StopWatch = {
  once: (signal, listener) => process.once(signal, listener),
  parentPid: () => process.ppid,
  env: process.env,
};

/** Whether npm (npx, npm exec, npm start, npm run) launched this process. */
export function launchedByNpm(env: NodeJS.ProcessEnv): boolean {
  return typeof env.npm_command === 'string' && env.npm_command.length > 0;
}

/** Settles with the first stop request: a signal, or the npm launcher's exit. */
export function stopRequested(watch: StopWatch = PROCESS_WATCH): Promise<StopReason> {
  return new Promise<StopReason>((resolve) => {
    const parent = watch.parentPid();
    // Only a process npm launched watches its parent; `unref` keeps the timer from holding it up.
    const timer = launchedByNpm(watch.env)
      ? setInterval(() => {
          if (watch.parentPid() !== parent) done('launcher exited');
        }, watch.everyMs ?? 500).unref()
      : undefined;
    function done(reason: StopReason): void {
      if (timer) clearInterval(timer);
      resolve(reason);
    }
    watch.once('SIGINT', () => done('SIGINT'));
    watch.once('SIGTERM', () => done('SIGTERM'));
  });
}
