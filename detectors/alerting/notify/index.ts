/**
 * Notification delivery: one pure formatter per destination type (webhook, Slack, PagerDuty),
 * the error of one attempt, and the notifier that delivers over HTTP (a lane per destination,
 * retries honouring Retry-After, dead letters).
 */
export * from './webhook';
export * from './slack';
export * from './pagerduty';
export * from './notification-error';
export * from './dead-letter';
export * from './notifier';
export * from './grouping';
export * from './group-store';
export * from './delivered-log';
export * from './outbox.consumer';
