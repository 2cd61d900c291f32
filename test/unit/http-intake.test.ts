import { Writable } from 'node:stream';
import { BodyAccumulator, IntakeRefusal, MAX_CONTAINERS_PER_BODY, MAX_RECORDS_PER_BODY, intakePathOf, jsonBeyond, recordsOfBody, tokenBucket, topLevelItems, unsupportedMediaOf } from '../../ingest';
import { ConfigError, createLogger, loadConfig, secretsOf } from '../../platform';

const limits = { maxRecordBytes: 1024, maxJsonDepth: 4 };

function refusalOf(body: string): { status: number; message: string } {
  try {
    recordsOfBody(Buffer.from(body), limits);
  } catch (error) {
    if (error instanceof IntakeRefusal) return { status: error.status, message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('the intake body check', () => {
  it('takes one log object or an array of them, each serialized as it will be produced', () => {
    expect(recordsOfBody(Buffer.from('{"a": 1}'), limits)).toEqual([{ value: '{"a":1}', key: null }]);
    expect(recordsOfBody(Buffer.from('[{"a": 1}, {"b": {"c": 2}}]'), limits).map((record) => record.value)).toEqual(['{"a":1}', '{"b":{"c":2}}']);
  });

  it('keys each record by its own client_ip, never by one the client put deeper (a query string, a header)', () => {
    const body = JSON.stringify([
      { request: { querystring: { client_ip: '6.6.6.6' } }, client_ip: '203.0.113.9' },
      { request: { headers: { client_ip: '6.6.6.6' } } },
      { client_ip: 'not an address' },
    ]);
    expect(recordsOfBody(Buffer.from(body), { ...limits, maxJsonDepth: 8 }).map((record) => record.key)).toEqual(['203.0.113.9', null, null]);
  });

  // 8 MiB of `{},` held 2.8 million records: about 420 MB of heap, and as many Kafka messages.
  it(`refuses a body of more than ${MAX_RECORDS_PER_BODY} records before parsing it`, () => {
    const many = `[${Array.from({ length: MAX_RECORDS_PER_BODY + 1 }, () => '{}').join(',')}]`;
    expect(refusalOf(many)).toEqual({ status: 413, message: `body holds more than ${MAX_RECORDS_PER_BODY} records, over the limit per request: lower the plugin's queue.max_batch_size` });
    expect(recordsOfBody(Buffer.from(`[${Array.from({ length: MAX_RECORDS_PER_BODY }, () => '{}').join(',')}]`), limits)).toHaveLength(MAX_RECORDS_PER_BODY);
  });

  it.each<[string, number]>([
    ['{"a": [1, 2, 3]}', 1],
    ['  [ ]', 0],
    ['[{"a": "x,y,[z"}, {"b": [1, 2]}, {"c": "q\\",r,[s\\\\"}]', 3],
    ['[{"a": {"b": [1, {"c": 2}]}}]', 1],
  ])('counts the top-level items of %s on the bytes', (body, items) => {
    expect(topLevelItems(Buffer.from(body), 10)).toBe(items);
  });

  it('takes a body holding a byte that is not UTF-8, as U+FFFD, rather than losing its records', () => {
    const records = recordsOfBody(Buffer.from([0x5b, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d, 0x2c, 0x7b, 0x22, 0x62, 0x22, 0x3a, 0x31, 0x7d, 0x5d]), limits);
    expect(records.map((record) => record.value)).toEqual(['{"a":"\ufffd"}', '{"b":1}']);
  });

  it('refuses with a status and a message naming what is wrong', () => {
    expect(refusalOf('nope').status).toBe(400);
    expect(refusalOf('nope').message).toMatch(/^body is not JSON: /);
    expect(refusalOf('[]')).toEqual({ status: 400, message: 'body is an empty array: expected a Kong log object or an array of them' });
    expect(refusalOf('"text"')).toEqual({ status: 400, message: 'body is a string: expected a Kong log object' });
    expect(refusalOf('[{"a":1}, null]')).toEqual({ status: 400, message: 'record 1 is null: expected a Kong log object' });
    expect(refusalOf('[[{"a":1}]]')).toEqual({ status: 400, message: 'record 0 is an array: expected a Kong log object' });
    expect(refusalOf('{"a":{"b":{"c":{"d":{"e":1}}}}}')).toEqual({ status: 400, message: 'body nests 5 deep, over the limit of 4 (VIGIL_MAX_JSON_DEPTH)' });
    expect(refusalOf(JSON.stringify([{ a: 1 }, { big: 'x'.repeat(2000) }]))).toEqual({
      status: 413,
      message: 'record 1 is 2010 bytes, over the limit of 1024 per record (VIGIL_MAX_MESSAGE_BYTES)',
    });
  });
});

// A UTF-8 byte order mark before the JSON was refused as 400 "Unexpected token", where the
// pipeline's classify drops it; and the record count did not see the array behind it.
describe('the intake body with a byte order mark', () => {
  it('drops a leading UTF-8 byte order mark, as classify does, and still counts the records behind it', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    expect(recordsOfBody(Buffer.concat([bom, Buffer.from('[{"a": 1}, {"b": 2}]')]), limits).map((record) => record.value)).toEqual(['{"a":1}', '{"b":2}']);
    expect(recordsOfBody(Buffer.concat([bom, Buffer.from('{"a": 1}')]), limits)).toEqual([{ value: '{"a":1}', key: null }]);
    const many = Buffer.concat([bom, Buffer.from(`[${Array.from({ length: MAX_RECORDS_PER_BODY + 1 }, () => '{}').join(',')}]`)]);
    let refusal: unknown;
    try {
      recordsOfBody(many, limits);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toMatchObject({ status: 413, stat: 'tooLarge' });
  });
});

describe('the intake media checks', () => {
  // `application/json\b` matched before the hyphen of application/json-seq; a gzip body was
  // refused as "body is not JSON", naming the wrong problem.
  it('takes application/json, with parameters or none, or no content-type, uncompressed (identity)', () => {
    for (const type of ['application/json', 'Application/JSON', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', undefined]) {
      expect(unsupportedMediaOf({ 'content-type': type })).toBeUndefined();
    }
    expect(unsupportedMediaOf({ 'content-type': 'application/json', 'content-encoding': 'identity' })).toBeUndefined();
    expect(unsupportedMediaOf({ 'content-type': 'application/json', 'content-encoding': 'Identity' })).toBeUndefined();
  });

  it.each<[string, string]>([
    ['application/json-seq', 'content-type application/json-seq is not JSON: send application/json'],
    ['application/jsonl', 'content-type application/jsonl is not JSON: send application/json'],
    ['application/json.x', 'content-type application/json.x is not JSON: send application/json'],
    ['application/vnd.example+json', 'content-type application/vnd.example+json is not JSON: send application/json'],
    ['text/plain', 'content-type text/plain is not JSON: send application/json'],
    ['application/x-www-form-urlencoded', 'content-type application/x-www-form-urlencoded is not JSON: send application/json'],
  ])('refuses content-type %s, naming it', (type, message) => {
    expect(unsupportedMediaOf({ 'content-type': type })).toBe(message);
  });

  it('refuses any content-encoding but identity, naming it', () => {
    expect(unsupportedMediaOf({ 'content-type': 'application/json', 'content-encoding': 'gzip' })).toBe('content-encoding gzip is not supported: send the body uncompressed (identity)');
    expect(unsupportedMediaOf({ 'content-encoding': 'identity, br' })).toBe('content-encoding br is not supported: send the body uncompressed (identity)');
    expect(unsupportedMediaOf({ 'content-encoding': 'Deflate' })).toBe('content-encoding deflate is not supported: send the body uncompressed (identity)');
  });

  // An absolute-form target (a client going through a proxy) was answered 404.
  it('routes by the path of an origin-form or absolute-form request target', () => {
    expect(intakePathOf('/kong/http-log')).toBe('/kong/http-log');
    expect(intakePathOf('/kong/http-log?x=1')).toBe('/kong/http-log');
    expect(intakePathOf('http://vigil-intake.internal:9465/kong/http-log')).toBe('/kong/http-log');
    expect(intakePathOf('http://vigil-intake.internal:9465/kong/http-log?x=1')).toBe('/kong/http-log');
    expect(intakePathOf('http://vigil-intake.internal:9465/other')).toBe('/other');
    expect(intakePathOf(undefined)).toBe('/');
  });
});

// Each `data` event was kept as its own Buffer: four 1 MiB bodies sent in 1-byte chunks held
// about 500 MB of heap while 4 MiB were counted.
describe('the intake body accumulator', () => {
  it('holds a body sent in a million 1-byte chunks in one buffer at most twice its size, content intact', () => {
    const limit = 4 * 1024 * 1024;
    const body = new BodyAccumulator(limit);
    const text = Buffer.from(JSON.stringify([{ padding: 'p'.repeat(1024 * 1024 - 20) }]));
    for (let index = 0; index < text.length; index++) body.append(text.subarray(index, index + 1));
    expect(body.bytes().equals(text)).toBe(true);
    const held = body.held();
    expect(held.bytes).toBe(text.length);
    expect(held.buffers).toBe(1);
    expect(held.capacity).toBeLessThanOrEqual(2 * text.length);
    // 16 KiB doubled to 2 MiB: seven times.
    expect(held.growths).toBeLessThanOrEqual(8);
  });

  it('takes a declared length within the limit at once, and never grows past the limit', () => {
    const declared = new BodyAccumulator(1000, 600);
    for (let index = 0; index < 600; index++) declared.append(Buffer.from([0x61]));
    expect(declared.held()).toEqual({ bytes: 600, capacity: 600, buffers: 1, growths: 0 });
    const capped = new BodyAccumulator(100_000);
    capped.append(Buffer.alloc(90_000, 0x62));
    capped.append(Buffer.alloc(10_000, 0x63));
    expect(capped.held().capacity).toBe(100_000);
    expect(capped.bytes().toString('latin1')).toBe(`${'b'.repeat(90_000)}${'c'.repeat(10_000)}`);
    // A declared length over the limit (refused before reading) allocates no more than the start.
    expect(new BodyAccumulator(1000, 1_000_000).held().capacity).toBe(1000);
  });
});

describe('the intake token bucket', () => {
  it('takes the burst at once, then refuses with the seconds until a token is back, and refills at the rate', () => {
    let now = 0;
    const bucket = tokenBucket(2, 3, () => now);
    expect([bucket.take(), bucket.take(), bucket.take()].every((answer) => answer.ok)).toBe(true);
    expect(bucket.take()).toEqual({ ok: false, retryAfterSeconds: 1 });
    now += 500;
    expect(bucket.take()).toEqual({ ok: true });
    expect(bucket.take().ok).toBe(false);
    now += 60_000;
    // Never more than the burst, however long it was idle.
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()].map((answer) => answer.ok)).toEqual([true, true, true, false]);
  });

  it('a clock stepped back an hour refills nothing and drains nothing: the next second refills as usual', () => {
    let now = 10_000_000;
    const bucket = tokenBucket(2, 3, () => now);
    bucket.take();
    now -= 3_600_000;
    expect(bucket.take()).toEqual({ ok: true });
    expect(bucket.take()).toEqual({ ok: true });
    expect(bucket.take()).toEqual({ ok: false, retryAfterSeconds: 1 });
    now += 1000;
    expect(bucket.take()).toEqual({ ok: true });
  });
});

describe('the intake settings', () => {
  const token = 'a-shared-intake-token-0123456789';

  it('treat VIGIL_INTAKE_TOKEN as a secret the logger blanks', () => {
    const config = loadConfig({ VIGIL_INTAKE_TOKEN: token });
    expect(secretsOf(config)).toContain(token);
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger({ level: 'info', destination, secrets: secretsOf(config) });
    logger.info({ config }, `the token is ${token}`);
    expect(lines.join('')).not.toContain(token);
    expect(lines.join('')).toContain('the token is');
  });

  it('refuse a short token or one with spaces, naming the variable', () => {
    const refusal = (value: string): string[] => {
      try {
        loadConfig({ VIGIL_INTAKE_TOKEN: value });
      } catch (error) {
        if (error instanceof ConfigError) return [...error.issues];
      }
      return [];
    };
    expect(refusal('short')).toEqual(['VIGIL_INTAKE_TOKEN: at least 24 characters']);
    expect(refusal('a token with spaces in it, long enough')).toEqual(['VIGIL_INTAKE_TOKEN: printable ASCII without spaces']);
  });
});

describe('the intake\'s bound on objects and arrays per body', () => {
  // Only top-level items were counted: one record holding a huge array of empty objects was parsed
  // whole (about 150 MB of heap for an 8 MiB body).
  it('refuses a body nesting more objects and arrays than the bound, before parsing, however few its records', () => {
    const body = Buffer.from(`[{"a":[${'{},'.repeat(MAX_CONTAINERS_PER_BODY)}{}]}]`);
    let refusal: unknown;
    try {
      recordsOfBody(body, { maxRecordBytes: 64 * 1024 * 1024, maxJsonDepth: 64 });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(IntakeRefusal);
    expect(refusal).toMatchObject({ status: 413, stat: 'tooLarge', message: `body holds more than ${MAX_CONTAINERS_PER_BODY} JSON objects and arrays, far more than Kong log records have: refused before parsing` });
  });

  it('counts objects and arrays at any depth, not brackets inside strings, and says which bound is passed first', () => {
    const five = Buffer.from('[{"a":[1,{"b":"[{not}]"}]},{}]');
    expect(jsonBeyond(five, { depth: 64, containers: 5 })).toBeUndefined();
    expect(jsonBeyond(five, { depth: 64, containers: 4 })).toBe('containers');
    expect(jsonBeyond(Buffer.from('{"q":"\\"[{"}'), { depth: 1, containers: 1 })).toBeUndefined();
    expect(jsonBeyond(Buffer.from('[[[[[[[[[['), { depth: 3, containers: 100 })).toBe('depth');
  });
});

describe('alert destinations', () => {
  // Every other bad setting was a ConfigError naming its variable (exit 2); this one exited 1
  // with "invalid alert destinations" and no variable.
  it('refuses a bad VIGIL_ALERT_DESTINATIONS as a configuration error naming the variable, before connecting to anything', async () => {
    const { createVigil } = await import('../../app');
    const refusal = (destinations: string): unknown => {
      try {
        createVigil(loadConfig({ VIGIL_ALERT_DESTINATIONS: destinations }), { roles: ['alerting'] });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const notJson = refusal('[{');
    expect(notJson).toBeInstanceOf(ConfigError);
    expect((notJson as ConfigError).issues).toEqual(['VIGIL_ALERT_DESTINATIONS: destinations: not valid JSON']);
    const badEntry = refusal('[{"type":"webhook","name":"x"}]') as ConfigError;
    expect(badEntry).toBeInstanceOf(ConfigError);
    expect(badEntry.issues.every((issue) => issue.startsWith('VIGIL_ALERT_DESTINATIONS: destinations[0]'))).toBe(true);
  });
});

describe('vigil intake', () => {
  it('refuses to start without VIGIL_INTAKE_TOKEN, naming it, before connecting to anything', async () => {
    const { createVigil } = await import('../../app');
    const config = loadConfig({});
    expect(() => createVigil(config, { roles: ['intake'] })).toThrow(ConfigError);
    expect(() => createVigil(config, { roles: ['intake'] })).toThrow(/VIGIL_INTAKE_TOKEN/);
  });

  // Roles named in compose's --roles ingest left the intake off with the token set: gateways got
  // connection refused, and nothing said why.
  it('says at creation when VIGIL_INTAKE_TOKEN is set but the roles named leave the intake out', async () => {
    const { createVigil } = await import('../../app');
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
    const config = loadConfig({ VIGIL_INTAKE_TOKEN: 'a-token-of-twenty-four-chars' });
    // Made, never started: stopped at once, which closes the clients they made.
    for (const made of [createVigil(config, { roles: ['ingest'], logger }), createVigil(config, { roles: ['ingest', 'intake'], logger }), createVigil(loadConfig({}), { roles: ['ingest'], logger }), createVigil(config, { roles: ['alerting'], logger })]) await made.stop();
    const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((line) => line.level === 40);
    expect(warnings.map((line) => line.msg)).toEqual(['VIGIL_INTAKE_TOKEN is set but the intake is not among the roles: this process serves no intake (add it: --roles ingest,intake)']);
  });

  // `vigil intake`, and an ingest with detection off, made one anyway: it reconnected to REDIS_URL
  // for as long as the process ran, logging "redis connection error" every 30 s, while /readyz
  // said Redis was "not used by this process".
  it('makes a Redis client only where a part keeps state there: the alerting, or an ingest with detection on', async () => {
    const { createVigil } = await import('../../app');
    const logger = createLogger({ level: 'silent' });
    const token = 'a-token-of-twenty-four-chars';
    const made = [
      createVigil(loadConfig({ VIGIL_INTAKE_TOKEN: token }), { roles: ['intake'], logger }),
      createVigil(loadConfig({ VIGIL_DETECTION: 'off' }), { roles: ['ingest'], logger }),
      createVigil(loadConfig({ VIGIL_DETECTION: 'off', VIGIL_INTAKE_TOKEN: token }), { roles: ['ingest', 'intake'], logger }),
      createVigil(loadConfig({}), { roles: ['ingest'], logger }),
      createVigil(loadConfig({ VIGIL_DETECTION: 'off' }), { roles: ['alerting'], logger }),
      createVigil(loadConfig({ VIGIL_DETECTION: 'off', VIGIL_INTAKE_TOKEN: token }), { logger }),
    ];
    try {
      expect(made.map((vigil) => vigil.redis !== undefined)).toEqual([false, false, false, true, true, true]);
    } finally {
      // Made, never started: stopped at once, which closes the clients they made.
      for (const vigil of made) await vigil.stop();
    }
  });
});
