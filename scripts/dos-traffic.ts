import type { Emitter } from '../ingest/sdk';

/** The endpoints the demo's DoS scenario uses; per run, so a re-run starts from a fresh baseline. */
export function dosEndpoints(runId: string): { burst: { api: string; route: string }; ramp: { api: string; route: string } } {
  return {
    burst: { api: `shop-${runId}`, route: '/v1/checkout' },
    ramp: { api: `shop-${runId}`, route: '/v1/catalog' },
  };
}

/**
 * History, in event time, for the DoS scenario's two endpoints: 12 minutes of steady traffic on
 * the checkout endpoint (its baseline), and 30 minutes of a legitimate ramp on the catalog
 * endpoint that doubles, 120 to 240 requests a minute, from many signed-in users. Emitted in
 * time order before the current traffic, so the detectors learn the baselines as they happened.
 */
export function emitDosHistory(emitter: Emitter, runId: string, now: number): number {
  const { burst, ramp } = dosEndpoints(runId);
  const start = now - 12 * 60_000;
  const rampStart = now - 30 * 60_000;
  const events: { time: number; emit: () => void }[] = [];
  for (let n = 0; n < 12 * 120; n++) {
    const time = start + n * 500;
    events.push({
      time,
      emit: () =>
        emitter.invocation({
          time: new Date(time).toISOString(),
          actor: { userId: `shopper-${n % 300}`, consumerId: 'web-shop' },
          client: { ip: `81.2.${69 + (n % 5)}.${1 + (n % 200)}` },
          invocation: { resource: { api: burst.api, method: 'POST', path: burst.route }, route: burst.route, status: 200, latencyMs: 35 + (n % 20), group: 'shop' },
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
  events.sort((a, b) => a.time - b.time);
  for (const event of events) event.emit();
  return events.length;
}

/**
 * The DoS burst, now: 1,200 checkout requests in under a minute from five IPs (ten times the
 * baseline), half of them failing with 503 and slow: a flood, an error surge and a latency surge
 * on one endpoint, which the alerter must turn into one incident.
 */
export function emitDosBurst(emitter: Emitter, runId: string, now: number): number {
  const { burst } = dosEndpoints(runId);
  const bucketStart = Math.floor(now / 60_000) * 60_000;
  // Within the current minute, so the whole burst lands in one bucket.
  const span = Math.max(5_000, Math.min(40_000, bucketStart + 59_000 - now));
  const count = 1200;
  for (let n = 0; n < count; n++) {
    const failing = n % 2 === 0;
    emitter.invocation({
      time: new Date(now + Math.floor((n * span) / count)).toISOString(),
      actor: { consumerId: `bot-${runId}` },
      client: { ip: `203.0.113.${10 + (n % 5)}` },
      invocation: {
        resource: { api: burst.api, method: 'POST', path: burst.route },
        route: burst.route,
        status: failing ? 503 : 200,
        latencyMs: failing ? 2500 : 400,
        group: 'shop',
      },
    });
  }
  return count;
}
