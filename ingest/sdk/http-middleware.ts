import type { IncomingMessage, ServerResponse } from 'node:http';
import type * as Net from 'node:net';
import { invocationEventSchema } from '../../schemas/invocation';
import type { Emitter, EmitInput } from './emitter';
import type { SdkLogger } from './logger';

type Method = EmitInput<'invocation'>['invocation']['resource']['method'];
const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The parts of an Express request the middleware reads; plain Node requests work too. */
type RequestLike = IncomingMessage & { route?: { path?: unknown }; baseUrl?: string; originalUrl?: string; app?: { get?: unknown } };

/** Options of {@link invocationMiddleware}. */
export interface InvocationMiddlewareOptions {
  /** The API name, or a function of the request. */
  api: string | ((request: RequestLike) => string);
  /** The API consumer (API key owner, OAuth client) of a request, when known. */
  consumerId?: (request: RequestLike) => string | undefined;
  /** The end user of a request, when known. */
  userId?: (request: RequestLike) => string | undefined;
  /** The session of a request, when known. */
  sessionId?: (request: RequestLike) => string | undefined;
  /** The API/policy group of a request. */
  group?: (request: RequestLike) => string | undefined;
  /**
   * How many proxies you run in front of this service. Each appends the address it saw to
   * `X-Forwarded-For`, so the client is that many entries from the right; entries further left
   * are whatever the client wrote and are never used. `true` means one.
   * @defaultValue 0 (the socket's peer address)
   */
  trustProxy?: boolean | number;
  /** Where events that could not be built are reported (a pino logger fits). @defaultValue no logging */
  logger?: SdkLogger;
}

/** The route recorded for a request no route matched: one value, however many paths scanners try. */
export const UNMATCHED_ROUTE = '/{unmatched}';

const LIMITS = { userAgent: 1024, identifier: 256, path: 2048 } as const;

/**
 * The longest latency the contract takes (an hour), read from its schema. A response that lasts
 * longer (server-sent events, a long poll) is recorded with this latency: past it the event was
 * refused and the call went unrecorded.
 */
const MAX_LATENCY_MS = invocationEventSchema.shape.invocation.shape.latencyMs.maxValue ?? Number.POSITIVE_INFINITY;

/** The status recorded for a request whose client closed the connection before the response went (nginx's). */
export const CLIENT_CLOSED_STATUS = 499;

// The control characters the contract refuses (C0, DEL, C1); a user agent may keep a tab.
const CONTROL = new RegExp(String.raw`[\u0000-\u001F\u007F-\u009F]`, 'g');
const CONTROL_BUT_TAB = new RegExp(String.raw`[\u0000-\u0008\u000A-\u001F\u007F-\u009F]`, 'g');

/**
 * A client-controlled value the contract takes: cut to its limit, and each control character
 * replaced by U+FFFD. HTTP lets a header value hold a tab and bytes 0x80-0xFF (Node reads them as
 * Latin-1, so 0x85 is the C1 control U+0085), which the contract refuses: one such byte in a
 * User-Agent or X-Request-Id made the event invalid, and a client could hide its calls with it.
 */
function bounded(value: string | undefined, limit: number, keepTab = false): string | undefined {
  if (value === undefined || value.length === 0) return undefined;
  return value.slice(0, limit).replace(keepTab ? CONTROL_BUT_TAB : CONTROL, '\uFFFD');
}

let net: typeof Net | undefined;

/**
 * node:net's `isIP`, with node:net loaded on the first request rather than at import: a server
 * has it loaded by then anyway, and a service that only emits never pays for it.
 */
function isIP(text: string): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred on purpose, see above
  net ??= require('node:net') as typeof Net;
  return net.isIP(text);
}

function unmapped(address: string | undefined): string | undefined {
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * The client's address: with `trustProxy`, the X-Forwarded-For entry the nearest trusted proxy
 * appended, else the socket's peer (`peer`, read when the request came in: once the client has
 * hung up the socket is destroyed and has no address left).
 */
