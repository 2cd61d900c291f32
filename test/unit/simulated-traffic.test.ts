import type { Emitter } from '../../ingest/sdk';
import { emitSimulatedTraffic } from '../../scripts/simulated-traffic';

/** An emitter that keeps what it is given, in order. */
function recorder(): { emitter: Emitter; inputs: { family: string; time: string; requestId: string }[] } {
  const inputs: { family: string; time: string; requestId: string }[] = [];
  const keep =
    (family: string) =>
    (input: { time?: string | Date; correlation?: { requestId?: string } }): { id: string; accepted: boolean } => {
      inputs.push({ family, time: String(input.time), requestId: input.correlation?.requestId ?? '' });
      return { id: `evt-${inputs.length}`, accepted: true };
    };
  return { emitter: { policy: keep('policy'), invocation: keep('invocation'), device: keep('device') } as unknown as Emitter, inputs };
}

const NOW = new Date('2026-03-01T12:00:00Z');

describe('emitSimulatedTraffic', () => {
  it('spreads the requests in order over periodMs ending at now, each at most a second early', () => {
    const { emitter, inputs } = recorder();
    const hour = 3_600_000;
    const summary = emitSimulatedTraffic([emitter], 20_000, { seed: 12, now: NOW, periodMs: hour });
    expect(summary.total).toBe(20_000);
    const times = inputs.map((input) => Date.parse(input.time));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(NOW.getTime() - hour - 1000);
    expect(Math.max(...times)).toBeLessThanOrEqual(NOW.getTime());
    // Each quarter of the stream sits in its quarter of the hour (give or take the second).
    for (let quarter = 0; quarter < 4; quarter++) {
      const slice = times.slice(quarter * 5000, (quarter + 1) * 5000);
      expect(Math.min(...slice)).toBeGreaterThanOrEqual(NOW.getTime() - hour + quarter * (hour / 4) - 1000);
      expect(Math.max(...slice)).toBeLessThanOrEqual(NOW.getTime() - hour + (quarter + 1) * (hour / 4));
    }
    // Never more than the second of jitter out of order.
    let latest = -Infinity;
    for (const time of times) {
      expect(time).toBeGreaterThan(latest - 1000 - 60);
      latest = Math.max(latest, time);
    }
  });

  it('draws the same requests with and without periodMs: only the times differ', () => {
    const plain = recorder();
    const spread = recorder();
    emitSimulatedTraffic([plain.emitter], 5000, { seed: 7, now: NOW });
    emitSimulatedTraffic([spread.emitter], 5000, { seed: 7, now: NOW, periodMs: 3_600_000 });
    expect(spread.inputs.map(({ family, requestId }) => `${family} ${requestId}`)).toEqual(plain.inputs.map(({ family, requestId }) => `${family} ${requestId}`));
    // Without it, every event falls in the minute before now, as the demo and tests expect.
    const times = plain.inputs.map((input) => Date.parse(input.time));
    expect(Math.min(...times)).toBeGreaterThan(NOW.getTime() - 60_000);
  });
});
