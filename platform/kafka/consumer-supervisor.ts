/**
 * Supervision of kafkajs consumers, so that no consumer can stop while the process looks healthy.
 *
 * kafkajs stops a consumer for good on a crash it deems non-retriable (`KafkaJSNotImplemented`
 * for a codec it lacks, a handler error once its retries run out, a group it cannot rejoin) and
 * restarts it on others with a timer of its own, a timer that a disconnect racing it cannot
 * always cancel. Here kafkajs never restarts anything (`restartOnFailure` says no): every crash
 * comes to the supervisor, which restarts the consumer with backoff a bounded number of times
 * within a window, and past that declares it failed. A failure is a signal
 * ({@link ConsumerSupervisor.failed}) that the composition root turns into an exit, so a process
 * supervisor (systemd, Kubernetes) starts a fresh one.
 */
import type { Consumer, ConsumerConfig, ConsumerRunConfig, Kafka } from 'kafkajs';
import { VigilError, errorMessage } from '../errors';
import type { Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import { backoffDelay } from '../retry';

/** Where a supervised consumer is in its life. */
export type ConsumerState = 'created' | 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

/** How many restarts a consumer gets, and how they are spaced. */
export interface SupervisionPolicy {
  /** Restarts allowed within {@link windowMs}; one more crash in the window fails the consumer. */
  maxRestarts: number;
  /** The sliding window over which crashes are counted, in ms. */
  windowMs: number;
  /** Backoff before the n-th restart of the window (exponential, with jitter). */
  backoff: { initialDelayMs: number; maxDelayMs: number };
}

/** A consumer that crashed more often than its policy allows. Never retriable: restart the process. */
export class ConsumerFailedError extends VigilError {
  readonly component: string;
  readonly groupId: string;

  constructor(component: string, groupId: string, crashes: number, cause: unknown) {
    super(`the ${component} consumer (group ${groupId}) was given up after ${crashes} crash${crashes === 1 ? '' : 'es'} within its restart window: ${errorMessage(cause)}`, {
      code: 'consumer_failed',
      retriable: false,
      cause,
    });
    this.component = component;
    this.groupId = groupId;
  }
}

/** One supervised consumer, as health checks and metrics see it. */
export interface ConsumerStatus {
  component: string;
  groupId: string;
  state: ConsumerState;
  /** Restarts made by the supervisor since the consumer was created. */
  restarts: number;
  /** The last crash's message, if any. */
  lastError?: string;
}

/** Options of {@link createConsumerSupervisor}. */
export interface ConsumerSupervisorOptions {
  policy: SupervisionPolicy;
  logger: Logger;
  /** Receives `consumer.state` and `consumer.lag`. */
  instrumentation?: Instrumentation;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** Watches every consumer made through {@link ConsumerSupervisor.kafkaFor}. */
export interface ConsumerSupervisor {
  /**
   * The same Kafka client, except that the consumers it makes are supervised under `component`'s
   * name. The part that uses it is unchanged: it connects, subscribes, runs and disconnects as usual.
   */
  kafkaFor(component: string, kafka: Kafka): Kafka;
  /** Every consumer made so far, with its state. */
  statuses(): ConsumerStatus[];
  /** Resolves, once, with the first consumer that failed for good; never rejects. */
  readonly failed: Promise<ConsumerFailedError>;
  /** Cancels pending restarts; crashes after this are the shutdown's, not failures. */
  stop(): void;
}

/** The groups of this process's supervised consumers (see {@link isSupervisedGroup}). */
const supervisedGroups = new Set<string>();

/**
 * Whether a consumer of this group was made by a supervisor in this process: its crashes are
 * reported by the supervisor (a restart at warn, a give-up as a failure), so kafkajs's own
 * `Crash:` line for it need not be an error (platform/kafka/clients.ts).
 */
export function isSupervisedGroup(groupId: string): boolean {
  return supervisedGroups.has(groupId);
}

/** Creates a supervisor; see the module comment for what it promises. */
export function createConsumerSupervisor(options: ConsumerSupervisorOptions): ConsumerSupervisor {
  const { policy, instrumentation } = options;
  const now = options.now ?? Date.now;
  const statuses: ConsumerStatus[] = [];
  /** Cancels each consumer's pending restart. */
  const cancels = new Set<() => void>();
  let stopped = false;
  let reportFailure: (error: ConsumerFailedError) => void = () => undefined;
  const failed = new Promise<ConsumerFailedError>((resolve) => {
    reportFailure = resolve;
  });

  function supervise(component: string, kafka: Kafka, config: ConsumerConfig): Consumer {
    const log = options.logger.child({ component, groupId: config.groupId });
    supervisedGroups.add(config.groupId);
    // kafkajs's default consumer retries (5) are kept; only the restart decision moves here.
    const consumer = kafka.consumer({ ...config, retry: { retries: 5, ...config.retry, restartOnFailure: () => Promise.resolve(false) } });
    const status: ConsumerStatus = { component, groupId: config.groupId, state: 'created', restarts: 0 };
    statuses.push(status);
    const crashes: number[] = [];
    let runConfig: ConsumerRunConfig | undefined;
    let disconnecting = false;
    let restarting: Promise<void> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const cancel = (): void => clearTimeout(timer);
    cancels.add(cancel);

    function setState(state: ConsumerState, error?: unknown): void {
      if (status.state === state) return;
      status.state = state;
      if (error !== undefined) status.lastError = errorMessage(error);
      instrumentation?.emit('consumer.state', { component, groupId: config.groupId, state, ...(error === undefined ? {} : { error }) });
    }

    function onCrash(error: unknown): void {
      if (disconnecting || stopped) return;
      const at = now();
      crashes.push(at);
      while (crashes.length > 0 && (crashes[0] ?? at) <= at - policy.windowMs) crashes.shift();
      if (crashes.length > policy.maxRestarts) {
        setState('failed', error);
        // Not logged here: whoever holds `failed` says it once, with what it does about it.
        reportFailure(new ConsumerFailedError(component, config.groupId, crashes.length, error));
        return;
      }
      const delayMs = backoffDelay(crashes.length, policy.backoff);
      setState('restarting', error);
      log.warn({ err: error, attempt: crashes.length, of: policy.maxRestarts, delayMs }, `consumer crashed; restarting it: ${errorMessage(error)}`);
      timer = setTimeout(() => {
        timer = undefined;
        restarting = restart().finally(() => {
          restarting = undefined;
        });
      }, delayMs);
    }

    async function restart(): Promise<void> {
      if (disconnecting || stopped || !runConfig) return;
      status.restarts++;
      setState('starting');
      try {
        await consumer.connect();
        // A crash while joining comes back as a CRASH event (kafkajs catches it in run).
        await consumer.run(runConfig);
      } catch (error) {
        onCrash(error);
      }
    }

    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (disconnecting) return;
      setState('running');
      instrumentation?.emit('consumer.assigned', { component, groupId: config.groupId, assignment: payload.memberAssignment });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => onCrash(payload.error));
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      instrumentation?.emit('consumer.lag', { component, topic: payload.topic, partition: payload.partition, lag: Number(payload.offsetLag) });
    });

    // Every method delegates, except the two whose meaning supervision extends.
    return {
      connect: () => consumer.connect(),
      subscribe: (subscription) => consumer.subscribe(subscription),
      stop: () => consumer.stop(),
      commitOffsets: (offsets) => consumer.commitOffsets(offsets),
      seek: (target) => consumer.seek(target),
      describeGroup: () => consumer.describeGroup(),
      pause: (topics) => consumer.pause(topics),
      paused: () => consumer.paused(),
      resume: (topics) => consumer.resume(topics),
      on: consumer.on.bind(consumer),
      logger: () => consumer.logger(),
      events: consumer.events,
      async run(config?: ConsumerRunConfig) {
        runConfig = config;
        setState('starting');
        await consumer.run(config);
      },
      async disconnect() {
        disconnecting = true;
        cancel();
        cancels.delete(cancel);
        // kafkajs cannot stop a run that is still joining: let a restart in flight settle first,
        // or its runner would go on fetching after the disconnect.
        await restarting;
        await consumer.disconnect();
        setState('stopped');
      },
    };
  }

  return {
    kafkaFor(component, kafka) {
      const supervised: Kafka = {
        producer: (config) => kafka.producer(config),
        admin: (config) => kafka.admin(config),
        logger: () => kafka.logger(),
        consumer: (config) => supervise(component, kafka, config),
      };
      return supervised;
    },
    statuses: () => statuses.map((status) => ({ ...status })),
    failed,
    stop() {
      stopped = true;
      for (const cancelRestart of cancels) cancelRestart();
    },
  };
}
