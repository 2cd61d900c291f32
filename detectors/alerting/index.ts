/**
 * Alerting: the alerter (detections grouped into alerts, state in Redis, alert documents in
 * Elasticsearch), the destinations it may notify, webhook signatures, and notify/ (delivery).
 */
export * from './alerter';
export * from './destinations';
export * from './signature';
export * from './notify';
