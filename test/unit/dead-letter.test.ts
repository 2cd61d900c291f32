import type { IHeaders, Message } from 'kafkajs';
import { createHash } from 'node:crypto';
import { DEAD_LETTER_KEY_MAX_BYTES, DEAD_LETTER_PREFIX_BYTES, DEAD_LETTER_WHOLE_MAX_BYTES, REDRIVE_HEADER, fromDeadLetterMessage, redriveOf, toDeadLetterMessage, toRedriveMessage, type DeadLetterRecord } from '../../ingest';
import { sendBatches } from '../../platform';

const now = new Date('2024-05-01T10:31:02.500Z');

function record(overrides: Partial<Omit<DeadLetterRecord, 'deadLetteredAt'>> = {}): Omit<DeadLetterRecord, 'deadLetteredAt'> {
  return {
    reasonCode: 'schema_invalid',
    reason: 'client.ip: Invalid IP address',
    topic: 'vigil.events.policy',
    partition: 4,
    offset: '9007199254740993',
    value: Buffer.from('{"family":"policy","client":{"ip":"999.1.1.1"}}'),
    originalKey: Buffer.from('user-1'),
    ...overrides,
  };
}

/** The message as a consumer receives it: kafkajs delivers every header value as a Buffer. */
function delivered(message: Message): { value: Buffer | null; headers: IHeaders } {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value === undefined) continue;
    headers[name] = Buffer.isBuffer(value) ? Buffer.from(value) : Buffer.from(String(value), 'utf8');
  }
  const value = message.value;
  return { value: value === null || value === undefined ? null : Buffer.from(value), headers };
}

describe('toDeadLetterMessage', () => {
  it('keys the message by topic:partition:offset, so a redelivered batch writes the same key', () => {
    const message = toDeadLetterMessage(record(), now);
    expect(message.key).toBe('vigil.events.policy:4:9007199254740993');
    expect(toDeadLetterMessage(record(), new Date(0)).key).toBe(message.key);
  });

  it('keeps the original bytes untouched as the value', () => {
    const original = record();
    const message = toDeadLetterMessage(original, now);
    expect(Buffer.isBuffer(message.value)).toBe(true);
    expect(message.value).toStrictEqual(original.value);
  });

  it('puts the reason, the position and the time in headers', () => {
    expect(toDeadLetterMessage(record(), now).headers).toStrictEqual({
      'vigil-reason-code': 'schema_invalid',
      'vigil-reason': 'client.ip: Invalid IP address',
      'vigil-source-topic': 'vigil.events.policy',
      'vigil-source-partition': '4',
      'vigil-source-offset': '9007199254740993',
      'vigil-dead-lettered-at': '2024-05-01T10:31:02.500Z',
      'vigil-original-key': Buffer.from('user-1'),
    });
  });

  it('truncates the reason to 2000 characters', () => {
    const reason = 'x'.repeat(1990) + 'y'.repeat(1000);
    const headers = toDeadLetterMessage(record({ reason }), now).headers;
    const written = headers?.['vigil-reason'];
    expect(typeof written).toBe('string');
    expect(String(written)).toHaveLength(2000);
    expect(String(written)).toBe(reason.slice(0, 2000));
  });

  it('leaves a reason of exactly 2000 characters whole', () => {
    const reason = 'r'.repeat(2000);
    expect(toDeadLetterMessage(record({ reason }), now).headers?.['vigil-reason']).toBe(reason);
  });

  it('has no original-key header for a message without a key', () => {
    expect(toDeadLetterMessage(record({ originalKey: null }), now).headers).not.toHaveProperty('vigil-original-key');
  });
});

