import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes } from 'kafkajs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Vigil } from '../../app';
import { createVigil } from '../../app';
import { KONG_INTAKE_PATH } from '../../ingest';
import { isolatedConfig, messagesOn, openStack, readTopic, testLogger, waitFor, type Stack } from '../support/harness';

/**
 * The HTTP intake on the real Kafka, started by the composition root as `vigil intake` starts
 * it: a good batch lands on the raw topic record by record, and nothing refused lands at all.
 */

const TOKEN = `it-token-${randomBytes(16).toString('hex')}`;

/** A Kong log object with the fields `kong/pdk/log.lua` serialize() writes (trimmed). */
function kongRecord(id: string, status = 200): Record<string, unknown> {
  return {
    request: { id, method: 'GET', uri: '/orders/42?expand=1', url: 'http://shop.example/orders/42?expand=1', size: 120, headers: { 'user-agent': 'curl/8.5.0', authorization: 'REDACTED' } },
    response: { status, size: 512, headers: {} },
    route: { id: 'r-1', name: 'orders', paths: ['/orders'] },
    service: { id: 's-1', name: 'shop', host: 'shop.internal', port: 8080 },
    latencies: { kong: 1, proxy: 10, request: 12, receive: 1 },
    client_ip: '203.0.113.7',
    started_at: 1_795_000_000_000,
    source: 'upstream',
  };
}

/**
 * A raw HTTP/1.1 exchange on a connection of its own, as a gateway that writes its whole request
 * before reading: `request` is written, then (after `readAfterMs`) everything the server sent until
 * it closed is read, or the socket's error is said (a reset destroys what was not read yet).
 */
function rawExchange(port: number, request: Buffer | string, readAfterMs = 300): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    let text = '';
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
    socket.write(request, () => {
      setTimeout(() => {
        socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        socket.on('end', () => resolve(text));
        socket.resume();
      }, readAfterMs);
    });
  });
}

/** The status line and the body of a raw answer (its chunks joined when it was sent chunked). */
function statusAndBody(answer: string): string {
  const split = answer.indexOf('\r\n\r\n');
  if (split < 0) return answer;
  const head = answer.slice(0, split);
  let body = answer.slice(split + 4);
  if (/^transfer-encoding:[ \t]*chunked/im.test(head)) {
    let joined = '';
    for (let at = 0; at < body.length; ) {
      const end = body.indexOf('\r\n', at);
      const size = Number.parseInt(body.slice(at, end), 16);
      if (!(size > 0)) break;
      joined += body.slice(end + 2, end + 2 + size);
      at = end + 2 + size + 2;
    }
    body = joined;
  }
  return `${head.split('\r\n')[0] ?? ''} ${body.trim()}`;
}

/** Stops the intake, deletes its raw topic and closes the stack's clients. */
async function stopIntake(vigil: Vigil, stack: Stack, topic: string): Promise<void> {
  await vigil.stop();
  const admin = stack.kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
  await admin.disconnect();
  await stack.cleanup();
}

