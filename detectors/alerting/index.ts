/**
 * Alerting: the alerter consumer (detections grouped into alerts), its grouping policy, the alert
 * store in Redis, the alert document, the destinations it may notify, webhook signatures, and
 * notify/ (delivery).
 */
export * from './alerter';
export * from './grouping-policy';
export * from './alert-store';
export * from './alert-document';
export * from './destinations';
export * from './signature';
export * from './risk';
export * from './silences';
export * from './notify';
