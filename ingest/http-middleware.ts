import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Emitter, EmitInput } from './emitter';
import type { Logger } from '../platform';

type Method = EmitInput<'invocation'>['invocation']['resource']['method'];
const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The parts of an Express request the middleware reads; plain Node requests work too. */
type RequestLike = IncomingMessage & { route?: { path?: unknown }; baseUrl?: string; originalUrl?: string };

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
   * Take the client IP from the first `X-Forwarded-For` hop. Only behind a proxy you run: any
   * client can write that header. @defaultValue false
   */
  trustProxy?: boolean;
  logger?: Logger;
}

function clientIp(request: RequestLike, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const forwarded = request.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  const address = request.socket.remoteAddress;
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
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
    response.once('finish', () => {
      try {
        const method = (request.method ?? 'GET').toUpperCase();
        if (!METHODS.has(method)) return;
        const path = (request.originalUrl ?? request.url ?? '/').split('?')[0] ?? '/';
        const routePath = typeof request.route?.path === 'string' ? `${request.baseUrl ?? ''}${request.route.path}` : path;
        const ip = clientIp(request, options.trustProxy ?? false);
        const userAgent = headerValue(request, 'user-agent');
        const requestId = headerValue(request, 'x-request-id');
        const traceId = headerValue(request, 'traceparent')?.split('-')[1];
        const consumerId = options.consumerId?.(request);
        const userId = options.userId?.(request);
        const sessionId = options.sessionId?.(request);
        const group = options.group?.(request);
        const lengthHeader = Number(headerValue(request, 'content-length'));
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
              path: path.startsWith('/') ? path : `/${path}`,
            },
            route: routePath.startsWith('/') ? routePath : `/${routePath}`,
            status: response.statusCode,
            latencyMs: Number(process.hrtime.bigint() - started) / 1e6,
            // From Content-Length: reading the body here would take it from the body parser.
            bytesIn: Number.isFinite(lengthHeader) && lengthHeader > 0 ? lengthHeader : 0,
            bytesOut: Number(response.getHeader('content-length') ?? 0) || 0,
            ...(group ? { group } : {}),
          },
        });
      } catch (error) {
        invalid++;
        options.logger?.warn({ err: error, invalid }, 'invocation event not emitted');
      }
    });
    next();
  };
}