function clientIp(request: RequestLike, peer: string | undefined, trustProxy: boolean | number): string | undefined {
  const hops = trustProxy === true ? 1 : trustProxy === false ? 0 : Math.max(0, Math.floor(trustProxy));
  if (hops > 0) {
    const header = request.headers['x-forwarded-for'];
    const entries = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((entry) => entry.trim());
    const candidate = unmapped(entries.length >= hops ? entries[entries.length - hops] : undefined);
    if (candidate && isIP(candidate) !== 0) return candidate;
  }
  const address = unmapped(peer);
  return address && isIP(address) !== 0 ? address : undefined;
}

/**
 * Whether an Express route template could have produced this path. Express leaves `req.route`
 * set when a router's route matched and then passed the request on, so a template that does not
 * fit the path belongs to a route the request only passed through.
 *
 * As Express matches: letters in either case unless the app sets `case sensitive routing`
 * (`/V2/Payments/1` is served by `/v2/payments/:id`, and was recorded as a route of its own, so
 * a client could make up route values), and Express 5's optional groups (`/files{/:id}`), whose
 * braces were taken for literal text.
 */
function templateFits(template: string, path: string, caseSensitive: boolean): boolean {
  if (/[*?()+]/.test(template)) return true; // patterns we don't re-implement: trust Express
  let pattern = '';
  for (let at = 0; at < template.length; at++) {
    const char = template.charAt(at);
    if (char === '{') pattern += '(?:';
    else if (char === '}') pattern += ')?';
    else if (char === ':') {
      // A parameter: its name, then any one segment's worth of text (Express 4's `:id.json` included).
      while (at + 1 < template.length && !/[/{}]/.test(template.charAt(at + 1))) at++;
      pattern += '[^/]+';
    } else if (char === '\\' && at + 1 < template.length) pattern += template.charAt(++at).replace(/[.\\^$|[\]{}/]/g, '\\$&');
    else pattern += char.replace(/[.\\^$|[\]]/g, '\\$&');
  }
  try {
    return new RegExp(`^${pattern}/?$`, caseSensitive ? '' : 'i').test(path);
  } catch {
    return true; // unbalanced braces: a template Express accepted, whatever it means
  }
}

/** Express's `case sensitive routing` setting, when the request came through an Express app; off by default, as in Express. */
function caseSensitiveRouting(request: RequestLike): boolean {
  const app = request.app;
  if (typeof app?.get !== 'function') return false;
  try {
    return Boolean((app.get as (setting: string) => unknown).call(app, 'case sensitive routing'));
  } catch {
    return false;
  }
}

