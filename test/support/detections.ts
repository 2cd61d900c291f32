import type { Detection } from '../../schemas';

/**
 * A valid detection of `authn-failures-per-user` for one user, numbered: what the alerter and
 * notifier tests feed the detections topic.
 */
export function sampleDetection(n: number, name: string): Detection {
  return {
    id: `det-${name}-${String(n).padStart(4, '0')}`,
    ruleId: 'authn-failures-per-user',
    ruleVersion: 1,
    ruleName: 'Repeated authentication failures for one user',
    ruleType: 'threshold',
    severity: 'medium',
    tags: ['T1110'],
    reasonCode: 'threshold_reached',
    reason: `10 failed logins for user u-${name} (${n})`,
    key: { 'actor.userId': `u-${name}` },
    observedValue: 10,
    threshold: 10,
    window: { start: new Date(Date.now() - 60_000).toISOString(), end: new Date().toISOString(), durationMs: 60_000 },
    eventIds: [`evt-${n}`],
    time: new Date().toISOString(),
    detectedAt: new Date().toISOString(),
    degraded: false,
  };
}