describe('the HTTP intake for Kong http-log', () => {
  let stack: Stack;
  let vigil: Vigil;
  let topic: string;
  let url: string;

  async function post(body: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }, at = url): Promise<{ status: number; body: { accepted?: number; error?: string }; headers: Headers }> {
    const response = await fetch(at, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    return { status: response.status, body: (await response.json()) as { accepted?: number; error?: string }, headers: response.headers };
  }

  const recordsOnTopic = (): Promise<number> => messagesOn(stack.kafka, topic);

  beforeAll(async () => {
    topic = `it-raw-${randomBytes(4).toString('hex')}.kong`;
    stack = openStack(isolatedConfig({ VIGIL_INTAKE_TOKEN: TOKEN, VIGIL_INTAKE_TOPIC: topic, VIGIL_INTAKE_MAX_BODY_BYTES: '8192', VIGIL_INTAKE_MAX_BODIES_BYTES: '16384', VIGIL_INTAKE_BURST: '100', VIGIL_TOPIC_RETENTION_MS: '172800000', VIGIL_TOPIC_PARTITIONS: '2' }));
    vigil = createVigil(stack.config, { roles: ['intake'], logger: testLogger, kafka: stack.kafka, elasticsearch: stack.elasticsearch, http: false, intakeHttp: { host: '127.0.0.1', port: 0 } });
    await vigil.start();
    const address = vigil.intakeAddress();
    if (!address) throw new Error('the intake did not start');
    url = `http://127.0.0.1:${address.port}${KONG_INTAKE_PATH}`;
  });

  afterAll(async () => {
    await stopIntake(vigil, stack, topic);
  });

  it('produces every record of a batch and a single object to the raw topic, answering only after Kafka acknowledged', async () => {
    const batch = await post(JSON.stringify([kongRecord('req-1'), kongRecord('req-2', 401), kongRecord('req-3', 429)]));
    expect(batch).toMatchObject({ status: 200, body: { accepted: 3 } });
    const single = await post(JSON.stringify(kongRecord('req-4')));
    expect(single).toMatchObject({ status: 200, body: { accepted: 1 } });
    // The 200 came after the acknowledgement: the records are on the topic already.
    expect(await recordsOnTopic()).toBe(4);
    const messages = await readTopic(stack.kafka, topic, 4);
    const ids = messages.map((message) => (JSON.parse(message.value?.toString('utf8') ?? '{}') as { request: { id: string } }).request.id).sort();
    expect(ids).toEqual(['req-1', 'req-2', 'req-3', 'req-4']);
    expect(messages.every((message) => message.key?.toString('utf8') === '203.0.113.7')).toBe(true);
    expect(messages[0]?.headers?.['vigil-intake']?.toString()).toBe('kong-http-log');
    expect(vigil.intake?.stats()).toMatchObject({ accepted: 2, records: 4 });
    expect(await vigil.metrics.getSingleMetricAsString('vigil_intake_records_total')).toContain('vigil_intake_records_total 4');
    expect(await vigil.metrics.getSingleMetricAsString('vigil_intake_requests_total')).toContain('vigil_intake_requests_total{outcome="accepted"} 2');
  });

  it('created its raw topic as configuration creates every topic: the partitions and the retention (the replicas too; one broker here)', async () => {
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      expect(metadata?.partitions).toHaveLength(2);
      // Not the broker's own default (24 h in the local stack).
      const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }] });
      expect(described.resources[0]?.configEntries.find((entry) => entry.configName === 'retention.ms')?.configValue).toBe('172800000');
    } finally {
      await admin.disconnect();
    }
  });

  it('answers 401 to a wrong or missing token and produces nothing', async () => {
    const before = await recordsOnTopic();
    const wrong = await post(JSON.stringify(kongRecord('req-x')), { authorization: `Bearer ${TOKEN}x` });
    expect(wrong).toMatchObject({ status: 401, body: { error: 'wrong token' } });
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="vigil-intake"');
    const missing = await post(JSON.stringify(kongRecord('req-y')), {});
    expect(missing).toMatchObject({ status: 401, body: { error: 'missing "Authorization: Bearer <token>"' } });
    expect(await recordsOnTopic()).toBe(before);
  });

  it('answers 413 to a body over VIGIL_INTAKE_MAX_BODY_BYTES and produces nothing', async () => {
    const before = await recordsOnTopic();
    const big = JSON.stringify(Array.from({ length: 40 }, (_, index) => kongRecord(`req-big-${index}`)));
    expect(big.length).toBeGreaterThan(8192);
    const response = await post(big);
    expect(response.status).toBe(413);
    expect(response.body.error).toMatch(/^body of \d+ bytes is over the limit of 8192 \(VIGIL_INTAKE_MAX_BODY_BYTES\)$/);
    expect(await recordsOnTopic()).toBe(before);
  });

  it('answers 413 to a chunked body as soon as it passes the limit, without reading the rest', async () => {
    const before = await recordsOnTopic();
    const answer = await new Promise<string>((resolve) => {
      const posting = request(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked', 'content-type': 'application/json' } }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        response.on('end', () => resolve(`${response.statusCode ?? 0} ${body.trim()}`));
      });
      posting.on('error', (error) => resolve(`error ${error.message}`));
      // No Content-Length: the limit can only be found while reading. 200 KB would take a while
      // to read; the answer comes after the first 8 KB.
      let sent = 0;
      const more = (): void => {
        if (sent >= 200_000) {
          posting.end();
          return;
        }
        sent += 1000;
        if (posting.write('x'.repeat(1000))) setImmediate(more);
        else posting.once('drain', more);
      };
      more();
    });
    expect(answer).toBe('413 {"error":"body is over the limit of 8192 bytes (VIGIL_INTAKE_MAX_BODY_BYTES)"}');
    expect(await recordsOnTopic()).toBe(before);
  });

  it('answers 503 with Retry-After to a body that would pass VIGIL_INTAKE_MAX_BODIES_BYTES with the bodies in hand, and takes it once they are answered', async () => {
    const before = await recordsOnTopic();
    const statsBefore = vigil.intake?.stats();
    // Two uploads of 7,000 bytes each held open (14,000 of the 16,384 bytes), then a third.
    const held = ['req-held-1', 'req-held-2'].map((id) => {
      const head = `[${JSON.stringify(kongRecord(id))}`;
      const posting = request(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked', 'content-type': 'application/json' } });
      const answer = new Promise<string>((resolve) => {
        posting.on('response', (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
          response.on('end', () => resolve(`${response.statusCode ?? 0} ${body.trim()}`));
        });
        posting.on('error', (error) => resolve(`error ${error.message}`));
      });
      posting.write(head.padEnd(7_000, ' '));
      return { finish: () => posting.end(']'), answer };
    });
    // Until the server holds both: a probe that is not JSON is 400 while it fits, 503 once it doesn't.
    await waitFor('the held uploads to be read', async () => (await post('x'.repeat(7_000))).status === 503, 5_000);
    const refused = await post(`[${JSON.stringify(kongRecord('req-over'))}]`.padEnd(7_000, ' '));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.error).toBe('the intake holds 16384 bytes of bodies at once (VIGIL_INTAKE_MAX_BODIES_BYTES); retry later');
    // A body that declares its length (Kong's do) is refused before a byte of it is sent.
    const declared = await new Promise<string>((resolve) => {
      const posting = request(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': '7000' } }, (response) => {
        response.resume();
        resolve(`${response.statusCode ?? 0} ${response.headers['retry-after'] ?? ''}`);
      });
      posting.on('error', () => undefined);
      posting.flushHeaders();
    });
    expect(declared).toBe('503 1');
    for (const upload of held) upload.finish();
    expect(await Promise.all(held.map((upload) => upload.answer))).toEqual(['200 {"accepted":1}', '200 {"accepted":1}']);
    // What the answered bodies held was given back.
    expect(await post(`[${JSON.stringify(kongRecord('req-after'))}]`.padEnd(7_000, ' '))).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(await recordsOnTopic()).toBe(before + 3);
    // Counted as busy (the budget), not as unavailable (Kafka): an operator tells the two apart.
    const statsAfter = vigil.intake?.stats();
    expect((statsAfter?.busy ?? 0) - (statsBefore?.busy ?? 0)).toBeGreaterThanOrEqual(3);
    expect(statsAfter?.unavailable).toBe(statsBefore?.unavailable);
  });

  it('answers 400 naming the problem: not JSON, an empty batch, a record that is not an object; nothing produced', async () => {
    const before = await recordsOnTopic();
    const notJson = await post('{"request": ');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatch(/^body is not JSON: /);
    expect(await post('[]')).toMatchObject({ status: 400, body: { error: 'body is an empty array: expected a Kong log object or an array of them' } });
    // One bad record refuses the whole batch: Kong retries batches whole, so none is half-taken.
    expect(await post(JSON.stringify([kongRecord('req-ok'), 'text']))).toMatchObject({ status: 400, body: { error: 'record 1 is a string: expected a Kong log object' } });
    expect(await recordsOnTopic()).toBe(before);
  });

  it('answers 404 off its path and 405 to another method', async () => {
    const other = await fetch(url.replace(KONG_INTAKE_PATH, '/other'), { method: 'POST', body: '{}' });
    expect(other.status).toBe(404);
    const get = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(get.status).toBe(405);
  });

  // Node answered `100 Continue` itself before the intake saw the request: the caller sent a body
  // only to be refused for it.
  it('refuses a caller sending Expect: 100-continue before it sends its body, and tells an accepted one to send it', async () => {
    const exchange = (body: string, headers: Record<string, string>): Promise<string> =>
      new Promise((resolve) => {
        let continued = false;
        const posting = request(url, { method: 'POST', headers: { 'content-type': 'application/json', expect: '100-continue', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          response.on('end', () => resolve(`${continued ? 'continued ' : ''}${response.statusCode ?? 0} ${text.trim()}`));
        });
        posting.on('continue', () => {
          continued = true;
          posting.end(body);
        });
        posting.on('error', (error) => resolve(`${continued ? 'continued ' : ''}error ${error.message}`));
        posting.flushHeaders();
      });
    const before = await recordsOnTopic();
    const big = JSON.stringify(Array.from({ length: 40 }, (_, index) => kongRecord(`req-continue-big-${index}`)));
    expect(await exchange(big, { authorization: `Bearer ${TOKEN}` })).toMatch(/^413 \{"error":"body of \d+ bytes is over the limit of 8192 \(VIGIL_INTAKE_MAX_BODY_BYTES\)"\}$/);
    expect(await exchange(JSON.stringify(kongRecord('req-continue-wrong')), { authorization: `Bearer ${TOKEN}x` })).toBe('401 {"error":"wrong token"}');
    expect(await exchange(JSON.stringify(kongRecord('req-continue-ok')), { authorization: `Bearer ${TOKEN}` })).toBe('continued 200 {"accepted":1}');
    expect(await recordsOnTopic()).toBe(before + 1);
  });

  // Each 1-byte chunk was held as its own Buffer (about 500 MB of heap for four 1 MiB bodies).
  it('takes a body sent in thousands of 1-byte chunks, and produces it intact', async () => {
    const before = await recordsOnTopic();
    const port = Number(new URL(url).port);
    const body = JSON.stringify([{ ...kongRecord('req-tiny-chunks'), response: { status: 200, size: 512, headers: { marker: 'tiny-chunks-é-✓' } } }]);
    const chunks = [...Buffer.from(body)].map((byte) => Buffer.concat([Buffer.from('1\r\n'), Buffer.from([byte]), Buffer.from('\r\n')]));
    const head = `POST ${KONG_INTAKE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n`;
    const answer = await rawExchange(port, Buffer.concat([Buffer.from(head), ...chunks, Buffer.from('0\r\n\r\n')]), 0);
    expect(statusAndBody(answer)).toBe('HTTP/1.1 200 OK {"accepted":1}');
    expect(await recordsOnTopic()).toBe(before + 1);
    const produced = (await readTopic(stack.kafka, topic, before + 1)).map((message) => message.value?.toString('utf8') ?? '');
    expect(produced).toContain(JSON.stringify((JSON.parse(body) as unknown[])[0]));
  });

  it('routes an absolute-form request target by its path', async () => {
    const before = await recordsOnTopic();
    const port = Number(new URL(url).port);
    const body = JSON.stringify(kongRecord('req-absolute'));
    const answer = await rawExchange(port, `POST http://127.0.0.1:${port}${KONG_INTAKE_PATH}?from=proxy HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, 0);
    expect(statusAndBody(answer)).toBe('HTTP/1.1 200 OK {"accepted":1}');
    const other = await rawExchange(port, `POST http://127.0.0.1:${port}/other HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`, 0);
    expect(statusAndBody(other)).toBe(`HTTP/1.1 404 Not Found {"error":"not found: the intake serves POST ${KONG_INTAKE_PATH}"}`);
    expect(await recordsOnTopic()).toBe(before + 1);
  });

  it('answers 415 naming an encoded body or a type that is not application/json; takes a body behind a byte order mark', async () => {
    const before = await recordsOnTopic();
    const body = JSON.stringify(kongRecord('req-gzip'));
    const gzipped = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: `Bearer ${TOKEN}` }, body: gzipSync(body) });
    expect({ status: gzipped.status, body: await gzipped.json() }).toEqual({ status: 415, body: { error: 'content-encoding gzip is not supported: send the body uncompressed (identity)' } });
    expect(await post(body, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json-seq' })).toMatchObject({ status: 415, body: { error: 'content-type application/json-seq is not JSON: send application/json' } });
    expect(await post(body, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'identity' })).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(await post(`\ufeff${JSON.stringify([kongRecord('req-bom')])}`)).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(await recordsOnTopic()).toBe(before + 2);
  });

  it('answers 429 with Retry-After beyond its rate, and produces nothing for those', async () => {
    const config = isolatedConfig({ VIGIL_INTAKE_TOKEN: TOKEN, VIGIL_INTAKE_TOPIC: topic, VIGIL_INTAKE_REQUESTS_PER_SECOND: '1', VIGIL_INTAKE_BURST: '1' });
    const limited = createVigil(config, { roles: ['intake'], logger: testLogger, kafka: stack.kafka, elasticsearch: stack.elasticsearch, http: false, intakeHttp: { host: '127.0.0.1', port: 0 } });
    await limited.start();
    try {
      const at = `http://127.0.0.1:${limited.intakeAddress()?.port ?? 0}${KONG_INTAKE_PATH}`;
      const before = await recordsOnTopic();
      const answers = [];
      for (let attempt = 0; attempt < 4; attempt++) answers.push(await post(JSON.stringify(kongRecord(`req-rate-${attempt}`)), undefined, at));
      expect(answers[0]?.status).toBe(200);
      const refused = answers.filter((answer) => answer.status === 429);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      expect(refused[0]?.headers.get('retry-after')).toBe('1');
      expect(refused[0]?.body.error).toBe('over the intake rate (VIGIL_INTAKE_REQUESTS_PER_SECOND, VIGIL_INTAKE_BURST)');
      expect(await recordsOnTopic()).toBe(before + answers.filter((answer) => answer.status === 200).length);
    } finally {
      await limited.stop();
    }
  });
});

