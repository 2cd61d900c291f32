import { REDACT_PATHS, createLogger, loadConfig, scrubSecrets, secretsOf } from '../../platform';

/** A logger writing into an array, and the parsed lines. */
function collectingLogger(level?: string): { logger: ReturnType<typeof createLogger>; lines: string[]; records: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const SECRETS = {
  password: 'hunter2-password',
  token: 'tok-5f1b9c',
  apiKey: 'ak-9d8e7f',
  authorization: 'Bearer eyJhbGciOi.secret.jwt',
  cookie: 'sid=cookie-secret',
  sessionId: 'sess-0badc0ffee',
  secret: 'client-secret-123',
};

describe('createLogger redaction', () => {
  it('redacts secrets at the top level', () => {
    const { logger, lines, records } = collectingLogger();
    logger.info({ ...SECRETS, eventId: 'evt-1' }, 'top level');
    for (const secret of Object.values(SECRETS)) expect(lines.join('')).not.toContain(secret);
    expect(records()[0]).toMatchObject({
      password: '[redacted]',
      token: '[redacted]',
      apiKey: '[redacted]',
      authorization: '[redacted]',
      cookie: '[redacted]',
      sessionId: '[redacted]',
      secret: '[redacted]',
      eventId: 'evt-1',
    });
  });

  it('redacts secrets one level down, e.g. { user: { sessionId } }', () => {
    const { logger, lines, records } = collectingLogger();
    logger.warn({ user: { id: 'u-1', sessionId: SECRETS.sessionId, password: SECRETS.password }, client: { token: SECRETS.token, apiKey: SECRETS.apiKey } }, 'nested');
    const text = lines.join('');
    for (const secret of [SECRETS.sessionId, SECRETS.password, SECRETS.token, SECRETS.apiKey]) expect(text).not.toContain(secret);
    expect(records()[0]).toMatchObject({
      user: { id: 'u-1', sessionId: '[redacted]', password: '[redacted]' },
      client: { token: '[redacted]', apiKey: '[redacted]' },
    });
  });

  it('redacts request headers: { req: { headers: { authorization, cookie } } }', () => {
    const { logger, lines, records } = collectingLogger();
    logger.info(
      { req: { method: 'GET', url: '/accounts/1', headers: { authorization: SECRETS.authorization, cookie: SECRETS.cookie, accept: 'application/json' } } },
      'request',
    );
    expect(lines.join('')).not.toContain(SECRETS.authorization);
    expect(lines.join('')).not.toContain(SECRETS.cookie);
    expect(records()[0]).toMatchObject({
      req: { method: 'GET', url: '/accounts/1', headers: { authorization: '[redacted]', cookie: '[redacted]', accept: 'application/json' } },
    });
  });

  it('redacts a session id two levels down', () => {
    const { logger, lines } = collectingLogger();
    logger.info({ context: { user: { sessionId: SECRETS.sessionId } } }, 'deep session');
    expect(lines.join('')).not.toContain(SECRETS.sessionId);
    expect(lines.join('')).toContain('[redacted]');
  });

  it('redacts secrets carried on an error object', () => {
    const { logger, lines, records } = collectingLogger();
    const error = Object.assign(new Error('login failed'), { password: SECRETS.password, token: SECRETS.token });
    logger.error({ err: error }, 'failed');
    expect(lines.join('')).not.toContain(SECRETS.password);
    expect(lines.join('')).not.toContain(SECRETS.token);
    expect(records()[0]).toMatchObject({ err: { type: 'Error', message: 'login failed', password: '[redacted]', token: '[redacted]' } });
  });

  it('redacts the bindings of child loggers too', () => {
    const { logger, lines, records } = collectingLogger();
    logger.child({ component: 'ingest', token: SECRETS.token }).info({ secret: SECRETS.secret }, 'child');
    expect(lines.join('')).not.toContain(SECRETS.token);
    expect(lines.join('')).not.toContain(SECRETS.secret);
    expect(records()[0]).toMatchObject({ component: 'ingest', token: '[redacted]', secret: '[redacted]' });
  });

  it('redacts a PagerDuty routing key in a destination and in an Events API body, e.g. a notifier dead letter', () => {
    const { logger, lines, records } = collectingLogger();
    logger.error({ destination: { name: 'pager', routingKey: 'rk-destination' }, deadLetter: { payload: { routing_key: 'rk-body', event_action: 'trigger' } } }, 'dead letter');
    expect(lines.join('')).not.toMatch(/rk-destination|rk-body/);
    expect(records()[0]).toMatchObject({ destination: { routingKey: '[redacted]' }, deadLetter: { payload: { routing_key: '[redacted]', event_action: 'trigger' } } });
  });

  it('redacts the arguments of a Redis command on a reply error: a refused AUTH carries the password, however short', () => {
    const { logger, lines, records } = collectingLogger();
    // As ioredis rejects a wrong password: a reply error with the command attached.
    const error = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), { name: 'ReplyError', command: { name: 'auth', args: ['vigil', 'pw5x'] } });
    logger.error({ err: error }, 'redis: connection');
    logger.warn({ store: { err: error } }, 'nested');
    expect(lines.join('')).not.toContain('pw5x');
    expect(records()[0]).toMatchObject({ err: { message: 'WRONGPASS invalid username-password pair or user is disabled.', command: { name: 'auth', args: '[redacted]' } } });
  });

  it('blanks a password given inside ELASTICSEARCH_URL or REDIS_URL, as written and decoded', () => {
    const config = loadConfig({ ELASTICSEARCH_URL: 'https://elastic:s3cr%40t-es-pass@es.internal:9200', REDIS_URL: 'rediss://:redis-url-pass@redis.internal:6380' });
    expect(secretsOf(config)).toEqual(expect.arrayContaining(['s3cr%40t-es-pass', 's3cr@t-es-pass', 'redis-url-pass']));
    expect(secretsOf(loadConfig({}))).toStrictEqual([]);
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) }, secrets: secretsOf(config) });
    logger.error({ err: new Error('connect to https://elastic:s3cr@t-es-pass@es.internal:9200 refused (redis-url-pass)') }, 'failed');
    expect(lines.join('')).not.toMatch(/s3cr@t-es-pass|redis-url-pass/);
  });

  // What escapes the CLI is printed by bin/vigil.js, past the logger: main() scrubs it with this.
  it('scrubs secrets out of a plain text, as written and as JSON writes them, and leaves other text alone', () => {
    const config = loadConfig({ REDIS_URL: 'rediss://:redis-url-pass@redis.internal:6380', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'vigil', KAFKA_SASL_PASSWORD: 'pa"ss-word' });
    const text = 'redis (rediss://redis.internal:6380): unreachable: AUTH redis-url-pass refused; kafka said {"password":"pa\\"ss-word"} and pa"ss-word';
    expect(scrubSecrets(text, secretsOf(config))).toBe('redis (rediss://redis.internal:6380): unreachable: AUTH [redacted] refused; kafka said {"password":"[redacted]"} and [redacted]');
    expect(scrubSecrets('nothing secret here', secretsOf(config))).toBe('nothing secret here');
    expect(scrubSecrets('anything', [''])).toBe('anything');
  });

  it('leaves ordinary fields alone and adds the service name', () => {
    const { logger, records } = collectingLogger();
    logger.info({ eventId: 'evt-1', topic: 'vigil.events.policy', count: 3 }, 'plain');
    expect(records()[0]).toMatchObject({ level: 30, service: 'vigil', eventId: 'evt-1', topic: 'vigil.events.policy', count: 3, msg: 'plain' });
  });

  it('covers the secrets the style guide names in its path list', () => {
    for (const path of ['password', 'token', 'apiKey', 'authorization', '*.headers.authorization', 'cookie', 'sessionId']) {
      expect(REDACT_PATHS).toContain(path);
    }
  });
});

describe('createLogger levels', () => {
  it('defaults to info: debug lines are dropped', () => {
    const { logger, records } = collectingLogger();
    logger.debug('hidden');
    logger.info('shown');
    expect(records().map((record) => record.msg)).toStrictEqual(['shown']);
  });

  it('honours the configured level', () => {
    const { logger, records } = collectingLogger('warn');
    logger.info('hidden');
    logger.warn('shown');
    expect(records().map((record) => [record.level, record.msg])).toStrictEqual([[40, 'shown']]);
  });
});
