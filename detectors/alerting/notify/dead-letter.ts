import type { AlertChange, AlertChangeKind } from '../../../schemas';
import { errorMessage } from '../../../platform';
import type { Destination } from '../destinations';

/** The value of a message on the notification dead-letter topic (keyed by the alert id). */
export interface NotificationDeadLetter {
  /** The destination's name (never its URL, which may hold a token). */
  destination: string;
  kind: AlertChangeKind;
  alertId: string;
  /** The last error, e.g. `HTTP 400: invalid event`. */
  error: string;
  /** Attempts made; 0 when the delivery never started (its queue was full). */
  attempts: number;
  /** The body of the last attempt, parsed; a PagerDuty `routing_key` is replaced by `[redacted]`. */
  payload: unknown;
}

/**
 * The payload as it goes on the dead-letter topic: parsed, the PagerDuty routing key out. This is
 * not log redaction (pino's list covers logs, `routing_key` included): the topic keeps its records
 * for weeks and is read by other tools, so the secret must not be written there at all.
 */
function deadLetterPayload(body: string | undefined): unknown {
  if (body === undefined) return null;
  const payload = JSON.parse(body) as unknown;
  if (typeof payload === 'object' && payload !== null && 'routing_key' in payload) return { ...payload, routing_key: '[redacted]' };
  return payload;
}

/** The dead-letter record of a delivery that failed for good after `attempts` attempts. */
export function toDeadLetter(destination: Pick<Destination, 'name'>, change: AlertChange, error: unknown, attempts: number, body: string | undefined): NotificationDeadLetter {
  return {
    destination: destination.name,
    kind: change.kind,
    alertId: change.alert.id,
    error: errorMessage(error),
    attempts,
    payload: deadLetterPayload(body),
  };
}
