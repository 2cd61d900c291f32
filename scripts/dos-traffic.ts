import type { Emitter } from '../ingest/sdk';

/** The endpoints the demo's DoS scenario uses; per run, so a re-run starts from a fresh baseline. */
export function dosEndpoints(runId: string): { burst: { api: string; route: string }; ramp: { api: string; route: string } } {
  return {
    burst: { api: `shop-${runId}`, route: '/v1/checkout' },
    ramp: { api: `shop-${runId}`, route: '/v1/catalog' },
  };
}

/**
 * The rules the burst is shaped for (a flood, an error surge and a latency surge on one endpoint),
 * which the alerter must fold into one incident.
 */
export const DOS_RULES: readonly string[] = ['request-flood-per-endpoint', 'error-surge-per-endpoint', 'latency-surge-per-endpoint'];

/** Minutes of steady checkout traffic before the burst's minute, and after it. */
const BASELINE_MINUTES = 18;
const AFTER_MINUTES = 8;

/**
 * The DoS scenario, in event time, ending at `now` (the demo ends it where its live traffic
 * begins, 5 minutes before the current time: scripts/demo-traffic.ts): steady traffic on the checkout endpoint for 18
 * minutes (its baseline), then a burst within one clock minute (1,200 requests from five IPs, ten
 * times the baseline, half of them failing with 503 and slow: a flood, an error surge and a
 * latency surge on one endpoint, which the alerter must turn into one incident), then 8 more
 * minutes of steady traffic; and 30 minutes of a legitimate ramp on the catalog endpoint that
 * doubles, 120 to 240 requests a minute, from many signed-in users. Emitted in time order, so
 * the detectors see it as it happened. The burst is in the past: a surge minute meets the
 * baseline of the minutes up to 6 before it, and the flood, error and latency rules judge it
 * complete, once the allowed lateness (5 minutes) has passed it (docs/rules.md#surge), which
 * the steady traffic after it takes the clock past.
 */
export function emitDosScenario(emitter: Emitter, runId: string, now: number): { history: number; burst: number } {
  const { burst, ramp } = dosEndpoints(runId);
  const burstStart = Math.floor(now / 60_000) * 60_000 - AFTER_MINUTES * 60_000;
  const start = burstStart - BASELINE_MINUTES * 60_000;
  const rampStart = now - 30 * 60_000;
  const events: { time: number; emit: () => void }[] = [];
  for (let n = 0, time = start; time < now - 1000; n++, time = start + n * 500) {
    const at = time;
    const index = n;
    events.push({
      time: at,
      emit: () =>
        emitter.invocation({
          time: new Date(at).toISOString(),
          actor: { userId: `shopper-${index % 300}`, consumerId: 'web-shop' },
          client: { ip: `81.2.${69 + (index % 5)}.${1 + (index % 200)}` },
          invocation: { resource: { api: burst.api, method: 'POST', path: burst.route }, route: burst.route, status: 200, latencyMs: 35 + (index % 20), group: 'shop' },
        }),
    });
  }
  // The ramp: the rate grows linearly over 30 minutes, 2 requests a second to 4.
  let time = rampStart;
  let n = 0;
  while (time < now - 1000) {
    const progress = (time - rampStart) / (30 * 60_000);
    const gapMs = 500 / (1 + progress);
    const at = time;
    const index = n;
    events.push({
      time: at,
      emit: () =>
        emitter.invocation({
          time: new Date(at).toISOString(),
          actor: { userId: `browser-${index % 500}`, consumerId: 'web-shop' },
          client: { ip: `46.101.${12 + (index % 3)}.${1 + (index % 250)}` },
          invocation: { resource: { api: ramp.api, method: 'GET', path: ramp.route }, route: ramp.route, status: 200, latencyMs: 20 + (index % 15), group: 'shop' },
        }),
    });
    time += gapMs;
    n++;
  }
  // The burst: within one clock minute, so the whole burst lands in one bucket.
  const count = 1200;
  for (let index = 0; index < count; index++) {
    const failing = index % 2 === 0;
    const at = burstStart + 5_000 + Math.floor((index * 40_000) / count);
    events.push({
      time: at,
      emit: () =>
        emitter.invocation({
          time: new Date(at).toISOString(),
          actor: { consumerId: `bot-${runId}` },
          client: { ip: `203.0.113.${10 + (index % 5)}` },
          invocation: {
            resource: { api: burst.api, method: 'POST', path: burst.route },
            route: burst.route,
            status: failing ? 503 : 200,
            latencyMs: failing ? 2500 : 400,
            group: 'shop',
          },
        }),
    });
  }
  events.sort((a, b) => a.time - b.time);
  for (const event of events) event.emit();
  return { history: events.length - count, burst: count };
}