describe('the HTTP intake when Kafka refuses records for good', () => {
  // Every send failure was a 503: Kong retried a record the topic can never take until it dropped
  // the batch, and it was counted as an outage.
  it('answers 413 for a record over the raw topic\'s own size limit, counted as too large, not unavailable', async () => {
    const topic = `it-raw-${randomBytes(4).toString('hex')}.kong`;
    const stack = openStack(isolatedConfig({ VIGIL_INTAKE_TOKEN: TOKEN, VIGIL_INTAKE_TOPIC: topic, VIGIL_MAX_MESSAGE_BYTES: '65536' }));
    const admin = stack.kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }], waitForLeaders: true });
    await admin.disconnect();
    const vigil = createVigil(stack.config, { roles: ['intake'], logger: testLogger, kafka: stack.kafka, elasticsearch: stack.elasticsearch, http: false, intakeHttp: { host: '127.0.0.1', port: 0 } });
    await vigil.start();
    try {
      const at = `http://127.0.0.1:${vigil.intakeAddress()?.port ?? 0}${KONG_INTAKE_PATH}`;
      const record = { ...kongRecord('req-huge'), response: { status: 200, size: 512, headers: { padding: 'p'.repeat(20_000) } } };
      const response = await fetch(at, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(record) });
      expect({ status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) }).toEqual({
        status: 413,
        retryAfter: null,
        body: { error: "a record is larger than the raw topic takes (VIGIL_MAX_MESSAGE_BYTES is above the broker's limit)" },
      });
      const small = await fetch(at, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(kongRecord('req-small')) });
      expect(small.status).toBe(200);
    } finally {
      await stopIntake(vigil, stack, topic);
    }
  });
});