describe('fromDeadLetterMessage', () => {
  it('reads back what toDeadLetterMessage wrote, with headers as Buffers', () => {
    const original = record();
    const read = fromDeadLetterMessage(delivered(toDeadLetterMessage(original, now)));
    expect(read).toStrictEqual({ ...original, deadLetteredAt: '2024-05-01T10:31:02.500Z' });
    expect(read.partition).toBe(4);
    expect(Buffer.isBuffer(read.originalKey)).toBe(true);
  });

  it('round-trips a tombstone (null value) without a key', () => {
    const original = record({ reasonCode: 'empty', reason: 'the message has no value', value: null, originalKey: null, partition: 0, offset: '0' });
    const read = fromDeadLetterMessage(delivered(toDeadLetterMessage(original, now)));
    expect(read).toStrictEqual({ ...original, deadLetteredAt: now.toISOString() });
  });

  it('round-trips non-ASCII reasons and binary values byte for byte', () => {
    const value = Buffer.from([0x00, 0xff, 0x7b, 0x80, 0xfe]);
    const original = record({ reasonCode: 'not_json', reason: 'not valid JSON: Unexpected token ÿ — «ü»', value });
    const read = fromDeadLetterMessage(delivered(toDeadLetterMessage(original, now)));
    expect(read.reason).toBe(original.reason);
    expect(read.value?.equals(value)).toBe(true);
  });

  it('round-trips a truncated reason', () => {
    const read = fromDeadLetterMessage(delivered(toDeadLetterMessage(record({ reason: 'z'.repeat(5000) }), now)));
    expect(read.reason).toBe('z'.repeat(2000));
  });

  it('reads the first value of a repeated header', () => {
    const read = fromDeadLetterMessage({
      value: null,
      headers: { 'vigil-reason-code': [Buffer.from('too_deep'), Buffer.from('empty')], 'vigil-source-partition': Buffer.from('7') },
    });
    expect(read.reasonCode).toBe('too_deep');
    expect(read.partition).toBe(7);
  });

  it('reads a message without headers as empty fields rather than throwing', () => {
    const read = fromDeadLetterMessage({ value: Buffer.from('x') });
    expect(read).toMatchObject({ reasonCode: '', reason: '', topic: '', offset: '', originalKey: null, deadLetteredAt: '' });
  });
});

