import { VigilError } from '../../../platform';

/** What went wrong with one attempt: no answer in time, no connection, or an answer other than 2xx. */
export type NotificationErrorCode = 'notification_timeout' | 'notification_network' | 'notification_rejected';

/** One failed attempt to deliver a notification; `retriable` says whether another attempt may help. */
export class NotificationError extends VigilError {
  /** The HTTP status, when the destination answered. */
  readonly status?: number;
  /** What the destination asked for in `Retry-After`, in ms. */
  readonly retryAfterMs?: number;

  constructor(message: string, options: { code: NotificationErrorCode; retriable: boolean; status?: number; retryAfterMs?: number; cause?: unknown }) {
    super(message, { code: options.code, retriable: options.retriable, cause: options.cause });
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}
