import { createLifecycle } from '../../platform';

describe('createLifecycle', () => {
  it('starts once, then refuses a second start naming the runnable and its state', async () => {
    const calls: string[] = [];
    const lifecycle = createLifecycle('thing', { start: () => { calls.push('start'); return Promise.resolve(); }, stop: () => { calls.push('stop'); return Promise.resolve(); } });
    await lifecycle.start();
    expect(lifecycle.state()).toBe('running');
    await expect(lifecycle.start()).rejects.toThrow('thing cannot start: it is running');
    await lifecycle.stop();
    await lifecycle.stop();
    expect(calls).toEqual(['start', 'stop']);
    await expect(lifecycle.start()).rejects.toThrow('thing cannot start: it is stopped');
  });

  it('stops what had started when the start fails, tells onStartFailure, and rethrows', async () => {
    const calls: string[] = [];
    const lifecycle = createLifecycle('thing', {
      start: () => Promise.reject(new Error('no broker')),
      stop: () => { calls.push('stop'); return Promise.resolve(); },
      onStartFailure: (error) => calls.push(`failed: ${(error as Error).message}`),
    });
    await expect(lifecycle.start()).rejects.toThrow('no broker');
    expect(calls).toEqual(['failed: no broker', 'stop']);
    expect(lifecycle.state()).toBe('stopped');
  });

  it('a stop during the start stops what started at once, waits for the start to settle, then stops what started after it; the start rejects, saying so', async () => {
    const calls: string[] = [];
    let release = (): void => undefined;
    const lifecycle = createLifecycle('thing', {
      start: async () => {
        calls.push('first part started');
        await new Promise<void>((resolve) => (release = resolve));
        calls.push('second part started');
      },
      stop: () => {
        calls.push('stop');
        return Promise.resolve();
      },
      onStartFailure: () => calls.push('start failure'),
    });
    const started = lifecycle.start().then(
      () => 'resolved',
      (error: unknown) => (error as Error).message,
    );
    await Promise.resolve();
    let stopped = false;
    const stopping = lifecycle.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['first part started', 'stop']);
    expect(stopped).toBe(false);
    expect(lifecycle.state()).toBe('stopped');
    release();
    await stopping;
    expect(await started).toBe('thing was stopped while starting');
    expect(calls).toEqual(['first part started', 'stop', 'second part started', 'stop']);
    await lifecycle.stop();
    expect(calls).toHaveLength(4);
  });
});
