import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import express from 'express';
import { CLIENT_CLOSED_STATUS, invocationMiddleware, type EmitInput, type EmitResult, type Emitter, type InvocationMiddlewareOptions, UNMATCHED_ROUTE } from '../../ingest/sdk';
import { ValidationError, createLogger } from '../../platform';
import { familySchemas } from '../../schemas';

/**
 * A fake of our own SDK interface (not of an external service): it records what the middleware
 * hands to `invocation()`, or throws what it is told to, like the real emitter's validation.
 */
class RecordingEmitter implements Emitter {
  readonly invocations: Array<EmitInput<'invocation'>> = [];
  throwing: Error | undefined;

  invocation(input: EmitInput<'invocation'>): EmitResult {
    this.invocations.push(input);
    if (this.throwing) throw this.throwing;
    return { id: `recorded-${this.invocations.length}`, accepted: true };
  }
  policy(): EmitResult {
    throw new Error('the middleware emits invocation events only');
  }
  device(): EmitResult {
    throw new Error('the middleware emits invocation events only');
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  stats(): ReturnType<Emitter['stats']> {
    return { accepted: this.invocations.length, delivered: 0, dropped: 0, sendFailures: 0, buffered: this.invocations.length, bufferedBytes: 0 };
  }

  /** Waits until `count` events were emitted: the middleware emits on `finish`, which may follow the client's read. */
  async waitFor(count: number): Promise<Array<EmitInput<'invocation'>>> {
    const deadline = Date.now() + 5000;
    while (this.invocations.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} invocation events, got ${this.invocations.length}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.invocations;
  }
}

/** Whether the real emitter would accept what the middleware emitted, once it adds the envelope. */
function validAsEmitted(input: EmitInput<'invocation'> | undefined): { success: boolean; issues: string[] } {
  const result = familySchemas.invocation.safeParse({
    ...input,
    family: 'invocation',
    id: 'evt-http-00001',
    schemaVersion: 1,
    time: '2024-05-01T10:00:00Z',
    source: { service: 'unit', kind: 'service' },
  });
  return { success: result.success, issues: result.success ? [] : result.error.issues.map((issue) => issue.path.join('.')) };
}

const headerOf = (name: string) => (request: { headers: Record<string, string | string[] | undefined> }): string | undefined => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
};

interface Running {
  baseUrl: string;
  emitter: RecordingEmitter;
  logLines: string[];
  stop: () => Promise<void>;
}

/** An express app behind the middleware, on a loopback port chosen by the OS. */
async function startApp(options: Partial<InvocationMiddlewareOptions> = {}): Promise<Running> {
  const emitter = new RecordingEmitter();
  const logLines: string[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void logLines.push(line) } });
  const app = express();
  app.use(
    invocationMiddleware(emitter, {
      api: 'accounts-v1',
      consumerId: headerOf('x-consumer-id'),
      userId: headerOf('x-user-id'),
      sessionId: headerOf('x-session-id'),
      group: () => 'accounts',
      logger,
      ...options,
    }),
  );
  app.get('/accounts/:id', (request, response) => {
    response.json({ id: request.params.id });
  });
  app.post('/accounts', express.json(), (request, response) => {
    response.status(201).json({ received: request.body as unknown });
  });
  // Something slow before routing (a body parser waiting for its body, an auth lookup).
  app.use('/slow', (_request, _response, next) => {
    setTimeout(next, 150);
  });
  app.post('/login', (_request, response) => {
    // Checking a password takes a while: a client may hang up before the answer.
    setTimeout(() => response.status(401).send('no'), 150);
  });
  // Middleware that answers before routing: an API key check, a rate limit.
  app.use('/guarded', (_request, response) => {
    response.status(401).send('no key');
  });
  // What middleware serves without a route (static files, a proxy): its path is the route.
  app.use('/served', (_request, response) => {
    response.status(200).send('ok');
  });
  app.use('/limited', (_request, response) => {
    response.status(429).send('slow down');
  });
  // Express 5's optional group: one route for /files and /files/7.
  app.get('/files{/:fileId}', (_request, response) => {
    response.send('files');
  });
  app.get('/stream', (_request, response) => {
    // No Content-Length: a chunked response, whose size the middleware can't know.
    response.write('part one, ');
    response.end('part two');
  });
  const router = express.Router();
  router.get('/items/:itemId', (_request, response) => {
    response.status(202).send('ok');
  });
  router.get('/pass/:anything', (_request, _response, next) => {
    next();
  });
  app.use('/v2', router);

  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    emitter,
    logLines,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

