import type { Emitter } from '../ingest/sdk';
import { injectAttacks, type InjectedAttack } from './attack-traffic';
import { emitSimulatedTraffic, type TrafficSummary } from './simulated-traffic';
import { timeOrdered } from './time-ordered';
import { sleep } from '../platform';

/**
 * How far back the demo's live traffic reaches: the simulated services' minute and the attacks,
 * whose earliest event is 4 minutes 30 before now. The DoS scenario's history ends where it
 * begins ({@link dosScenarioEnd}), so the stream Kafka gets goes forward in event time.
 */
export const LIVE_SPAN_MS = 5 * 60_000;

/**
 * The event time the demo writes at once when paced: the alerter's lateness (5 s in the demo),
 * between 500 ms and 10 s. A slice is written once the pipeline took in the one before, so a
 * detection is decided after every detection of an earlier slice and before any of a later one;
 * those of its own slice, in whatever order the ingest's partitions decide them, are less than
 * the lateness apart. So none reaches the alerter behind its watermark (by more than the lateness).
 */
export function liveSliceMs(latenessMs: number): number {
  return Math.min(10_000, Math.max(500, latenessMs));
}

/**
 * Where the demo's DoS scenario ends (its `now`): the start of the live span. Ending it at the
 * current time instead put its judged surge minute (folded at its `judgedAt`, 2 to 3 minutes before
 * its end) after the start of the attacks, whose detections then reached the alerter behind its
 * watermark: 2 to 7 late per demo run.
 */
export function dosScenarioEnd(now: number): number {
  return now - LIVE_SPAN_MS;
}

/** Options of {@link emitLiveTraffic}. */
export interface LiveTrafficOptions {
  /** The end of the live span. @defaultValue the current time */
  now?: Date;
  /** Events of the simulated services (their minute before `now`). */
  events: number;
  /** The seed of the simulated traffic. @defaultValue 42 */
  seed?: number;
  /** Labels on the simulated traffic. */
  labels?: Record<string, string>;
  /** Inject the attacks too, through the first emitter, with these labels (their names are per run). */
  attacks?: { runId: string; labels?: Record<string, string> };
  /** The event time written at once (see {@link liveSliceMs}). @defaultValue 2000 */
  sliceMs?: number;
  /**
   * Paces the stream: awaited after each slice of event time is acknowledged by Kafka, before
   * the next is written (see `send` of {@link timeOrdered}); the demo and its test wait there until the
   * pipeline has taken it in. Unpaced, the whole span is in Kafka at once, a backlog the ingest
   * reads with its partitions up to `VIGIL_EVENT_TIME_SKEW_MS` (60 s) apart, and detections from
   * one that ran ahead reach the alerter more than the demo's lateness (5 s) before older ones.
   */
  afterSlice?: () => Promise<void>;
}

/**
 * The demo's live traffic: the simulated services' requests over the minute before `now`, spread
 * over `emitters`, and the injected attacks over the 4 minutes 30 before it, through the first
 * emitter. Both are generated per scenario, so they are written through time-ordered stand-ins
 * (see {@link timeOrdered}): each partition gets them in event-time order, as it would from live
 * gateways, a slice of event time at a time, paced by `afterSlice`, so the detectors'
 * detections reach the alerter in that order too. Resolves once Kafka acknowledged all of it.
 */
export async function emitLiveTraffic(emitters: readonly Emitter[], options: LiveTrafficOptions): Promise<{ traffic: TrafficSummary; attacks: InjectedAttack[] }> {
  const now = options.now ?? new Date();
  const ordered = timeOrdered(emitters, { sliceMs: options.sliceMs ?? 2000 });
  const traffic = emitSimulatedTraffic(ordered.emitters, options.events, { now, ...(options.seed === undefined ? {} : { seed: options.seed }), ...(options.labels ? { labels: options.labels } : {}) });
  const first = ordered.emitters[0];
  const attacks = options.attacks && first ? injectAttacks(first, { now, runId: options.attacks.runId, ...(options.attacks.labels ? { labels: options.attacks.labels } : {}) }) : [];
  await ordered.send(options.afterSlice);
  return { traffic, attacks };
}

/**
 * An `afterSlice` for {@link emitLiveTraffic}: waits until `taken()` (what the pipeline took in)
 * reaches `written()` (what was written), polling every 10 ms. Past `timeoutMs` in all it stops
 * waiting and the rest goes unpaced (a stalled pipeline still gets the traffic).
 */
export function untilTaken(written: () => number, taken: () => number, timeoutMs = 120_000): () => Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return async () => {
    while (taken() < written() && Date.now() < deadline) await sleep(10);
  };
}