describe('a too_large message', () => {
  const big = Buffer.from(`{"message":"${'x'.repeat(300_000)}"}`);
  const digest = createHash('sha256').update(big).digest('hex');

  it('keeps only its first bytes, with its whole size and SHA-256 in headers', () => {
    const message = toDeadLetterMessage(record({ reasonCode: 'too_large', value: big }), now);
    expect(message.value).toStrictEqual(big.subarray(0, DEAD_LETTER_PREFIX_BYTES));
    expect(message.headers).toMatchObject({ 'vigil-original-bytes': String(big.length), 'vigil-original-sha256': digest });
    const read = fromDeadLetterMessage(delivered(message));
    expect(read.truncated).toStrictEqual({ bytes: big.length, sha256: digest });
    expect(read.value).toHaveLength(DEAD_LETTER_PREFIX_BYTES);
  });

  it('is kept whole up to the prefix size, and other reasons are up to what the dead-letter topic takes', () => {
    const small = Buffer.alloc(DEAD_LETTER_PREFIX_BYTES, 0x61);
    expect(toDeadLetterMessage(record({ reasonCode: 'too_large', value: small }), now).value).toStrictEqual(small);
    expect(fromDeadLetterMessage(delivered(toDeadLetterMessage(record({ reasonCode: 'too_large', value: small }), now)))).not.toHaveProperty('truncated');
    expect(toDeadLetterMessage(record({ reasonCode: 'not_json', value: big }), now).value).toStrictEqual(big);
    const whole = Buffer.alloc(DEAD_LETTER_WHOLE_MAX_BYTES, 0x61);
    expect(toDeadLetterMessage(record({ reasonCode: 'not_json', value: whole, originalKey: null }), now).value).toStrictEqual(whole);
  });

  it('counts the original key, which rides in a header, against what the dead-letter topic takes, and keeps at most its first 16 KiB', () => {
    const key = Buffer.alloc(DEAD_LETTER_KEY_MAX_BYTES, 0x6b);
    const fits = Buffer.alloc(DEAD_LETTER_WHOLE_MAX_BYTES - key.length, 0x61);
    expect(toDeadLetterMessage(record({ reasonCode: 'not_json', value: fits, originalKey: key }), now).value).toStrictEqual(fits);
    const over = Buffer.alloc(DEAD_LETTER_WHOLE_MAX_BYTES - key.length + 1, 0x61);
    const message = toDeadLetterMessage(record({ reasonCode: 'not_json', value: over, originalKey: key }), now);
    expect(message.value).toStrictEqual(over.subarray(0, DEAD_LETTER_PREFIX_BYTES));
    expect(fromDeadLetterMessage(delivered(message)).truncated).toStrictEqual({ bytes: over.length, sha256: createHash('sha256').update(over).digest('hex') });
    // A key past the cap is kept cut, whatever the reason, so no dead letter can pass the broker's limit.
    const huge = Buffer.alloc(600 * 1024, 0x6b);
    for (const reasonCode of ['too_large', 'not_json'] as const) {
      const cut = toDeadLetterMessage(record({ reasonCode, value: Buffer.alloc(890 * 1024, 0x61), originalKey: huge }), now);
      expect(cut.headers?.['vigil-original-key']).toStrictEqual(huge.subarray(0, DEAD_LETTER_KEY_MAX_BYTES));
      expect((cut.value as Buffer).length).toBe(DEAD_LETTER_PREFIX_BYTES);
    }
    // A small value is never marked truncated for its key: it is kept whole.
    const small = toDeadLetterMessage(record({ reasonCode: 'not_json', value: Buffer.from('{"x":'), originalKey: huge }), now);
    expect(fromDeadLetterMessage(delivered(small)).truncated).toBeUndefined();
    expect(small.value).toStrictEqual(Buffer.from('{"x":'));
  });

  it('any refused message over what the broker takes in one message (VIGIL_MAX_MESSAGE_BYTES above 1 MiB) keeps its first bytes too, with its size and digest', () => {
    const huge = Buffer.alloc(DEAD_LETTER_WHOLE_MAX_BYTES + 1, 0x62);
    const message = toDeadLetterMessage(record({ reasonCode: 'index_rejected', value: huge }), now);
    expect(message.value).toStrictEqual(huge.subarray(0, DEAD_LETTER_PREFIX_BYTES));
    expect(fromDeadLetterMessage(delivered(message)).truncated).toStrictEqual({ bytes: huge.length, sha256: createHash('sha256').update(huge).digest('hex') });
  });

  it('can not be sent back as it is: the prefix alone would be refused and the message lost', () => {
    const read = fromDeadLetterMessage(delivered(toDeadLetterMessage(record({ reasonCode: 'too_large', value: big }), now)));
    expect(() => toRedriveMessage(read, { topic: 'vigil.deadletter', partition: 0, offset: '3' })).toThrow(/holds only the first bytes of its message/);
  });

  it.each<[IHeaders, string]>([
    [{ 'vigil-original-bytes': Buffer.from('12') }, 'no digest'],
    [{ 'vigil-original-bytes': Buffer.from('x'), 'vigil-original-sha256': Buffer.from(digest) }, 'a size that is not a number'],
    [{ 'vigil-original-bytes': Buffer.from('12'), 'vigil-original-sha256': Buffer.from('abc') }, 'a digest that is not SHA-256'],
  ])('reads headers a producer wrote as not truncated: %j (%s)', (headers, _why) => {
    expect(fromDeadLetterMessage({ value: Buffer.from('x'), headers })).not.toHaveProperty('truncated');
  });
});

describe('sendBatches', () => {
  const letter = (bytes: number, key = 'k'): Message => ({ key, value: Buffer.alloc(bytes), headers: { h: 'v' } });

  it('cuts sends at the byte budget, keeping order, and sends a larger letter alone', () => {
    const letters = [letter(300), letter(300), letter(300), letter(2_000), letter(10)];
    const batches = sendBatches(letters, 700);
    expect(batches.map((batch) => batch.map((message) => message.value?.length))).toStrictEqual([[300, 300], [300], [2_000], [10]]);
    expect(batches.flat()).toStrictEqual(letters);
  });

  it('keeps a chunk of four refused 300 KB messages under the broker default of 1 MiB per send', () => {
    const batches = sendBatches([letter(300_000), letter(300_000), letter(300_000), letter(300_000), letter(100_000)]);
    expect(batches.map((batch) => batch.length)).toStrictEqual([1, 1, 1, 2]);
    expect(sendBatches([])).toStrictEqual([]);
    // Strings weigh their UTF-8 bytes: three 170,000-character CJK values (510 KB each) are three sends.
    const cjk = { key: 'k', value: '漢'.repeat(170_000) };
    expect(sendBatches([cjk, cjk, cjk]).map((batch) => batch.length)).toStrictEqual([1, 1, 1]);
  });
});

