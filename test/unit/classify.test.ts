import { DEAD_LETTER_REASONS, classifyMessage, exceedsDepth, type Classification, type MessageLimits } from '../../ingest';
import { deviceEvent, invocationEvent, policyEvent, withField } from './fixtures';

const limits: MessageLimits = { maxMessageBytes: 256 * 1024, maxJsonDepth: 16 };

function bytes(value: unknown): Buffer {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
}

/** The refusal of a classification, failing the test when it passed. */
function refusal(result: Classification): { reasonCode: string; message: string } {
  if (result.ok) throw new Error(`expected a refusal, got event ${result.event.id}`);
  return { reasonCode: result.reasonCode, message: result.message };
}

describe('classifyMessage', () => {
  it.each([
    ['policy', policyEvent],
    ['invocation', invocationEvent],
    ['device', deviceEvent],
  ] as const)('accepts a valid %s event from its own topic and returns it parsed', (family, make) => {
    const result = classifyMessage(bytes(make()), limits, family);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.family).toBe(family);
    expect(result.event.id).toBe(make().id);
  });

  it('accepts a valid event when no topic family is expected', () => {
    expect(classifyMessage(bytes(deviceEvent()), limits).ok).toBe(true);
  });

  it('says empty for a null value (a tombstone) and for zero bytes', () => {
    expect(refusal(classifyMessage(null, limits, 'policy'))).toStrictEqual({ reasonCode: 'empty', message: 'the message has no value' });
    expect(refusal(classifyMessage(Buffer.alloc(0), limits, 'policy')).reasonCode).toBe('empty');
  });

  it('says too_large above maxMessageBytes, with both sizes, and lets the limit itself through', () => {
    const message = bytes(policyEvent());
    const over = refusal(classifyMessage(message, { ...limits, maxMessageBytes: message.length - 1 }));
    expect(over.reasonCode).toBe('too_large');
    expect(over.message).toBe(`the message is ${message.length} bytes; the limit is ${message.length - 1}`);
    expect(classifyMessage(message, { ...limits, maxMessageBytes: message.length }).ok).toBe(true);
  });

  it('measures size in bytes, not characters', () => {
    // 40 characters, 120 bytes of UTF-8.
    const message = bytes(`"${'€'.repeat(40)}"`);
    expect(refusal(classifyMessage(message, { ...limits, maxMessageBytes: 100 })).reasonCode).toBe('too_large');
  });

  it.each(['{"id":', 'not json at all', '{"a":1}}', "{'single':'quotes'}", '\u00ff\u00fe'])(
    'says not_json for %p',
    (text) => {
      const result = refusal(classifyMessage(bytes(text), limits));
      expect(result.reasonCode).toBe('not_json');
      expect(result.message).toMatch(/^not valid JSON: /);
    },
  );

  it.each([
    ['a lone continuation byte', [0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['an overlong encoding of "/"', [0xc0, 0xaf]],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ])('says not_json for invalid UTF-8 inside a string (%s) instead of indexing U+FFFD', (_label, invalid) => {
    const [before, after] = JSON.stringify(withField(policyEvent(), 'policy.reason', 'SPLIT')).split('SPLIT');
    const message = Buffer.concat([Buffer.from(before ?? ''), Buffer.from(invalid), Buffer.from(after ?? '')]);
    expect(refusal(classifyMessage(message, limits, 'policy'))).toStrictEqual({
      reasonCode: 'not_json',
      message: 'not valid JSON: the bytes are not valid UTF-8 (JSON text must be UTF-8, RFC 8259)',
    });
  });

  it('refuses a text over its length for that alone, naming the field, without scanning the rest of it', () => {
    // Neither a leading slash nor free of control characters: only the length is reported.
    const path = `x${'\u0000'.repeat(3000)}`;
    expect(refusal(classifyMessage(bytes(withField(policyEvent(), 'policy.resource.path', path)), limits, 'policy'))).toStrictEqual({
      reasonCode: 'schema_invalid',
      message: 'policy.resource.path: Too big: expected string to have <=2048 characters',
    });
    // Within the length, the other checks still run.
    const short = refusal(classifyMessage(bytes(withField(policyEvent(), 'policy.resource.path', 'x\u0000')), limits, 'policy'));
    expect(short.message).toContain('policy.resource.path: Invalid string: must start with "/"');
    expect(short.message).toContain('policy.resource.path: must not contain control characters');
  });

  it('reads an event after a UTF-8 byte order mark, as a decoder does, and refuses one in the middle', () => {
    const event = bytes(policyEvent());
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    expect(classifyMessage(Buffer.concat([bom, event]), limits, 'policy').ok).toBe(true);
    expect(refusal(classifyMessage(Buffer.concat([event.subarray(0, 1), bom, event.subarray(1)]), limits, 'policy')).reasonCode).toBe('not_json');
  });

  it.each([
    ['at the top', '{"__proto__":{"polluted":true},', '', '__proto__'],
    ['among the labels, where a record would drop it unseen', '', '"labels":{"__proto__":"x","run":"a"},', 'labels.__proto__'],
    ['written with an escape', '{"\\u005f_proto__":{"polluted":true},', '', '__proto__'],
  ])('says schema_invalid for a __proto__ key %s, naming where, and pollutes nothing', (_label, head, labels, path) => {
    const text = JSON.stringify(withField(policyEvent(), 'labels', undefined)).replace(/,"labels":[^}]*}/, '');
    const message = head ? `${head}${text.slice(1)}` : text.replace('"policy":', `${labels}"policy":`);
    expect(refusal(classifyMessage(bytes(message), limits, 'policy'))).toStrictEqual({
      reasonCode: 'schema_invalid',
      message: `${path}: a key named "__proto__" is not allowed`,
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('says too_deep beyond maxJsonDepth, counting objects and arrays alike', () => {
    const nested = bytes({ ...policyEvent(), labels: { a: 'b' } }).toString().replace('"labels":{"a":"b"}', '"x":[[{"y":[[[1]]]}]]');
    // root 1, x 2-3, object 4, y 5-7
    const result = refusal(classifyMessage(bytes(nested), { ...limits, maxJsonDepth: 6 }));
    expect(result).toStrictEqual({ reasonCode: 'too_deep', message: 'the JSON nests deeper than 6 levels' });
    // At exactly the limit the message goes on to the schema, which refuses the unknown field.
    expect(refusal(classifyMessage(bytes(nested), { ...limits, maxJsonDepth: 7 })).reasonCode).toBe('schema_invalid');
  });

  it('refuses a 200000-deep array as too_deep without throwing', () => {
    const message = Buffer.from('['.repeat(200_000));
    let result: Classification | undefined;
    expect(() => {
      result = classifyMessage(message, { maxMessageBytes: 1024 * 1024, maxJsonDepth: 16 });
    }).not.toThrow();
    expect(result).toStrictEqual({ ok: false, reasonCode: 'too_deep', message: 'the JSON nests deeper than 16 levels' });
  });

  it('refuses a balanced 100000-deep document as too_deep without throwing', () => {
    const message = Buffer.from(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`);
    expect(refusal(classifyMessage(message, { maxMessageBytes: 10 * 1024 * 1024, maxJsonDepth: 256 })).reasonCode).toBe('too_deep');
  });

  it.each([2, 0, '1', null])('says unknown_schema_version for schemaVersion %p, naming it', (version) => {
    const result = refusal(classifyMessage(bytes({ ...policyEvent(), schemaVersion: version }), limits, 'policy'));
    expect(result.reasonCode).toBe('unknown_schema_version');
    expect(result.message).toBe(`schemaVersion ${JSON.stringify(version)} is not one this pipeline reads (1)`);
  });

  it('says schema_invalid, naming the field, for a missing schemaVersion', () => {
    const result = refusal(classifyMessage(bytes(withField(policyEvent(), 'schemaVersion', undefined)), limits, 'policy'));
    expect(result.reasonCode).toBe('schema_invalid');
    expect(result.message).toMatch(/^schemaVersion: /);
  });

  it('says schema_invalid with every field at fault in the message', () => {
    const event = withField(withField(invocationEvent(), 'client.ip', '300.1.1.1'), 'invocation.status', 42);
    const result = refusal(classifyMessage(bytes(event), limits, 'invocation'));
    expect(result.reasonCode).toBe('schema_invalid');
    expect(result.message).toContain('client.ip: Invalid IP address');
    expect(result.message).toContain('invocation.status: ');
    expect(result.message.split('; ')).toHaveLength(2);
  });

  it('says schema_invalid for an unknown field, naming it', () => {
    const result = refusal(classifyMessage(bytes(withField(deviceEvent(), 'device.jailbroken', true)), limits, 'device'));
    expect(result).toStrictEqual({ reasonCode: 'schema_invalid', message: 'device: Unrecognized key: "jailbroken"' });
  });

  it.each(['[]', '"text"', '42', 'null', 'true'])('says schema_invalid at (root) for the JSON %s', (text) => {
    expect(refusal(classifyMessage(bytes(text), limits))).toStrictEqual({
      reasonCode: 'schema_invalid',
      message: '(root): expected a JSON object',
    });
  });

  it('says wrong_topic for another family on a family topic, naming both', () => {
    const result = refusal(classifyMessage(bytes(policyEvent()), limits, 'invocation'));
    expect(result).toStrictEqual({ reasonCode: 'wrong_topic', message: 'a policy event on the invocation topic' });
  });

  it('says wrong_topic for an unknown family on a family topic, schema_invalid when no family is expected', () => {
    const result = refusal(classifyMessage(bytes({ ...policyEvent(), family: 'billing' }), limits, 'policy'));
    expect(result).toStrictEqual({ reasonCode: 'wrong_topic', message: 'an event of family "billing" on the policy topic' });
    // The producer's text, quoted: a control character in it is escaped, not passed on.
    expect(refusal(classifyMessage(bytes({ ...policyEvent(), family: 'x\u001b[2J\ny' }), limits, 'policy')).message).toBe('an event of family "x\\u001b[2J\\ny" on the policy topic');
    const anyTopic = refusal(classifyMessage(bytes({ ...policyEvent(), family: 'billing' }), limits));
    expect(anyTopic.reasonCode).toBe('schema_invalid');
    expect(anyTopic.message).toMatch(/^family: /);
  });

  it('only ever answers with a declared reason code', () => {
    const inputs: Array<Buffer | null> = [null, bytes('{'), bytes('[[[[[[[[[[[[[[[[[[[[[[[['), bytes({}), bytes(policyEvent())];
    for (const input of inputs) {
      const result = classifyMessage(input, { ...limits, maxJsonDepth: 8 }, 'device');
      if (!result.ok) expect(DEAD_LETTER_REASONS).toContain(result.reasonCode);
    }
  });
});

describe('exceedsDepth', () => {
  const depth = (text: string, limit: number): boolean => exceedsDepth(Buffer.from(text, 'utf8'), limit);

  it('counts nesting of objects and arrays against the limit', () => {
    expect(depth('{"a":[1,{"b":2}]}', 3)).toBe(false);
    expect(depth('{"a":[1,{"b":2}]}', 2)).toBe(true);
    expect(depth('[]', 1)).toBe(false);
    expect(depth('[[]]', 1)).toBe(true);
    expect(depth('1', 0)).toBe(false);
  });

  it('counts depth, not the number of containers', () => {
    expect(depth(`[${'[],'.repeat(1000)}[]]`, 2)).toBe(false);
  });

  it('ignores brackets inside strings', () => {
    expect(depth('{"a":"[[[[[[[[{{{{{{{{"}', 1)).toBe(false);
    expect(depth('{"[[[[":"]]]]","b":"{{{{"}', 1)).toBe(false);
  });

  it('ignores escaped quotes inside strings', () => {
    expect(depth('{"a":"\\"[[[[[[[[\\""}', 1)).toBe(false);
    expect(depth('["\\"", "[[[["]', 1)).toBe(false);
  });

  it('ends a string after an escaped backslash, so later brackets count', () => {
    // The value is one backslash; the array after it nests three deep inside the object.
    expect(depth('{"a":"\\\\","b":[[[1]]]}', 3)).toBe(true);
    expect(depth('{"a":"\\\\","b":[[[1]]]}', 4)).toBe(false);
  });

  it('finds the end of long strings, and of strings ending in escaped backslashes', () => {
    const long = 'x'.repeat(100_000);
    expect(depth(`{"a":"${long}","b":[[1]]}`, 2)).toBe(true);
    expect(depth(`{"a":"${long}\\\\","b":[[1]]}`, 2)).toBe(true);
    // An escaped quote then more brackets: all still inside the one string.
    expect(depth(`{"a":"${long}\\"[[[[","b":1}`, 1)).toBe(false);
    // An unterminated string: nothing after its quote counts (the parse refuses it as not_json).
    expect(depth('{"a":"[[[[[[', 1)).toBe(false);
  });

  it('ignores multi-byte UTF-8 characters', () => {
    expect(depth('{"名前":"[€]","b":["😀"]}', 2)).toBe(false);
  });
});

describe('classifyMessage with the pipeline clock', () => {
  const now = new Date('2026-11-27T12:00:00Z');
  const limits = { maxMessageBytes: 262144, maxJsonDepth: 16 };
  const withTime = (time: string): Buffer =>
    Buffer.from(
      JSON.stringify({
        id: 'evt-time-0001',
        schemaVersion: 1,
        family: 'policy',
        time,
        source: { service: 's', kind: 'gateway' },
        policy: { kind: 'authn', name: 'n', outcome: 'pass', group: 'g', resource: { api: 'a', method: 'GET', path: '/' } },
      }),
    );

  it('accepts an event a few hours ahead (clock skew) and one from last year', () => {
    expect(classifyMessage(withTime('2026-11-27T20:00:00Z'), limits, 'policy', now).ok).toBe(true);
    expect(classifyMessage(withTime('2025-11-27T20:00:00Z'), limits, 'policy', now).ok).toBe(true);
  });

  it('refuses an event more than a day ahead, or before 2000, naming the time', () => {
    for (const time of ['2026-11-28T12:00:01Z', '9999-12-31T23:59:59-23:59', '1999-12-31T23:59:59Z']) {
      const verdict = classifyMessage(withTime(time), limits, 'policy', now);
      expect(verdict).toMatchObject({ ok: false, reasonCode: 'time_out_of_range' });
      if (!verdict.ok) expect(verdict.message).toContain(time);
    }
  });
});
