import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KONG_INTAKE_PATH, createHttpIntake, type HttpIntake } from '../../ingest';
import { topicPlanOf } from '../../platform';
import { isolatedConfig, openStack, readTopic, testLogger, type Stack } from '../support/harness';

/**
 * The HTTP intake's connections, on the real Kafka. At stop: a connection busy when stop() began
 * was served for as long as its gateway went on posting (keep-alive), so stop() did not return; a
 * caller stalled mid-upload held it for the whole request timeout. At a refusal: the connection was
 * closed with the body unread, and a gateway still writing it got a reset instead of the answer.
 */

const TOKEN = `it-token-${randomBytes(16).toString('hex')}`;

function kongRecord(id: string): Record<string, unknown> {
  return { request: { id, method: 'POST', uri: '/login', size: 80, headers: {} }, response: { status: 200, size: 20, headers: {} }, client_ip: '203.0.113.8', started_at: 1_795_000_000_000 };
}

/**
 * A raw HTTP/1.1 exchange on a connection of its own, as a gateway that writes its whole request
 * before reading: `request` is written in pieces of 64 KiB, 2 ms apart (as a gateway sends a body
 * larger than the socket buffers), then everything the server sent until it closed is read; or the
 * socket's error is said (a write into a reset connection fails, and what was not read is lost).
 */
async function rawExchange(port: number, request: Buffer): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.pause();
  let failed: string | undefined;
  socket.on('error', (error: NodeJS.ErrnoException) => (failed ??= `error ${error.code ?? error.message}`));
  for (let at = 0; at < request.length && failed === undefined; at += 64 * 1024) {
    await new Promise<void>((resolve) => socket.write(request.subarray(at, at + 64 * 1024), () => resolve()));
    await sleep(2);
  }
  await sleep(300);
  if (failed !== undefined) return failed;
  return new Promise((resolve) => {
    let text = '';
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('end', () => resolve(text));
    socket.resume();
  });
}

/** The status line of a raw answer and the JSON error it holds. */
function statusAndError(answer: string): string {
  return `${answer.split('\r\n')[0] ?? ''} ${/\{"error":.*\}/.exec(answer)?.[0] ?? ''}`;
}