function headerValue(request: RequestLike, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Express/Connect middleware (it also wraps a plain `http` handler) that emits one invocation
 * event per request when the response finishes: method, route template, status, latency,
 * bytes, client IP, consumer and user. It never throws into the request: an event it cannot
 * build is logged and counted by the emitter's caller, and the response goes on.
 */
export function invocationMiddleware(
  emitter: Emitter,
  options: InvocationMiddlewareOptions,
): (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void {
  let invalid = 0;
  return (incoming, response, next) => {
    const request = incoming as RequestLike;
    const started = process.hrtime.bigint();
    // Read now: when the client hangs up, the socket is destroyed before the event is built (on
    // its close), and its remoteAddress is gone; the 499 had no client.ip.
    const peer = request.socket.remoteAddress;
    let recorded = false;
    // Once, when the response went; or when the connection closed before it did: a client that
    // hangs up early (5 ms after sending its password) must not leave its call unrecorded. Its
    // status is then the one already sent, if any, else 499.
    const record = (aborted: boolean): void => {
      if (recorded) return;
      recorded = true;
      try {
        const method = (request.method ?? 'GET').toUpperCase();
        if (!METHODS.has(method)) return;
        const rawPath = (request.originalUrl ?? request.url ?? '/').split('?')[0] ?? '/';
        const path = bounded(rawPath.startsWith('/') ? rawPath : `/${rawPath}`, LIMITS.path) ?? '/';
        const status = aborted && !response.headersSent ? CLIENT_CLOSED_STATUS : response.statusCode;
        const template = typeof request.route?.path === 'string' ? `${request.baseUrl ?? ''}${request.route.path}` : undefined;
        const matched = template !== undefined && templateFits(template, path, caseSensitiveRouting(request)) ? template : undefined;
        // An unmatched 404 is a scan or a typo: one route value, not one per path tried. A
        // request dropped before any route took it (499) is no route either. Anything else keeps
        // its path: a 401 or 429 that auth or rate-limit middleware answered before routing is
        // most often a real endpoint's (a login flood a limiter turns away), and per-endpoint
        // rules must count it there, as they count what middleware serves (a proxy, static files).
        const routePath = matched ?? (status === 404 || status === CLIENT_CLOSED_STATUS ? UNMATCHED_ROUTE : path);
        const ip = clientIp(request, peer, options.trustProxy ?? false);
        // Client-controlled values are cut to the contract's limits: an oversized header must
        // not make the event invalid, or a client could hide its calls by sending one.
        const userAgent = bounded(headerValue(request, 'user-agent'), LIMITS.userAgent, true);
        const requestId = bounded(headerValue(request, 'x-request-id'), LIMITS.identifier);
        const traceId = bounded(headerValue(request, 'traceparent')?.split('-')[1], LIMITS.identifier);
        const consumerId = bounded(options.consumerId?.(request), LIMITS.identifier);
        const userId = bounded(options.userId?.(request), LIMITS.identifier);
        const sessionId = bounded(options.sessionId?.(request), LIMITS.identifier);
        const group = bounded(options.group?.(request), LIMITS.identifier);
        const lengthHeader = headerValue(request, 'content-length');
        const requestLength = lengthHeader === undefined ? Number.NaN : Number(lengthHeader);
        // RFC 9112: a request with neither Content-Length nor Transfer-Encoding has no body.
        // A safe integer only: a Content-Length past 2^53 passed isInteger, made the event invalid
        // and hid the call. One that is no byte count leaves the size unknown, not 0.
        const bytesIn =
          lengthHeader !== undefined ? (Number.isSafeInteger(requestLength) && requestLength >= 0 ? requestLength : undefined) : headerValue(request, 'transfer-encoding') === undefined ? 0 : undefined;
        const responseLength = Number(response.getHeader('content-length') ?? Number.NaN);
        const bytesOut = Number.isSafeInteger(responseLength) && responseLength >= 0 ? responseLength : undefined;
        emitter.invocation({
          correlation: {
            ...(requestId ? { requestId } : {}),
            ...(traceId ? { traceId } : {}),
            ...(sessionId ? { sessionId } : {}),
          },
          actor: { ...(consumerId ? { consumerId } : {}), ...(userId ? { userId } : {}) },
          client: { ...(ip ? { ip } : {}), ...(userAgent ? { userAgent } : {}) },
          invocation: {
            resource: {
              api: typeof options.api === 'string' ? options.api : options.api(request),
              method: method as Method,
              path,
            },
            route: (routePath.startsWith('/') ? routePath : `/${routePath}`).slice(0, LIMITS.path),
            status,
            latencyMs: Math.min(Number(process.hrtime.bigint() - started) / 1e6, MAX_LATENCY_MS),
            // From Content-Length: reading the body here would take it from the body parser.
            // Without one (chunked), the size is unknown and left out rather than sent as 0.
            ...(bytesIn === undefined ? {} : { bytesIn }),
            ...(bytesOut === undefined ? {} : { bytesOut }),
            ...(group ? { group } : {}),
          },
        });
      } catch (error) {
        invalid++;
        options.logger?.warn({ err: error, invalid }, 'invocation event not emitted');
      }
    };
    response.once('finish', () => record(false));
    // After `finish` too (Node closes every response): then it was recorded already.
    response.once('close', () => record(true));
    next();
  };
}
