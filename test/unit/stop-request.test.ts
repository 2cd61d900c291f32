import { launchedByNpm, stopRequested, type StopWatch } from '../../scripts/stop-request';

/** A watch whose signals and parent are in the test's hands. */
function fakeWatch(env: NodeJS.ProcessEnv): StopWatch & { signal(name: 'SIGINT' | 'SIGTERM'): void; parent: number } {
  const listeners = new Map<string, () => void>();
  const watch = {
    parent: 100,
    env,
    everyMs: 5,
    once: (signal: 'SIGINT' | 'SIGTERM', listener: () => void) => void listeners.set(signal, listener),
    parentPid: () => watch.parent,
    signal: (name: 'SIGINT' | 'SIGTERM') => listeners.get(name)?.(),
  };
  return watch;
}

const settled = <T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> =>
  Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);

describe('stopRequested', () => {
  it('settles on SIGTERM or SIGINT', async () => {
    const watch = fakeWatch({});
    const stop = stopRequested(watch);
    watch.signal('SIGTERM');
    expect(await stop).toBe('SIGTERM');
    const other = fakeWatch({});
    const second = stopRequested(other);
    other.signal('SIGINT');
    expect(await second).toBe('SIGINT');
  });

  it('settles when the npm launcher that started the process has gone', async () => {
    const watch = fakeWatch({ npm_command: 'exec' });
    const stop = stopRequested(watch);
    expect(await settled(stop, 30)).toBe('pending');
    watch.parent = 1; // re-parented: the launcher exited
    expect(await stop).toBe('launcher exited');
  });

  it('ignores a parent that goes away when npm did not start the process (nohup, a shell)', async () => {
    const watch = fakeWatch({});
    const stop = stopRequested(watch);
    watch.parent = 1;
    expect(await settled(stop, 40)).toBe('pending');
    watch.signal('SIGTERM');
    expect(await stop).toBe('SIGTERM');
  });

  it('knows npm by the npm_command it sets', () => {
    expect(launchedByNpm({ npm_command: 'exec' })).toBe(true);
    expect(launchedByNpm({ npm_command: 'start' })).toBe(true);
    expect(launchedByNpm({ npm_command: '' })).toBe(false);
    expect(launchedByNpm({})).toBe(false);
  });
});
