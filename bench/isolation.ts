/**
 * The settings that put one `vigil run` of a benchmark on topics, consumer groups, indices and a
 * Redis prefix of its own, all named after `prefix`.
 */
export function isolatedNames(prefix: string): Record<string, string> {
  return {
    VIGIL_TOPIC_POLICY: `${prefix}.policy`,
    VIGIL_TOPIC_INVOCATION: `${prefix}.invocation`,
    VIGIL_TOPIC_DEVICE: `${prefix}.device`,
    VIGIL_TOPIC_DEADLETTER: `${prefix}.deadletter`,
    VIGIL_TOPIC_DETECTIONS: `${prefix}.detections`,
    VIGIL_TOPIC_NOTIFICATIONS: `${prefix}.notifications`,
    VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `${prefix}.notifications-deadletter`,
    VIGIL_CONSUMER_GROUP: `${prefix}-ingest`,
    VIGIL_ALERTER_GROUP: `${prefix}-alerter`,
    VIGIL_NOTIFIER_GROUP: `${prefix}-notifier`,
    VIGIL_REDIS_PREFIX: prefix,
    VIGIL_INDEX_PREFIX: prefix,
  };
}
