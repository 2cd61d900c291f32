import { randomUUID } from 'node:crypto';
import type { EmitInput, EmitResult, Emitter, EmitterStats, Family } from '../ingest/sdk';

/** One emit held until {@link TimeOrdered.send}: the real emitter, the family and the input, at its event time. */
interface Held {
  target: Emitter;
  family: Family;
  input: EmitInput<Family>;
  time: number;
}

/** Stand-ins for emitters that hold what goes through them, then send it in event-time order. */
export interface TimeOrdered {
  /**
   * One stand-in per emitter given, in the same order. Each takes emits like an emitter (with the
   * same id it will be sent with, assigned now when the input has none) and holds them; `flush`
   * and `close` do nothing (nothing is sent before {@link TimeOrdered.send}).
   */
  emitters: Emitter[];
  /** How many emits are held. */
  held(): number;
  /**
   * Sends everything held through the emitters it stands for, oldest event time first (emits of
   * one time keep the order they were made in, so one request's events stay together), and
   * flushes all of them after each `sliceMs` of event time. Each partition then receives the
   * traffic in time order, as it would from live gateways, whatever stand-in or generator emitted
   * it. `afterSlice`, when given, is awaited after each slice is acknowledged, before the next is
   * sent: a reader that waits there for the pipeline to take the slice in gets the stream paced
   * as live traffic is, never more than a slice ahead on one partition than on another. Resolves
   * once Kafka acknowledged the last slice, with how many emits were sent (an emitter that refuses
   * one counts it in its own `stats().dropped`).
   */
  send(afterSlice?: () => Promise<void>): Promise<number>;
}

/**
 * Time-ordered stand-ins for `targets`. The demo generates its live traffic per scenario (the
 * simulated services, then each injected attack, every one spread over the last minutes) and
 * writes it through these, so Kafka gets one stream in event-time order instead of the scenarios
 * one after the other, each going back minutes in time (docs/event-time.md).
 */
export function timeOrdered(targets: readonly Emitter[], options: { sliceMs?: number } = {}): TimeOrdered {
  const sliceMs = options.sliceMs ?? 10_000;
  let held: Held[] = [];
  const standIn = (target: Emitter): Emitter => {
    const hold =
      <F extends Family>(family: F) =>
      (input: EmitInput<F>): EmitResult => {
        const id = input.id ?? randomUUID();
        // An event without a time happened now: it keeps that time, not the time it is sent at.
        const time = input.time === undefined ? new Date() : input.time;
        held.push({ target, family, input: { ...input, id, time }, time: time instanceof Date ? time.getTime() : Date.parse(time) });
        return { id, accepted: true };
      };
    const stats = (): EmitterStats => ({ accepted: held.filter((item) => item.target === target).length, delivered: 0, dropped: 0, sendFailures: 0, buffered: 0, bufferedBytes: 0 });
    return { policy: hold('policy'), invocation: hold('invocation'), device: hold('device'), flush: () => Promise.resolve(), close: () => Promise.resolve(), stats };
  };
  const emitters = targets.map(standIn);

  return {
    emitters,
    held: () => held.length,
    async send(afterSlice) {
      // Array.prototype.sort is stable: emits of one time keep the order they were made in.
      const ordered = held.sort((a, b) => a.time - b.time);
      held = [];
      const unique = [...new Set(targets)];
      const endSlice = async (): Promise<void> => {
        await Promise.all(unique.map((emitter) => emitter.flush()));
        await afterSlice?.();
      };
      let sliceEnd = Number.NEGATIVE_INFINITY;
      for (const item of ordered) {
        if (item.time >= sliceEnd) {
          if (sliceEnd !== Number.NEGATIVE_INFINITY) await endSlice();
          sliceEnd = Math.floor(item.time / sliceMs) * sliceMs + sliceMs;
        }
        // Each family's input type matches its method: the stand-in took it through the same one.
        (item.target[item.family] as (input: EmitInput<Family>) => EmitResult)(item.input);
      }
      await endSlice();
      return ordered.length;
    },
  };
}