describe('invocationMiddleware', () => {
  let running: Running;

  beforeEach(async () => {
    running = await startApp();
  });

  afterEach(async () => {
    await running.stop();
  });

  it('emits one invocation per request, with the route template, path, status, method, latency and consumer', async () => {
    const started = process.hrtime.bigint();
    const response = await fetch(`${running.baseUrl}/accounts/42?expand=owner`, {
      headers: {
        'x-consumer-id': 'app-7',
        'x-user-id': 'user-9',
        'x-session-id': 'sess-3',
        'user-agent': 'unit-test/1.0',
        'x-request-id': 'req-abc',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
    });
    const body = await response.text();
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(response.status).toBe(200);

    const [event] = await running.emitter.waitFor(1);
    expect(running.emitter.invocations).toHaveLength(1);
    expect(event?.invocation).toMatchObject({
      resource: { api: 'accounts-v1', method: 'GET', path: '/accounts/42' },
      route: '/accounts/:id',
      status: 200,
      bytesIn: 0,
      bytesOut: Buffer.byteLength(body),
      group: 'accounts',
    });
    expect(event?.invocation.latencyMs).toBeGreaterThanOrEqual(0);
    expect(event?.invocation.latencyMs).toBeLessThanOrEqual(elapsedMs + 50);
    expect(event?.actor).toStrictEqual({ consumerId: 'app-7', userId: 'user-9' });
    expect(event?.correlation).toStrictEqual({ requestId: 'req-abc', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', sessionId: 'sess-3' });
    expect(event?.client).toStrictEqual({ ip: '127.0.0.1', userAgent: 'unit-test/1.0' });
    expect(validAsEmitted(event)).toStrictEqual({ success: true, issues: [] });
  });

  it('leaves out consumer, user and session when the request has none', async () => {
    await (await fetch(`${running.baseUrl}/accounts/1`)).text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.actor).toStrictEqual({});
    expect(event?.correlation).toStrictEqual({});
    expect(validAsEmitted(event).success).toBe(true);
  });

  it('joins the mount path of a router to its route template', async () => {
    const response = await fetch(`${running.baseUrl}/v2/items/abc-123`);
    await response.text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.invocation).toMatchObject({ route: '/v2/items/:itemId', status: 202, resource: { path: '/v2/items/abc-123' } });
  });

  it('counts request bytes of a body and reports the method', async () => {
    const payload = JSON.stringify({ owner: 'user-9', currency: 'EUR' });
    const response = await fetch(`${running.baseUrl}/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: payload,
    });
    await response.text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.invocation).toMatchObject({
      resource: { method: 'POST', path: '/accounts' },
      route: '/accounts',
      status: 201,
      bytesIn: Buffer.byteLength(payload),
    });
    expect(event?.invocation.bytesOut).toBeGreaterThan(0);
  });

  it('leaves the sizes out when they are unknown: a chunked request body and a chunked response', async () => {
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"owner":"user-9"}'));
        controller.close();
      },
    });
    await (await fetch(`${running.baseUrl}/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunked, duplex: 'half' })).text();
    await (await fetch(`${running.baseUrl}/stream`)).text();
    const [post, stream] = await running.emitter.waitFor(2);
    expect(post?.invocation).not.toHaveProperty('bytesIn');
    expect(post?.invocation.bytesOut).toBeGreaterThan(0);
    expect(stream?.invocation).toMatchObject({ bytesIn: 0, status: 200 });
    expect(stream?.invocation).not.toHaveProperty('bytesOut');
    expect(validAsEmitted(stream)).toStrictEqual({ success: true, issues: [] });
  });

  it('records one unmatched route, not the concrete path, when no route matched (404)', async () => {
    const response = await fetch(`${running.baseUrl}/no/such/thing?q=1`);
    await response.text();
    const [event] = await running.emitter.waitFor(1);
    expect(response.status).toBe(404);
    expect(event?.invocation).toMatchObject({ route: UNMATCHED_ROUTE, status: 404, resource: { path: '/no/such/thing' } });
  });

  // Express matches routes in either case by default: /ACCOUNTS/42 was recorded as a route of its own,
  // so a client could make up as many route values as spellings.
  it('records the route template of a path Express matched in another case', async () => {
    for (const path of ['/ACCOUNTS/42', '/Accounts/43', '/V2/Items/abc']) await (await fetch(`${running.baseUrl}${path}`)).text();
    const events = await running.emitter.waitFor(3);
    expect(events.map((event) => [event.invocation.status, event.invocation.route])).toStrictEqual([
      [200, '/accounts/:id'],
      [200, '/accounts/:id'],
      // The mount path is the client's spelling (Express's baseUrl); the router's template is not.
      [202, '/V2/items/:itemId'],
    ]);
  });

  // The braces were taken for literal text: every /files/<id> was recorded as its own route.
  it('records the template of an Express 5 optional group, with and without the optional part', async () => {
    for (const path of ['/files', '/files/7', '/files/8/']) await (await fetch(`${running.baseUrl}${path}`)).text();
    const events = await running.emitter.waitFor(3);
    expect(events.map((event) => event.invocation.route)).toStrictEqual(['/files{/:fileId}', '/files{/:fileId}', '/files{/:fileId}']);
  });

  // Refused by middleware before routing, /v2/<anything> was recorded under its concrete path:
  // a scanner collecting 401s made up one route (and one per-endpoint baseline) per path it tried.
  // A login flood a rate limiter turns away must count on its endpoint, not in one pseudo-route.
  it('records a request answered before any route took it (401, 429) under its path', async () => {
    for (const path of ['/guarded/x', '/limited/login']) await (await fetch(`${running.baseUrl}${path}`)).text();
    const events = await running.emitter.waitFor(2);
    expect(events.map((event) => [event.invocation.status, event.invocation.route, event.invocation.resource.path])).toStrictEqual([
      [401, '/guarded/x', '/guarded/x'],
      [429, '/limited/login', '/limited/login'],
    ]);
  });

  it('records what middleware served without a route (static files, a proxy) under its path', async () => {
    await (await fetch(`${running.baseUrl}/served/app.js`)).text();
    const events = await running.emitter.waitFor(1);
    expect(events.map((event) => [event.invocation.status, event.invocation.route])).toStrictEqual([[200, '/served/app.js']]);
  });

  it('emits one event per request, in order', async () => {
    for (const id of ['1', '2', '3']) await (await fetch(`${running.baseUrl}/accounts/${id}`)).text();
    const events = await running.emitter.waitFor(3);
    expect(events.map((event) => event.invocation.resource.path)).toStrictEqual(['/accounts/1', '/accounts/2', '/accounts/3']);
  });

  it('ignores X-Forwarded-For unless trustProxy is set', async () => {
    await (await fetch(`${running.baseUrl}/accounts/1`, { headers: { 'x-forwarded-for': '81.2.69.142' } })).text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.client?.ip).toBe('127.0.0.1');
  });

  it('never lets an emitter failure reach the response, and logs it', async () => {
    running.emitter.throwing = new ValidationError('invalid invocation event', ['client.ip: Invalid IP address'], 'event_invalid');
    const response = await fetch(`${running.baseUrl}/accounts/5`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: '5' });
    await running.emitter.waitFor(1);
    // The warning is written in the same finish handler that called the emitter.
    const warnings = running.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warnings).toStrictEqual([expect.objectContaining({ level: 40, invalid: 1, msg: 'invocation event not emitted' })]);
  });

  // Regression test (fixed bug; ingest/http-middleware.ts:65, `routePath`): a router route that matched and then called next() leaves
  // req.route behind while baseUrl is restored, so the 404 is recorded under another route.
  it('records a fall-through to 404 as unmatched, not under a route of a router it passed through', async () => {
    const response = await fetch(`${running.baseUrl}/v2/pass/9`);
    await response.text();
    const [event] = await running.emitter.waitFor(1);
    expect(response.status).toBe(404);
    expect(event?.invocation.route).toBe(UNMATCHED_ROUTE);
  });

  // Regression test (fixed bug; ingest/http-middleware.ts:67-69 and 75-96): client-controlled header values go into the event
  // unbounded; past the schema's limits the emitter refuses the event and the request leaves no
  // trace, so any client can hide its calls.
  it.each([
    ['user-agent', 'x'.repeat(1025)],
    ['x-request-id', 'r'.repeat(257)],
  ])('emits a valid event even with an oversized %s header', async (header, value) => {
    await (await fetch(`${running.baseUrl}/accounts/1`, { headers: { [header]: value } })).text();
    const [event] = await running.emitter.waitFor(1);
    expect(validAsEmitted(event)).toStrictEqual({ success: true, issues: [] });
  });
});