describe('the HTTP intake with a body larger than a Kafka batch may be', () => {
  it('takes 1.3 MB of one client\'s records (over the broker\'s 1 MiB batch limit, all on one partition) and produces every one, in order', async () => {
    const topic = `it-raw-${randomBytes(4).toString('hex')}.kong`;
    const stack = openStack(isolatedConfig({ VIGIL_INTAKE_TOKEN: TOKEN, VIGIL_INTAKE_TOPIC: topic, VIGIL_INTAKE_MAX_BODY_BYTES: String(4 * 1024 * 1024) }));
    const vigil = createVigil(stack.config, { roles: ['intake'], logger: testLogger, kafka: stack.kafka, elasticsearch: stack.elasticsearch, http: false, intakeHttp: { host: '127.0.0.1', port: 0 } });
    await vigil.start();
    try {
      const address = vigil.intakeAddress();
      if (!address) throw new Error('the intake did not start');
      // 250 records of about 5.3 kB, every one from 203.0.113.7: one key, one partition.
      const sent = Array.from({ length: 250 }, (_, n) => `big-${String(n).padStart(3, '0')}`);
      const records = sent.map((id) => ({ ...kongRecord(id), response: { status: 200, size: 512, headers: { padding: 'p'.repeat(5_000) } } }));
      const body = JSON.stringify(records);
      expect(Buffer.byteLength(body)).toBeGreaterThan(1_300_000);
      const response = await fetch(`http://127.0.0.1:${address.port}${KONG_INTAKE_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body });
      expect({ status: response.status, body: await response.json() }).toEqual({ status: 200, body: { accepted: 250 } });
      const messages = await readTopic(stack.kafka, topic, 250);
      const ids = messages.map((message) => (JSON.parse(message.value?.toString('utf8') ?? '{}') as { request: { id: string } }).request.id);
      expect(ids).toEqual(sent);
    } finally {
      await stopIntake(vigil, stack, topic);
    }
  });
});
