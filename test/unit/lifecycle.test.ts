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
});
