/**
 * The latency bench's alerter in a process of its own (`BENCH_ALERTING_PROCESS=child`), as
 * `vigil run --roles alerting` runs it beside `vigil run --roles ingest`: the bench forks this
 * file, which builds Vigil with the alerting role alone from the bench's configuration and sends
 * back, over the IPC channel, the key of each alert opened and when. Times cross as milliseconds
 * since the epoch (`performance.timeOrigin + performance.now()`), the processes sharing the
 * machine's clock.
 */
import { performance } from 'node:perf_hooks';
import { createVigil, type Vigil } from '../app';
import type { NotifierStats } from '../detectors';
import { createLogger, loadConfig } from '../platform';

/** What the bench tells the child. */
export type ToAlerting = { type: 'start'; env: Record<string, string | undefined> } | { type: 'drain' } | { type: 'stop' };

/** What the child tells the bench; times in milliseconds since the epoch. */
export type FromAlerting =
  | { type: 'ready' }
  | { type: 'opened'; key: Record<string, string>; at: number }
  | { type: 'drained'; stats: NotifierStats }
  /** `cpuSeconds`: the child's CPU (user and system) from its start to its stop. */
  | { type: 'stopped'; stats: NotifierStats; cpuSeconds: number }
  | { type: 'failed'; message: string };

const send = (message: FromAlerting): void => void process.send?.(message);
let vigil: Vigil | undefined;

function notifierStats(): NotifierStats {
  const notifier = vigil?.notifier;
  if (!notifier) throw new Error('the alerting child has no notifier: VIGIL_ALERT_DESTINATIONS names none');
  return notifier.stats();
}

async function handle(message: ToAlerting): Promise<void> {
  if (message.type === 'start') {
    const config = loadConfig(message.env);
    vigil = createVigil(config, {
      roles: ['alerting'],
      logger: createLogger({ level: process.env.LOG_LEVEL ?? 'error' }),
      onAlertChange: (change) => {
        if (change.kind === 'opened') send({ type: 'opened', key: change.alert.key, at: performance.timeOrigin + performance.now() });
      },
    });
    await vigil.start();
    send({ type: 'ready' });
  } else if (message.type === 'drain') {
    await vigil?.notifier?.drain();
    send({ type: 'drained', stats: notifierStats() });
  } else {
    const stats = notifierStats();
    await vigil?.stop();
    // The channel closes once the answer is out; the process then ends by itself.
    const { user, system } = process.cpuUsage();
    process.send?.({ type: 'stopped', stats, cpuSeconds: (user + system) / 1e6 } satisfies FromAlerting, () => process.disconnect());
  }
}

process.on('message', (message: ToAlerting) => {
  handle(message).catch((error: unknown) => {
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    process.exitCode = 1;
  });
});