describe('invocationMiddleware options', () => {
  let running: Running | undefined;

  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });

  it('takes the API name from a function of the request', async () => {
    // originalUrl: by the time the response finishes, a mounted router may have cut its prefix off url.
    running = await startApp({ api: (request) => ((request.originalUrl ?? request.url)?.startsWith('/v2') ? 'accounts-v2' : 'accounts-v1') });
    await (await fetch(`${running.baseUrl}/v2/items/1`)).text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.invocation.resource.api).toBe('accounts-v2');
  });

  it('with trustProxy, takes the client IP your proxy appended, not what the client wrote', async () => {
    running = await startApp({ trustProxy: true });
    await (await fetch(`${running.baseUrl}/accounts/1`, { headers: { 'x-forwarded-for': '10.9.9.9, 81.2.69.142' } })).text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.client?.ip).toBe('81.2.69.142');
  });

  it('with two trusted proxies, takes the second entry from the right', async () => {
    running = await startApp({ trustProxy: 2 });
    await (await fetch(`${running.baseUrl}/accounts/1`, { headers: { 'x-forwarded-for': '1.2.3.4, 81.2.69.142, 10.0.0.1' } })).text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.client?.ip).toBe('81.2.69.142');
  });

  it('with trustProxy but no X-Forwarded-For, falls back to the socket address', async () => {
    running = await startApp({ trustProxy: true });
    await (await fetch(`${running.baseUrl}/accounts/1`)).text();
    const [event] = await running.emitter.waitFor(1);
    expect(event?.client?.ip).toBe('127.0.0.1');
  });

  // Regression test (fixed bug; ingest/http-middleware.ts:34, `clientIp`): proxies append to X-Forwarded-For, so its first hop is
  // whatever the client wrote; a non-address there makes the event invalid and it is never
  // emitted.
  it('with trustProxy, still emits a valid event when the client forged the first hop', async () => {
    running = await startApp({ trustProxy: true });
    await (await fetch(`${running.baseUrl}/accounts/1`, { headers: { 'x-forwarded-for': 'not-an-ip, 203.0.113.9' } })).text();
    const [event] = await running.emitter.waitFor(1);
    expect(validAsEmitted(event)).toStrictEqual({ success: true, issues: [] });
  });

  /** Writes a raw HTTP/1.1 request (bytes as given: fetch refuses what a hostile client may send), then closes after `closeAfterMs`, or once answered. */
  function rawRequest(baseUrl: string, head: string, closeAfterMs?: number): Promise<string> {
    const { port } = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(Buffer.from(head, 'latin1')));
      let answer = '';
      socket.on('data', (chunk) => {
        answer += chunk.toString('latin1');
        if (answer.includes('\r\n\r\n')) socket.end();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(answer));
      if (closeAfterMs !== undefined) setTimeout(() => socket.destroy(), closeAfterMs);
    });
  }

  // HTTP allows a tab and bytes 0x80-0xFF in a header value; Node reads them as Latin-1, and 0x85
  // is then the C1 control U+0085, which the contract refuses. The event was invalid, and dropped.
  it('records a request whose headers hold a tab or a C1 control, each control as U+FFFD (a tab kept in the user agent)', async () => {
    running = await startApp();
    const answer = await rawRequest(running.baseUrl, 'GET /accounts/7 HTTP/1.1\r\nHost: x\r\nUser-Agent: curl\x85x\tbot\r\nX-Request-Id: req\ttab\r\nX-User-Id: attacker\x85-4\r\nConnection: close\r\n\r\n');
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    const [event] = await running.emitter.waitFor(1);
    expect(event?.client?.userAgent).toBe('curl\uFFFDx\tbot');
    expect(event?.correlation?.requestId).toBe('req\uFFFDtab');
    expect(event?.actor?.userId).toBe('attacker\uFFFD-4');
    expect(validAsEmitted(event)).toStrictEqual({ success: true, issues: [] });
    expect(running.logLines.filter((line) => line.includes('invocation event not emitted'))).toStrictEqual([]);
  });

  // Past 2^53 a Content-Length is no safe integer: the schema refused the event and the call went unrecorded.
  it('records a request whose Content-Length is too large to be a byte count, without bytesIn', async () => {
    running = await startApp();
    const answer = await rawRequest(running.baseUrl, 'POST /accounts/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\nConnection: close\r\n\r\n', 200);
    expect(answer === '' || answer.startsWith('HTTP/1.1')).toBe(true);
    const [event] = await running.emitter.waitFor(1);
    expect(event?.invocation?.resource).toMatchObject({ method: 'POST', path: '/accounts/7' });
    expect(event?.invocation && 'bytesIn' in event.invocation).toBe(false);
    expect(validAsEmitted(event)).toStrictEqual({ success: true, issues: [] });
  });

  // A brute force that hangs up before each answer left no invocation at all.
  it('records a request whose client closed the connection before the response, as 499, once', async () => {
    running = await startApp();
    await rawRequest(running.baseUrl, 'POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-User-Id: u-9\r\n\r\n', 20);
    const [event] = await running.emitter.waitFor(1);
    expect(event?.invocation).toMatchObject({ status: CLIENT_CLOSED_STATUS, route: '/login', resource: { method: 'POST', path: '/login' } });
    expect(event?.actor?.userId).toBe('u-9');
    // Read when the request came in: by the socket's close its address is gone (the 499 had no client.ip).
    expect(event?.client?.ip).toBe('127.0.0.1');
    expect(validAsEmitted(event)).toStrictEqual({ success: true, issues: [] });
    // The handler answers later, to a closed socket: still one event.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(running.emitter.invocations).toHaveLength(1);
  });

  // Dropped before any route took it: the path is the client's choice, one route value per path tried.
  it('records a request dropped before routing under the unmatched route, as a 404 is', async () => {
    running = await startApp();
    await rawRequest(running.baseUrl, 'POST /slow/wp-login.php HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n', 20);
    const [event] = await running.emitter.waitFor(1);
    expect(event?.invocation).toMatchObject({ status: CLIENT_CLOSED_STATUS, route: UNMATCHED_ROUTE, resource: { path: '/slow/wp-login.php' } });
    expect(event?.client?.ip).toBe('127.0.0.1');
  });
});