describe('the HTTP intake\'s connections', () => {
  let stack: Stack;
  let topic: string;
  let intake: HttpIntake | undefined;

  beforeEach(() => {
    topic = `it-raw-${randomBytes(4).toString('hex')}.kong`;
    stack = openStack(isolatedConfig({ VIGIL_INTAKE_TOKEN: TOKEN, VIGIL_INTAKE_TOPIC: topic }));
  });

  afterEach(async () => {
    await intake?.stop();
    intake = undefined;
    const admin = stack.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect();
    await stack.cleanup();
  });

  async function startIntake(maxBodyBytes = 64 * 1024): Promise<number> {
    const { config } = stack;
    intake = createHttpIntake({
      kafka: stack.kafka,
      topic,
      topicSettings: topicPlanOf(config, topic),
      token: TOKEN,
      maxBodyBytes,
      maxBodiesBytes: maxBodyBytes,
      maxRecordBytes: config.limits.maxMessageBytes,
      maxJsonDepth: config.limits.maxJsonDepth,
      requestsPerSecond: 10_000,
      burst: 10_000,
      logger: testLogger,
      stopGraceMs: 1_000,
    });
    return (await intake.start({ host: '127.0.0.1', port: 0 })).port;
  }

  // Node closes an idle keep-alive connection after 5 s; Kong's http-log keeps its own for 60 s
  // and posted its next batch on a connection the intake had closed.
  it('keeps an idle keep-alive connection past Node\'s 5 s, for a gateway that keeps its own 60 s', async () => {
    const port = await startIntake();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets: unknown[] = [];
      const post = (id: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const body = JSON.stringify([kongRecord(id)]);
          const posting = request({ host: '127.0.0.1', port, path: KONG_INTAKE_PATH, method: 'POST', agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': String(body.length) } }, (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode ?? 0));
          });
          posting.on('socket', (socket) => sockets.push(socket));
          posting.on('error', reject);
          posting.end(body);
        });
      expect(await post('ka-1')).toBe(200);
      const [first] = sockets as { destroyed: boolean }[];
      await sleep(6_500);
      expect(first?.destroyed).toBe(false);
      expect(await post('ka-2')).toBe(200);
      expect(sockets[1]).toBe(first);
    } finally {
      agent.destroy();
    }
  });

  it('returns promptly while a gateway goes on posting on a keep-alive connection that was busy when it began; every 2xx was produced', async () => {
    const port = await startIntake();
    const running = intake;
    if (!running) throw new Error('the intake did not start');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const accepted: string[] = [];
    const socketsOf = new Map<string, unknown>();
    let stopTook: number | undefined;
    let stopping: Promise<void> | undefined;
    /** One post on the keep-alive connection; the body is sent in two halves, `between` running in the middle. */
    const post = (id: string, between: () => Promise<void>): Promise<string> =>
      new Promise((resolve) => {
        const body = JSON.stringify([kongRecord(id)]);
        const posting = request({ host: '127.0.0.1', port, path: KONG_INTAKE_PATH, method: 'POST', agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': String(body.length) } }, (response) => {
          response.resume();
          response.on('end', () => resolve(String(response.statusCode ?? 0)));
        });
        posting.on('socket', (socket) => socketsOf.set(id, socket));
        posting.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
        const half = Math.floor(body.length / 2);
        posting.write(body.slice(0, half));
        void between().then(() => posting.end(body.slice(half)));
      });
    const deadline = Date.now() + 10_000;
    for (let n = 0; stopTook === undefined && Date.now() < deadline; n++) {
      const id = `keep-alive-${n}`;
      // The fourth post is half sent when stop() begins: its connection is busy, not idle.
      const outcome = await post(id, async () => {
        if (n !== 3) return;
        await sleep(100);
        const began = performance.now();
        stopping = running.stop().then(() => {
          stopTook = performance.now() - began;
        });
      });
      if (outcome === '200') accepted.push(id);
      await sleep(50);
    }
    agent.destroy();
    await stopping;
    expect(stopTook).toBeDefined();
    // Before, stop() returned only once the gateway stopped posting (here, the 10 s deadline).
    expect(stopTook).toBeLessThan(3_000);
    // The posts before stop() and the one it caught half sent were answered; all on one connection.
    expect(accepted.slice(0, 4)).toEqual(['keep-alive-0', 'keep-alive-1', 'keep-alive-2', 'keep-alive-3']);
    expect(new Set(accepted.slice(0, 4).map((id) => socketsOf.get(id))).size).toBe(1);
    const produced = await readTopic(stack.kafka, topic, accepted.length);
    const ids = new Set(produced.map((message) => (JSON.parse(message.value?.toString('utf8') ?? '{}') as { request: { id: string } }).request.id));
    for (const id of accepted) expect(ids).toContain(id);
  });

  it('closes a connection stalled mid-upload once the grace has passed, rather than waiting for the request timeout', async () => {
    const port = await startIntake();
    const running = intake;
    if (!running) throw new Error('the intake did not start');
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    // The headers and half the body, then nothing: the request stays active.
    socket.write(`POST ${KONG_INTAKE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n[{"request":{"id":"stalled"`);
    await sleep(200);
    const began = performance.now();
    await running.stop();
    const took = performance.now() - began;
    // Before, stop() waited for the request timeout (60 s).
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3_000);
    await closed;
    socket.destroy();
  });

  // Node closed a refused connection as soon as the answer was written: with megabytes of the
  // body unread, the kernel sent a reset, and a gateway still writing (Kong) got EPIPE, never the
  // status. The rest of the body (up to twice the limit) is now read and dropped first.
  it('answers 413 and 401 to a caller that writes its whole body over the limit before reading, rather than resetting the connection', async () => {
    const limit = 2 * 1024 * 1024;
    const port = await startIntake(limit);
    const body = Buffer.alloc(Math.floor(1.75 * limit), 0x20);
    body.write(`[${JSON.stringify(kongRecord('refused'))}`);
    const head = (authorization: string, length: string): Buffer =>
      Buffer.from(`POST ${KONG_INTAKE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${authorization}\r\ncontent-type: application/json\r\n${length}\r\n\r\n`);
    const declared = await rawExchange(port, Buffer.concat([head(`Bearer ${TOKEN}`, `content-length: ${body.length}`), body]));
    expect(statusAndError(declared)).toBe(`HTTP/1.1 413 Payload Too Large {"error":"body of ${body.length} bytes is over the limit of ${limit} (VIGIL_INTAKE_MAX_BODY_BYTES)"}`);
    expect(declared.toLowerCase()).toContain('connection: close');
    const chunked = await rawExchange(port, Buffer.concat([head(`Bearer ${TOKEN}`, 'transfer-encoding: chunked'), Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]));
    expect(statusAndError(chunked)).toBe(`HTTP/1.1 413 Payload Too Large {"error":"body is over the limit of ${limit} bytes (VIGIL_INTAKE_MAX_BODY_BYTES)"}`);
    const wrong = await rawExchange(port, Buffer.concat([head(`Bearer ${TOKEN}x`, `content-length: ${body.length}`), body]));
    expect(statusAndError(wrong)).toBe('HTTP/1.1 401 Unauthorized {"error":"wrong token"}');
    expect(intake?.stats()).toMatchObject({ accepted: 0, tooLarge: 2, unauthorized: 1 });
  });
});
