import type { EmitInput } from '../ingest/sdk';
import type { Family } from '../schemas';

/** One SDK call's input, with the family it goes to. */
export type Emitted = { [F in Family]: { family: F; input: EmitInput<F> } }[Family];

/**
 * A gateway's mix of the three families, each event a little different, built before any clock
 * runs. `varied` makes the numbers and request ids differ per event and uses a browser's user
 * agent, as real traffic does (what compression sees); without it the events are as small and
 * regular as an emit-cost measurement wants.
 */
export function gatewayEvents(count: number, options: { varied: boolean }): Emitted[] {
  const made: Emitted[] = [];
  const userAgent = options.varied ? 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15' : 'okhttp/4.12';
  for (let n = 0; n < count; n++) {
    const actor = { userId: `user-${n % 997}`, consumerId: `app-${n % 31}` };
    const client = { ip: `81.2.${(n >> 8) % 256}.${n % 256}`, userAgent };
    const resource = { api: 'payments-v2', method: 'POST' as const, path: `/payments/${n}` };
    if (n % 3 === 0) {
      made.push({ family: 'policy', input: { actor, client, policy: { kind: 'authn', name: 'verify-api-key', outcome: n % 7 === 0 ? 'fail' : 'pass', group: 'payments', resource } } });
    } else if (n % 3 === 1) {
      const invocation = options.varied
        ? { resource, route: '/payments/:id', status: 200, latencyMs: 12.5 + (n % 40), bytesIn: 310 + (n % 97), bytesOut: 1200 + (n % 503) }
        : { resource, route: '/payments/:id', status: 200, latencyMs: 12.5, bytesIn: 310, bytesOut: 1200 };
      const requestId = options.varied ? `req-${n}-${(n * 2654435761) % 4294967296}` : `req-${n}`;
      made.push({ family: 'invocation', input: { actor, client, correlation: { requestId }, invocation } });
    } else {
      made.push({ family: 'device', input: { actor, client, device: { deviceId: `device-${n % 211}`, type: 'mobile', action: 'login', ip: client.ip } } });
    }
  }
  return made;
}
