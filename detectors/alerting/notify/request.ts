import type { AlertChange } from '../../../schemas';
import type { Destination } from '../destinations';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signPayload } from '../signature';
import { formatPagerDuty } from './pagerduty';
import { formatSlack } from './slack';
import { formatWebhook } from './webhook';

/** One HTTP request body and its headers, ready to POST. */
export interface NotificationRequest {
  body: string;
  headers: Record<string, string>;
}

/** Renders the request of one attempt at `nowMs`. */
export type RenderRequest = (nowMs: number) => NotificationRequest;

const JSON_HEADERS = { 'content-type': 'application/json', 'user-agent': 'vigil-notifier' };

/**
 * The request renderer of a delivery: the one place that picks the format by destination type.
 * A webhook is rendered per attempt, because it is stamped and signed at send time; Slack and
 * PagerDuty bodies are built once and sent as they are on every attempt. `link` (the alert in
 * Kibana) goes into Slack and PagerDuty messages; the webhook's receiver has the alert id.
 */
export function requestRenderer(destination: Destination, change: AlertChange, deliveryId: string, link?: string): RenderRequest {
  switch (destination.type) {
    case 'webhook': {
      const { secret } = destination;
      const headers = { ...JSON_HEADERS, [DELIVERY_HEADER]: deliveryId, [EVENT_HEADER]: change.kind };
      return (nowMs) => {
        const body = JSON.stringify(formatWebhook(change, { deliveryId, sentAt: new Date(nowMs).toISOString() }));
        return { body, headers: { ...headers, [SIGNATURE_HEADER]: signPayload(secret, body, Math.floor(nowMs / 1000)) } };
      };
    }
    case 'slack': {
      const body = JSON.stringify(formatSlack(change, link));
      return () => ({ body, headers: { ...JSON_HEADERS } });
    }
    case 'pagerduty': {
      const body = JSON.stringify(formatPagerDuty(change, destination.routingKey, link));
      return () => ({ body, headers: { ...JSON_HEADERS } });
    }
  }
}
