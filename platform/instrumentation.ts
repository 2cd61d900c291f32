/**
 * Namespaced instrumentation events, as kafkajs's consumer emits them: benchmarks, tests and
 * (later) metrics subscribe here instead of patching the objects they measure.
 */

/** The payload of each event, by name. */
export interface InstrumentationEvents {
  /** A partition runner handled one chunk and committed it. */
  'runner.chunk': { component: string; topic: string; partition: number; messages: number; durationMs: number };
  /** A partition runner paused a partition because a store pushed back. */
  'runner.pause': { component: string; topic: string; partition: number; attempt: number; delayMs: number; error: unknown };
  /** A partition runner paused a partition that ran ahead of the others in event time (see event-time-alignment.ts). */
  'runner.hold': { component: string; topic: string; partition: number; offset: string; eventTime: number };
  /**
   * One stage of the ingest pipeline ran over one chunk: when it started (`performance.now()`),
   * how long it took, and the ids of the events it handled (none for `decode`, which runs before
   * there are events, and for `publish` and `dead-letter`).
   */
  'pipeline.stage': { stage: PipelineStage; topic: string; partition: number; items: number; startedAt: number; durationMs: number; eventIds: readonly string[] };
  /** The rule engine evaluated one batch: its stream (topic partition), size, result and round trips. */
  'detectors.batch': { stream: string; events: number; detections: number; stateRoundTrips: number; claimRoundTrips: number; durationMs: number };
  /**
   * One Redis round trip of the state layer: who made it (`rule state`, `claims`, `correlation
   * state`), how many script calls it carried, and whether Redis was reached.
   */
  'state.round_trip': { operation: string; commands: number; durationMs: number; reached: boolean };
  /** A supervised Kafka consumer changed state (`kafka/consumer-supervisor.ts`); a crash carries its error. */
  'consumer.state': { component: string; groupId: string; state: 'created' | 'starting' | 'running' | 'restarting' | 'failed' | 'stopped'; error?: unknown };
  /** After a batch: how many messages of the partition were behind it when it was fetched (kafkajs's `offsetLag`). */
  'consumer.lag': { component: string; topic: string; partition: number; lag: number };
  /** At every join of the group (the first, each rebalance): the partitions the consumer now holds, by topic. */
  'consumer.assigned': { component: string; groupId: string; assignment: Readonly<Record<string, readonly number[]>> };
}

/** The stages of the ingest pipeline, in the order a chunk meets them. */
export type PipelineStage = 'decode' | 'correlate' | 'detect' | 'index' | 'publish' | 'dead-letter';

export type InstrumentationEvent = keyof InstrumentationEvents;
type Listener<E extends InstrumentationEvent> = (payload: InstrumentationEvents[E]) => void;

/**
 * A small typed event bus. Emitting with no listener costs a map lookup, so components emit
 * unconditionally; a listener that throws is its own bug and never breaks the pipeline.
 */
export class Instrumentation {
  private readonly listeners = new Map<InstrumentationEvent, Set<Listener<never>>>();

  /** Subscribes; returns the function that unsubscribes. */
  on<E extends InstrumentationEvent>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Whether anyone listens: lets a hot path skip building a payload nobody reads. */
  has(event: InstrumentationEvent): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends InstrumentationEvent>(event: E, payload: InstrumentationEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as Listener<E>)(payload);
      } catch {
        // A listener's failure is the listener's: instrumentation must never change what it observes.
      }
    }
  }
}
