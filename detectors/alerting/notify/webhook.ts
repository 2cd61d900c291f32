import type { Alert, AlertChange, AlertChangeKind } from '../../../schemas';

/** The JSON body of a webhook notification. */
export interface WebhookBody {
  type: `vigil.alert.${AlertChangeKind}`;
  /** Stable across retries of one delivery: receivers deduplicate on it (also in `X-Vigil-Delivery`). */
  deliveryId: string;
  /** When this attempt was sent (ISO 8601). */
  sentAt: string;
  alert: Alert;
}

/** The webhook body for a change. */
export function formatWebhook(change: AlertChange, delivery: { deliveryId: string; sentAt: string }): WebhookBody {
  return { type: `vigil.alert.${change.kind}`, deliveryId: delivery.deliveryId, sentAt: delivery.sentAt, alert: change.alert };
}
