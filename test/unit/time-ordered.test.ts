import type { Emitter } from '../../ingest/sdk';
import { injectAttacks } from '../../scripts/attack-traffic';
import { LIVE_SPAN_MS, emitLiveTraffic } from '../../scripts/demo-traffic';
import { timeOrdered } from '../../scripts/time-ordered';

/** What reached the real emitters, in order: emits by name, and flushes as 'flush'. */
function recorders(names: readonly string[]): { emitters: Emitter[]; log: string[]; times: number[] } {
  const log: string[] = [];
  const times: number[] = [];
  const emitters = names.map((name) => {
    const keep =
      (family: string) =>
      (input: { id?: string; time?: string | Date }): { id: string; accepted: boolean } => {
        log.push(`${name}:${family}:${input.id ?? '?'}`);
        times.push(new Date(input.time ?? 0).getTime());
        return { id: input.id ?? '?', accepted: true };
      };
    return { policy: keep('policy'), invocation: keep('invocation'), device: keep('device'), flush: () => (log.push(`flush:${name}`), Promise.resolve()) } as unknown as Emitter;
  });
  return { emitters, log, times };
}

const T0 = Date.parse('2026-03-01T12:00:00Z');
const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
const device = { deviceId: 'd', type: 'mobile', action: 'login' } as const;

describe('timeOrdered', () => {
  it('holds emits, then sends them oldest first through the emitter each was made for, one slice at a time', async () => {
    const real = recorders(['a', 'b']);
    const ordered = timeOrdered(real.emitters, { sliceMs: 10_000 });
    const [a, b] = ordered.emitters as [Emitter, Emitter];
    a.device({ id: 'a-25', time: at(25), actor: { userId: 'u' }, client: {}, device });
    a.device({ id: 'a-3', time: at(3), actor: { userId: 'u' }, client: {}, device });
    b.device({ id: 'b-12', time: at(12), actor: { userId: 'u' }, client: {}, device });
    // Same time as a-3, made later: sent after it.
    const result = b.device({ time: at(3), actor: { userId: 'u' }, client: {}, device });
    expect(real.log).toEqual([]);
    expect(ordered.held()).toBe(4);
    let slices = 0;
    expect(await ordered.send(() => (slices++, Promise.resolve()))).toBe(4);
    expect(real.log).toEqual(['a:device:a-3', `b:device:${result.id}`, 'flush:a', 'flush:b', 'b:device:b-12', 'flush:a', 'flush:b', 'a:device:a-25', 'flush:a', 'flush:b']);
    expect(slices).toBe(3);
    expect(ordered.held()).toBe(0);
  });

  it("writes the demo's live traffic in event-time order: the attacks among the services' requests, all within the live span", async () => {
    const real = recorders(['gw', 'svc']);
    const now = new Date(T0);
    const { attacks } = await emitLiveTraffic(real.emitters, { now, events: 300, seed: 3, attacks: { runId: 'unit' } });
    const sent = real.times;
    expect(sent.length).toBe(300 + attacks.reduce((sum, attack) => sum + attack.events, 0));
    expect(sent.every((time, index) => index === 0 || time >= (sent[index - 1] as number))).toBe(true);
    expect(Math.min(...sent)).toBeGreaterThanOrEqual(T0 - LIVE_SPAN_MS);
    // The attacks alone, as injectAttacks makes them, are not in time order (grouped by attack).
    const alone = recorders(['gw']);
    injectAttacks(alone.emitters[0] as Emitter, { now, runId: 'unit' });
    expect(alone.times.every((time, index) => index === 0 || time >= (alone.times[index - 1] as number))).toBe(false);
  });
});