/**
 * One exchange without a server: a request and response of our own making, so the test sets what
 * Express would have left on the request (route, baseUrl, app) and when the response finishes.
 */
function fakeExchange(emitter: RecordingEmitter, request: Record<string, unknown>, status = 200): { finish: () => void } {
  const incoming = Object.assign(new EventEmitter(), { method: 'GET', headers: {}, socket: { remoteAddress: '127.0.0.1' } }, request);
  const response = Object.assign(new EventEmitter(), { statusCode: status, headersSent: true, getHeader: () => undefined });
  invocationMiddleware(emitter, { api: 'payments-v2' })(incoming as unknown as IncomingMessage, response as unknown as ServerResponse, () => undefined);
  return { finish: () => response.emit('finish') };
}

describe('invocationMiddleware without a server', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it("matches route templates case-sensitively when the app sets 'case sensitive routing', as Express then does", () => {
    const emitter = new RecordingEmitter();
    const exchange = (sensitive: boolean): void =>
      fakeExchange(emitter, {
        url: '/V2/Payments/1',
        originalUrl: '/V2/Payments/1',
        baseUrl: '',
        route: { path: '/v2/payments/:id' },
        app: { get: (setting: string) => (setting === 'case sensitive routing' ? sensitive : undefined) },
      }).finish();
    exchange(false);
    exchange(true);
    // Sensitive, the template is one the request only passed through: no route matched it, and
    // what answered it (a 200: middleware) is recorded under the path.
    expect(emitter.invocations.map((event) => event.invocation.route)).toStrictEqual(['/v2/payments/:id', '/V2/Payments/1']);
  });

  // An SSE stream or a long poll past an hour: the contract's maximum refused the event, and the
  // call went unrecorded (a warning only).
  it("records a response that lasted more than an hour with the contract's longest latency, valid", () => {
    const emitter = new RecordingEmitter();
    const real = process.hrtime.bigint.bind(process.hrtime);
    const started = real();
    jest.spyOn(process.hrtime, 'bigint').mockReturnValueOnce(started);
    const { finish } = fakeExchange(emitter, { url: '/events', originalUrl: '/events', baseUrl: '', route: { path: '/events' } });
    jest.spyOn(process.hrtime, 'bigint').mockReturnValue(started + 61n * 60n * 1_000_000_000n);
    finish();
    const [event] = emitter.invocations;
    expect(event?.invocation.latencyMs).toBe(3_600_000);
    expect(validAsEmitted(event)).toStrictEqual({ success: true, issues: [] });
  });

  // A plain `http` server has no routes at all: its paths stay (one value would hide every
  // endpoint), but not those of a scan's 404s nor of the requests whose client hung up.
  it('on a plain http server (no router), records the path as the route, but a 404 under the unmatched route', () => {
    const emitter = new RecordingEmitter();
    fakeExchange(emitter, { url: '/health' }, 200).finish();
    fakeExchange(emitter, { url: '/wp-login.php' }, 404).finish();
    expect(emitter.invocations.map((event) => event.invocation.route)).toStrictEqual(['/health', UNMATCHED_ROUTE]);
  });
});
