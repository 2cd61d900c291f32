import { errorMessage, urlSecrets } from '../../../platform';
import type { Destination } from '../destinations';
import { NotificationError } from './notification-error';
import type { NotificationRequest } from './request';
import { clip } from './text';

const SNIPPET_MAX = 300;
/** Read beyond what is kept, so a secret crossing the cut is redacted whole before the clip. */
const SNIPPET_READ = 4096;

/** Reads at most a few kilobytes of a response for the error message (whitespace folded, not clipped), and releases the connection. */
async function readSnippet(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < SNIPPET_READ) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut off or timed out: the status says enough.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, SNIPPET_READ).toString('utf8').replace(/\s+/g, ' ').trim();
}

/** A URL's origin only (`https://hooks.example.com`), never its user, path or query; undefined when it is none. */
function originOf(location: string | null, base: string): string | undefined {
  if (location === null) return undefined;
  try {
    return new URL(location, base).origin;
  } catch {
    return undefined;
  }
}

/** Text with every URL in it cut to its origin. */
export function withoutUrlSecrets(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]*/gi, (url) => {
    try {
      const origin = new URL(url).origin;
      return origin === 'null' ? '<url>' : origin;
    } catch {
      return '<url>';
    }
  });
}

/** Text with the destination's URL (any part that may be a token), secret and routing key replaced by `<redacted>`. */
export function withoutDestinationSecrets(text: string, destination: Destination): string {
  const secrets = [...urlSecrets(destination.url), ...('secret' in destination && destination.secret !== undefined ? [destination.secret] : []), ...('routingKey' in destination ? [destination.routingKey] : [])];
  // Longest first, so a path is cut whole before its segments.
  let out = withoutUrlSecrets(text);
  for (const secret of secrets.sort((a, b) => b.length - a.length)) out = out.split(secret).join('<redacted>');
  return out;
}

/** `Retry-After` in ms (seconds or an HTTP date), or undefined. */
function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * One POST of a request to a destination. Resolves on 2xx; otherwise throws a
 * {@link NotificationError}: retriable for a network error, a timeout (`timeoutMs` of the
 * destination), 429 or 5xx, final for any other answer (3xx included: redirects are not followed,
 * so a destination can't bounce a notification to another host).
 */
export async function postOnce(fetchImpl: typeof fetch, destination: Destination, request: NotificationRequest, nowMs: () => number): Promise<void> {
  let response: Response;
  try {
    response = await fetchImpl(destination.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(destination.timeoutMs),
    });
  } catch (error) {
    if (error instanceof Error && error.name === 'TimeoutError') {
      throw new NotificationError(`no answer within ${destination.timeoutMs} ms`, { code: 'notification_timeout', retriable: true, cause: error });
    }
    // fetch reports a refused or reset connection as TypeError('fetch failed') with the reason in `cause`.
    const reason = error instanceof Error && error.cause !== undefined ? errorMessage(error.cause) : errorMessage(error);
    // The reason may quote the URL (undici does), whose path or query can hold a token: only its
    // origin is kept, in the log and in the dead letter.
    // Not the error itself as the cause: a logger would print its message, URL and all.
    throw new NotificationError(`request failed: ${withoutUrlSecrets(reason)}`, { code: 'notification_network', retriable: true });
  }
  if (response.ok) {
    await response.body?.cancel().catch(() => undefined);
    return;
  }
  const status = response.status;
  if (status >= 300 && status < 400) {
    await response.body?.cancel().catch(() => undefined);
    const to = originOf(response.headers.get('location'), destination.url);
    throw new NotificationError(`HTTP ${status}: a redirect${to === undefined ? '' : ` to ${to}`}, not followed: set the destination's url to where it points`, {
      code: 'notification_rejected',
      retriable: false,
      status,
    });
  }
  // A receiver may quote the request back ("Cannot POST /services/T0/B0/token"): its answer goes
  // into logs and dead letters, so the URL's secret parts and the destination's keys are cut out.
  const snippet = clip(withoutDestinationSecrets(await readSnippet(response), destination), SNIPPET_MAX);
  const wait = retryAfterMs(response.headers.get('retry-after'), nowMs());
  throw new NotificationError(`HTTP ${status}${snippet === '' ? '' : `: ${snippet}`}`, {
    code: 'notification_rejected',
    // 408: the receiver gave up waiting for the request, as a timeout would have.
    retriable: status === 408 || status === 429 || status >= 500,
    status,
    ...(wait === undefined ? {} : { retryAfterMs: wait }),
  });
}