describe('redrive trail', () => {
  const position = { topic: 'vigil.deadletter', partition: 1, offset: '77' };

  it('sends back the original bytes under the original key, marked with where the dead letter sat', () => {
    const dead = fromDeadLetterMessage(delivered(toDeadLetterMessage(record(), now)));
    const message = toRedriveMessage(dead, position);
    expect(message.key).toStrictEqual(Buffer.from('user-1'));
    expect(message.value).toStrictEqual(record().value);
    expect(message.headers).toStrictEqual({ 'vigil-redriven-from': 'vigil.deadletter/1/77', 'vigil-redrive-count': '1' });
    expect(toRedriveMessage({ ...dead, originalKey: null }, position).key).toBeNull();
  });

  it('carries the trail into the dead letter of a redriven message that fails again, counting on', () => {
    const redriven = delivered(toRedriveMessage(fromDeadLetterMessage(delivered(toDeadLetterMessage(record(), now))), position));
    const trail = redriveOf(redriven.headers);
    expect(trail).toStrictEqual({ from: 'vigil.deadletter/1/77', count: 1 });
    const again = fromDeadLetterMessage(delivered(toDeadLetterMessage({ ...record(), redrive: trail }, now)));
    expect(again.redrive).toStrictEqual({ from: 'vigil.deadletter/1/77', count: 1 });
    expect(toRedriveMessage(again, { ...position, offset: '90' }).headers).toStrictEqual({ 'vigil-redriven-from': 'vigil.deadletter/1/90', 'vigil-redrive-count': '2' });
  });

  it('writes no trail headers for a message that was never redriven', () => {
    const headers = toDeadLetterMessage(record(), now).headers ?? {};
    expect(Object.keys(headers).filter((name) => name.startsWith('vigil-redrive'))).toStrictEqual([]);
    expect(fromDeadLetterMessage(delivered(toDeadLetterMessage(record(), now)))).not.toHaveProperty('redrive');
  });

  it.each<[IHeaders, string]>([
    [{}, 'no headers'],
    [{ [REDRIVE_HEADER.from]: Buffer.from('x/0/1') }, 'no count'],
    [{ [REDRIVE_HEADER.count]: Buffer.from('1') }, 'no origin'],
    [{ [REDRIVE_HEADER.from]: Buffer.from('x/0/1'), [REDRIVE_HEADER.count]: Buffer.from('0') }, 'a count of 0'],
    [{ [REDRIVE_HEADER.from]: Buffer.from('x/0/1'), [REDRIVE_HEADER.count]: Buffer.from('-1') }, 'a negative count'],
    [{ [REDRIVE_HEADER.from]: Buffer.from('x/0/1'), [REDRIVE_HEADER.count]: Buffer.from('1e3') }, 'a count in exponent form'],
    [{ [REDRIVE_HEADER.from]: Buffer.from('x/0/1'), [REDRIVE_HEADER.count]: Buffer.from('99999999') }, 'a count of eight digits'],
  ])('reads headers a producer wrote as no trail: %j (%s)', (headers, _why) => {
    expect(redriveOf(headers)).toBeUndefined();
  });

  it('bounds a hostile origin header, so a dead letter cannot be bloated by it', () => {
    expect(redriveOf({ [REDRIVE_HEADER.from]: Buffer.from('y'.repeat(100_000)), [REDRIVE_HEADER.count]: Buffer.from('2') })?.from).toHaveLength(300);
  });
});
