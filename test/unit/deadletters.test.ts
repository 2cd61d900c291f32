import type { DeadLetterRecord } from '../../ingest';
import {
  DeadLetterUsageError,
  MAX_REDRIVES,
  chainRootsOf,
  formatEntry,
  formatRedrive,
  parseDeadLetterArgs,
  parseTime,
  laterLettersOf,
  originalDigest,
  planRedrive,
  redactSecrets,
  runDeadLetters,
  selects,
  summarise,
  trailOf,
  type DeadLetterEntry,
  type Selection,
} from '../../scripts/deadletters';
import { escapeBytes } from '../../scripts/cli-text';

const now = new Date('2026-11-27T12:00:00Z');
const POLICY = 'vigil.events.policy';
const DLQ = 'vigil.deadletter';

function entry(offset: number, overrides: Partial<DeadLetterRecord> = {}, time = Date.parse('2026-11-27T10:00:00Z')): DeadLetterEntry {
  return {
    position: { topic: DLQ, partition: 0, offset: String(offset) },
    time,
    record: {
      reasonCode: 'too_large',
      reason: 'the message is 3000 bytes; the limit is 2048',
      topic: POLICY,
      partition: 2,
      offset: String(1000 + offset),
      value: Buffer.from(`{"id":"evt-${offset}"}`),
      originalKey: Buffer.from('partner-acme'),
      deadLetteredAt: Number.isFinite(time) ? new Date(time).toISOString() : '',
      ...overrides,
    },
  };
}

const all: Selection = { reasons: [], offsets: [] };

/** The message a usage error carries, or a failure if the arguments parse. */
function refusal(args: string[]): string {
  try {
    parseDeadLetterArgs(args, now);
  } catch (error) {
    expect(error).toBeInstanceOf(DeadLetterUsageError);
    expect((error as DeadLetterUsageError).retriable).toBe(false);
    return (error as Error).message;
  }
  throw new Error(`${args.join(' ')} parsed`);
}

describe('parseDeadLetterArgs', () => {
  it('reads a selection: reasons repeated or comma-separated, a time range, positions normalised', () => {
    expect(parseDeadLetterArgs(['show', '--reason', 'too_large,not_json', '--reason', 'too_large', '--from', 'now-2h', '--to', '2026-11-27T11:30:00Z', '--offset', 'vigil.events.policy:02:0042', '--limit', '5', '--max-bytes', '64'], now)).toEqual({
      command: 'show',
      selection: { reasons: ['too_large', 'not_json'], from: Date.parse('2026-11-27T10:00:00Z'), to: Date.parse('2026-11-27T11:30:00Z'), offsets: ['vigil.events.policy:2:42'] },
      limit: 5,
      maxBytes: 64,
      unredacted: false,
    });
  });

  it('defaults: list and show select everything, show prints 20 messages of 512 bytes, redrive is neither dry nor forced', () => {
    expect(parseDeadLetterArgs(['list'], now)).toEqual({ command: 'list', selection: all });
    expect(parseDeadLetterArgs(['show'], now)).toEqual({ command: 'show', selection: all, limit: 20, maxBytes: 512, unredacted: false });
    expect(parseDeadLetterArgs(['show', '--unredacted'], now)).toMatchObject({ unredacted: true });
    // A position as show prints it.
    expect(parseDeadLetterArgs(['show', '--offset', 'vigil.deadletter/0/042'], now)).toMatchObject({ selection: { offsets: ['vigil.deadletter:0:42'] } });
    expect(parseDeadLetterArgs(['redrive', '--reason', 'too_large'], now)).toEqual({ command: 'redrive', selection: { reasons: ['too_large'], offsets: [] }, dryRun: false, force: false, rawTopics: [] });
    expect(parseDeadLetterArgs(['redrive', '--offset', 'vigil.deadletter:0:7', '--dry-run', '--force'], now)).toMatchObject({ dryRun: true, force: true });
  });

  it('reads the raw topics vigil adapt reads, repeated or comma-separated, each once', () => {
    expect(parseDeadLetterArgs(['redrive', '--reason', 'adapter_unmapped', '--raw-topic', 'edge.raw.tyk,edge.raw.kong', '--raw-topic', 'edge.raw.tyk'], now)).toMatchObject({
      rawTopics: ['edge.raw.tyk', 'edge.raw.kong'],
    });
  });

  it('refuses a redrive without a selection: it would send back every bad message ever seen', () => {
    expect(refusal(['redrive'])).toBe('redrive needs a selection: --reason, --from/--to or --offset');
    expect(refusal(['redrive', '--dry-run'])).toBe('redrive needs a selection: --reason, --from/--to or --offset');
  });

  it.each([
    [[], 'a subcommand is needed: list, show or redrive'],
    [['purge'], 'unknown subcommand "purge"; use list, show or redrive'],
    [['show', '--reason', 'typo'], '--reason: "typo" is not a reason code (empty, too_large, not_json, too_deep, unknown_schema_version, schema_invalid, wrong_topic, time_out_of_range, index_rejected, id_conflict, adapter_unparseable, adapter_unmapped)'],
    [['show', '--reason'], '--reason needs a value'],
    [['show', '--reason', '--limit'], '--reason needs a value'],
    [['list', '--limit', '3'], 'unknown option --limit for deadletters list'],
    [['list', '--dry-run'], 'unknown option --dry-run for deadletters list'],
    [['show', 'too_large'], 'unexpected argument "too_large" for deadletters show'],
    [['show', '--limit', '0'], '--limit: "0" is not an integer from 1 to 1000000'],
    [['show', '--limit', '2.5'], '--limit: "2.5" is not an integer from 1 to 1000000'],
    [['show', '--max-bytes', 'lots'], '--max-bytes: "lots" is not an integer from 1 to 104857600'],
    [['show', '--from', 'now', '--from', 'now-1h'], '--from is given twice'],
    [['show', '--from', 'now', '--to', 'now-1h'], '--from is after --to'],
    [['redrive', '--offset', 'vigil.events.policy:2'], '--offset: "vigil.events.policy:2" is not TOPIC:PARTITION:OFFSET (e.g. vigil.deadletter:0:42, vigil.events.policy:2:1187, or vigil.deadletter/0/42 as show prints it)'],
    [['redrive', '--reason', 'adapter_unmapped', '--raw-topic', 'a topic'], '--raw-topic: "a topic" is not a Kafka topic name (1-249 of letters, digits, ".", "_", "-")'],
    [['redrive', '--reason', 'adapter_unmapped', '--raw-topic', '__consumer_offsets'], '--raw-topic: "__consumer_offsets" starts with "_", a name Kafka and its tools keep for their own topics'],
    [['list', '--raw-topic', 'edge.raw.tyk'], 'unknown option --raw-topic for deadletters list'],
    [['redrive', '--offset', 'a topic:1:2'], '--offset: "a topic:1:2" is not TOPIC:PARTITION:OFFSET (e.g. vigil.deadletter:0:42, vigil.events.policy:2:1187, or vigil.deadletter/0/42 as show prints it)'],
  ])('refuses %j: %s', (args, message) => {
    expect(refusal(args)).toBe(message);
  });
});

describe('parseTime', () => {
  it('reads ISO 8601 with a zone, a date, now and now-N<unit>', () => {
    expect(parseTime('--from', '2026-11-27T10:00:00Z', now)).toBe(Date.parse('2026-11-27T10:00:00Z'));
    expect(parseTime('--from', '2026-11-27T10:00:00.250+01:00', now)).toBe(Date.parse('2026-11-27T09:00:00.250Z'));
    expect(parseTime('--from', '2026-11-27', now)).toBe(Date.parse('2026-11-27T00:00:00Z'));
    expect(parseTime('--from', '2028-02-29T23:59:59.999-05:00', now)).toBe(Date.parse('2028-03-01T04:59:59.999Z'));
    expect(parseTime('--to', 'now', now)).toBe(now.getTime());
    expect(parseTime('--from', 'now-90s', now)).toBe(now.getTime() - 90_000);
    expect(parseTime('--from', 'now-15m', now)).toBe(now.getTime() - 900_000);
    expect(parseTime('--from', 'now-3d', now)).toBe(now.getTime() - 3 * 86_400_000);
  });

  // Date.parse takes 30 February as 2 March, and 24:00 as the next day's midnight.
  it.each(['yesterday', '2026-11-27T10:00:00', '2026-13-45T10:00:00Z', 'now-2w', 'now+1h', '', '2026-02-30', '2026-02-29T10:00Z', '2026-11-27T24:00Z', '2026-11-27T10:60Z', '2026-11-27T10:00+19:00'])('refuses %j naming the option', (text) => {
    expect(() => parseTime('--to', text, now)).toThrow(`--to: "${text}" is not a time`);
  });
});

describe('selects', () => {
  it('selects everything with an empty selection', () => {
    expect(selects(all, entry(1))).toBe(true);
  });

  it('needs every criterion given to hold', () => {
    const at = Date.parse('2026-11-27T10:00:00Z');
    expect(selects({ ...all, reasons: ['too_large'] }, entry(1))).toBe(true);
    expect(selects({ ...all, reasons: ['not_json'] }, entry(1))).toBe(false);
    expect(selects({ ...all, from: at, to: at }, entry(1))).toBe(true);
    expect(selects({ ...all, from: at + 1 }, entry(1))).toBe(false);
    expect(selects({ ...all, to: at - 1 }, entry(1))).toBe(false);
    expect(selects({ ...all, reasons: ['too_large'], from: at + 1 }, entry(1))).toBe(false);
  });

  it('matches a position against the dead letter itself or the source position it names', () => {
    expect(selects({ ...all, offsets: [`${DLQ}:0:3`] }, entry(3))).toBe(true);
    expect(selects({ ...all, offsets: [`${POLICY}:2:1003`] }, entry(3))).toBe(true);
    expect(selects({ ...all, offsets: [`${DLQ}:1:3`, `${POLICY}:2:1004`] }, entry(3))).toBe(false);
  });

  it('never selects a dead letter whose time is unreadable by a time range', () => {
    expect(selects({ ...all, from: 0 }, entry(1, {}, Number.NaN))).toBe(false);
  });
});

describe('planRedrive', () => {
  const topics = [POLICY, 'vigil.events.invocation', 'vigil.events.device'];

  it('sends each selected dead letter to its source topic', () => {
    const plan = planRedrive([entry(1), entry(2)], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen, topic }) => [chosen.position.offset, topic])).toEqual([
      ['1', POLICY],
      ['2', POLICY],
    ]);
    expect(plan.skipped).toEqual([]);
  });

  it('skips, saying why: no value, not an event topic, the same source position twice', () => {
    const copy = entry(5, { offset: '1001' }); // the same original, dead-lettered again by a redone chunk
    const plan = planRedrive([entry(1), entry(2, { value: null, reasonCode: 'empty' }), entry(3, { value: Buffer.alloc(0) }), entry(4, { topic: 'old.policy' }), copy], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['1']);
    expect(plan.skipped.map(({ entry: skipped, reason, detail }) => [skipped.position.offset, reason, detail])).toEqual([
      ['2', 'no_value', 'the original message had no value'],
      ['3', 'no_value', 'the original message had no value'],
      ['4', 'not_an_event_topic', 'source topic "old.policy" is not an event topic or raw topic of this configuration'],
      ['5', 'already_selected', `another dead letter of ${POLICY}:2:1001 is decided: it is sent`],
    ]);
  });

  it(`refuses a message already redriven ${MAX_REDRIVES} times, unless forced`, () => {
    const tired = entry(1, { redrive: { from: `${DLQ}/0/0`, count: MAX_REDRIVES } });
    const once = entry(2, { redrive: { from: `${DLQ}/0/0`, count: MAX_REDRIVES - 1 } });
    const plan = planRedrive([tired, once], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['2']);
    expect(plan.skipped).toEqual([{ entry: tired, reason: 'redrive_limit', detail: `redriven ${MAX_REDRIVES} times already; --force sends it again` }]);
    expect(planRedrive([tired], { eventTopics: topics, force: true }).send).toHaveLength(1);
    expect(planRedrive([once], { eventTopics: topics, force: false, maxRedrives: 1 }).skipped).toHaveLength(1);
  });

  it('sends a record vigil adapt refused back to its raw topic when the operator names it, and anything else from a raw topic of this configuration', () => {
    const unmapped = entry(1, { topic: 'edge.raw.tyk', reasonCode: 'adapter_unmapped', reason: 'record 0: no method' });
    const invalid = entry(2, { topic: 'vigil.raw.kong', reasonCode: 'schema_invalid' });
    const elsewhere = entry(3, { topic: 'edge.raw.tyk', reasonCode: 'schema_invalid' });
    const plan = planRedrive([unmapped, invalid, elsewhere], { eventTopics: topics, rawTopics: ['vigil.raw.kong', 'edge.raw.tyk'], force: false });
    expect(plan.send.map(({ entry: chosen, topic }) => [chosen.position.offset, topic])).toEqual([
      ['1', 'edge.raw.tyk'],
      ['2', 'vigil.raw.kong'],
      ['3', 'edge.raw.tyk'],
    ]);
    expect(plan.skipped).toEqual([]);
  });

  // The source topic is a header: a forged dead letter must not choose where a redrive writes.
  it("does not send an adapter's refusal to a topic the operator did not name, and says how to name it", () => {
    const unmapped = entry(1, { topic: 'edge.raw.tyk', reasonCode: 'adapter_unmapped', reason: 'record 0: no method' });
    const forged = entry(2, { topic: 'payments.commands', reasonCode: 'adapter_unparseable', offset: '2000' });
    const plan = planRedrive([unmapped, forged], { eventTopics: topics, rawTopics: ['vigil.raw.kong'], force: false });
    expect(plan.send).toEqual([]);
    expect(plan.skipped.map(({ reason, detail }) => [reason, detail])).toEqual([
      ['not_an_event_topic', 'source topic "edge.raw.tyk" is not an event topic or a named raw topic: if `vigil adapt` reads it, name it with --raw-topic edge.raw.tyk'],
      ['not_an_event_topic', 'source topic "payments.commands" is not an event topic or a named raw topic: if `vigil adapt` reads it, name it with --raw-topic payments.commands'],
    ]);
  });

  // A forged dead letter (headers are the producer's) could make a redrive write pages.
  it("never sends an adapter's refusal to Vigil's own other topics or Kafka's, even when named as raw topics", () => {
    const internalTopics = ['vigil.detections', 'vigil.deadletter', 'vigil.notifications', 'vigil.notifications.deadletter'];
    const forged = [...internalTopics, '__consumer_offsets', '_schemas'].map((topic, index) => entry(index + 1, { topic, reasonCode: 'adapter_unmapped', offset: String(3000 + index) }));
    const plan = planRedrive([...forged, entry(9, { topic: 'edge.raw.tyk', reasonCode: 'adapter_unmapped', offset: '4000' })], {
      eventTopics: topics,
      rawTopics: ['edge.raw.tyk', ...internalTopics, '_schemas'],
      internalTopics,
      force: false,
    });
    expect(plan.send.map(({ topic }) => topic)).toEqual(['edge.raw.tyk']);
    expect(plan.skipped.map(({ reason }) => reason)).toEqual(Array.from({ length: 6 }, () => 'not_an_event_topic'));
    expect(plan.skipped[0]?.detail).toBe('source topic "vigil.detections" is not an event topic or raw topic of this configuration');
  });

  it('runs again with the cause not fixed: only the latest dead letter of a message is sent, not every one it left, so the copies do not multiply', () => {
    // Run 1 sent the dead letter at offset 1; refused again, it came back at offset 2 (from a new
    // source position), and again at offset 3 after run 2.
    const first = entry(1);
    // A redrive sends the same bytes back: each later letter holds the message its origin does.
    const second = entry(2, { offset: '2001', value: first.record.value, redrive: { from: `${DLQ}/0/1`, count: 1 } });
    const third = entry(3, { offset: '2002', value: first.record.value, redrive: { from: `${DLQ}/0/2`, count: 2 } });
    const plan = planRedrive([first, second, third], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['3']);
    expect(plan.skipped.map(({ entry: skipped, reason }) => [skipped.position.offset, reason])).toEqual([
      ['1', 'redriven_since'],
      ['2', 'redriven_since'],
    ]);
  });
});

describe('planRedrive: a message redriven and refused again', () => {
  const topics = [POLICY, 'vigil.events.invocation', 'vigil.events.device'];

  // Dead-lettered twice (a redone chunk: letters 1 and 2 of one source position), letter 1
  // redriven and refused again as letter 3: letter 2 went out again at every run, with a new count.
  it('sends neither letter of the source position a later letter stands for', () => {
    const first = entry(1);
    const copy = entry(2, { offset: '1001', value: first.record.value });
    const later = entry(3, { offset: '2001', value: first.record.value, redrive: { from: `${DLQ}/0/1`, count: 1 } });
    const plan = planRedrive([first, copy, later], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['3']);
    expect(plan.skipped.map(({ entry: skipped, reason, detail }) => [skipped.position.offset, reason, detail])).toEqual([
      ['1', 'redriven_since', `redriven before, and refused again: the later dead letter ${DLQ}/0/3 names ${DLQ}/0/1 as its origin (select that one)`],
      ['2', 'already_selected', `another dead letter of ${POLICY}:2:1001 is decided: the later dead letter ${DLQ}/0/3 stands for it`],
    ]);
  });

  it('whatever order the copies come in: the one before the copy the later letter names is not sent either', () => {
    const copy = entry(1);
    const named = entry(2, { offset: '1001', value: copy.record.value });
    const later = entry(3, { offset: '2001', value: copy.record.value, redrive: { from: `${DLQ}/0/2`, count: 1 } });
    const plan = planRedrive([copy, named, later], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['3']);
    expect(plan.skipped.map(({ entry: skipped, reason }) => [skipped.position.offset, reason])).toEqual([
      ['1', 'already_selected'],
      ['2', 'redriven_since'],
    ]);
  });

  it('a copy selected while the copy a later letter names is not: not sent, from what the whole topic says', () => {
    const copy = entry(1);
    const plan = planRedrive([copy], { eventTopics: topics, force: false, stoodFor: new Map([[`${POLICY}:2:1001`, `${DLQ}/0/3`]]) });
    expect(plan.send).toEqual([]);
    expect(plan.skipped.map(({ reason, detail }) => [reason, detail])).toEqual([['already_selected', `another dead letter of ${POLICY}:2:1001 is decided: the later dead letter ${DLQ}/0/3 stands for it`]]);
  });

  // A selection by reason or time may hold the earlier letter and not the later: it went out
  // again with a count of 1, doubling the message and getting round the redrive limit.
  it('knows the later letters from the whole topic, not only from the selection', () => {
    const first = entry(1);
    const later = entry(3, { offset: '2001', value: first.record.value, reasonCode: 'schema_invalid', redrive: { from: `${DLQ}/0/1`, count: MAX_REDRIVES } });
    expect(planRedrive([first], { eventTopics: topics, force: false }).send).toHaveLength(1);
    const plan = planRedrive([first], { eventTopics: topics, force: false, redrivenSince: laterLettersOf([first, later]) });
    expect(plan.send).toEqual([]);
    expect(plan.skipped.map(({ reason }) => reason)).toEqual(['redriven_since']);
  });
});

describe('planRedrive: a message redriven twice before it was refused again', () => {
  const topics = [POLICY, 'vigil.events.invocation', 'vigil.events.device'];

  // Redrive run twice before the pipeline read the first copy: two copies on the source topic,
  // both refused again as letters 2 and 3, each naming letter 1. Both went out at every later run.
  it('sends one letter per first dead letter: the later letters of one origin collapse into one send', () => {
    const first = entry(1);
    const again = entry(2, { offset: '2001', value: first.record.value, redrive: { from: `${DLQ}/0/1`, count: 1 } });
    const twice = entry(3, { offset: '2002', value: first.record.value, redrive: { from: `${DLQ}/0/1`, count: 1 } });
    const plan = planRedrive([first, again, twice], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['2']);
    expect(plan.skipped.map(({ entry: skipped, reason, detail }) => [skipped.position.offset, reason, detail])).toEqual([
      ['1', 'redriven_since', `redriven before, and refused again: the later dead letter ${DLQ}/0/3 names ${DLQ}/0/1 as its origin (select that one)`],
      ['3', 'already_selected', `another dead letter redriven from the same first dead letter is sent: ${DLQ}/0/2`],
    ]);
    // With --force too, and a run later: the two branches a doubled run left still go once.
    const branch = entry(4, { offset: '2003', value: first.record.value, redrive: { from: `${DLQ}/0/2`, count: 2 } });
    const other = entry(5, { offset: '2004', value: first.record.value, redrive: { from: `${DLQ}/0/3`, count: 2 } });
    const later = planRedrive([branch, other], { eventTopics: topics, force: true, trail: trailOf([first, again, twice, branch, other]) });
    expect(later.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['4']);
    expect(later.skipped.map(({ reason }) => reason)).toEqual(['already_selected']);
  });

  it('when the first letter is gone (retention): the later letters naming it with the same message still go once', () => {
    const again = entry(2, { offset: '2001', redrive: { from: `${DLQ}/0/1`, count: 1 } });
    const twice = entry(3, { offset: '2002', value: again.record.value, redrive: { from: `${DLQ}/0/1`, count: 1 } });
    const forged = entry(4, { offset: '2003', value: Buffer.from('{"id":"attacker"}'), redrive: { from: `${DLQ}/0/1`, count: 1 } });
    expect(planRedrive([again, twice, forged], { eventTopics: topics, force: false }).send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['2', '4']);
    expect(chainRootsOf(trailOf([again, twice, forged]), [`${DLQ}/0/2`, `${DLQ}/0/3`, `${DLQ}/0/4`]).size).toBe(3);
  });
});

describe('planRedrive: a forged redrive trail', () => {
  const topics = [POLICY, 'vigil.events.invocation', 'vigil.events.device'];

  // The trail is a header any producer of an event topic can write: a forged one made the real
  // letter skipped as redriven_since and the forger's message sent in its place.
  it('takes a later letter for an earlier one only when it holds the same message (key and value)', () => {
    const real = entry(1);
    const forged = entry(2, { offset: '2001', value: Buffer.from('{"id":"attacker"}'), redrive: { from: `${DLQ}/0/1`, count: 1 } });
    const plan = planRedrive([real, forged], { eventTopics: topics, force: false });
    expect(plan.send.map(({ entry: chosen }) => chosen.position.offset)).toEqual(['1', '2']);
    expect(plan.skipped).toEqual([]);
    const otherKey = entry(3, { offset: '2002', value: real.record.value, originalKey: Buffer.from('someone-else'), redrive: { from: `${DLQ}/0/1`, count: 1 } });
    expect(laterLettersOf([real, forged, otherKey]).size).toBe(0);
    // A truncated original is known by the SHA-256 its letter recorded.
    const whole = Buffer.from('{"id":"evt-big"}');
    const truncated = entry(4, { value: whole.subarray(0, 5), truncated: { bytes: whole.length, sha256: originalDigest({ originalKey: null, value: whole }).split(':')[1] ?? '' } });
    const again = entry(5, { offset: '2003', value: whole, redrive: { from: `${DLQ}/0/4`, count: 1 } });
    expect(laterLettersOf([truncated, again])).toEqual(new Map([[`${DLQ}/0/4`, `${DLQ}/0/5`]]));
  });
});

describe('redactSecrets', () => {
  it("blanks the credentials a gateway's record of a request holds: headers, API keys and tokens in the query string", () => {
    const kong = JSON.stringify({
      request: { uri: '/orders?apikey=k-123456&page=2', url: 'https://shop.example/orders?page=2&access_token=tok%2Fabc#x', headers: { Authorization: 'Bearer eyJhbGciOi.x.y', 'x-api-key': 'xk-1', cookie: 'sid=abc', accept: '*/*' } },
      response: { headers: { 'set-cookie': 'sid=new' } },
      consumer: { username: 'partner-acme' },
      client_ip: '203.0.113.7',
    });
    const shown = redactSecrets(Buffer.from(kong))?.toString('utf8') ?? '';
    for (const secret of ['k-123456', 'tok%2Fabc', 'eyJhbGciOi', 'xk-1', 'sid=abc', 'sid=new']) expect(shown).not.toContain(secret);
    expect(JSON.parse(shown)).toEqual({
      request: { uri: '/orders?apikey=[redacted]&page=2', url: 'https://shop.example/orders?page=2&access_token=[redacted]#x', headers: { Authorization: '[redacted]', 'x-api-key': '[redacted]', cookie: '[redacted]', accept: '*/*' } },
      response: { headers: { 'set-cookie': '[redacted]' } },
      consumer: { username: 'partner-acme' },
      client_ip: '203.0.113.7',
    });
    // A repeated header, as Kong writes it: a list of values.
    expect(redactSecrets(Buffer.from('{"headers":{"cookie":["sid=a", "lang=en"],"accept":["*/*"]}}'))?.toString()).toBe('{"headers":{"cookie":"[redacted]","accept":["*/*"]}}');
    // Hostile text a list pattern could backtrack on (items without commas, no closing bracket):
    // with a pattern that can match it several ways this never returns (the test times out).
    const hostile = `{"cookie":[${'"a" '.repeat(5000)}x`;
    expect(redactSecrets(Buffer.from(hostile))?.toString()).toBe(hostile);
    // A value with an escaped quote is blanked whole; bytes that are not UTF-8 can't be searched.
    expect(redactSecrets(Buffer.from('{"password":"a\\"b","user":"u"}'))?.toString()).toBe('{"password":"[redacted]","user":"u"}');
    expect(redactSecrets(Buffer.from([0xff, 0xfe, 0x70]))).toBeUndefined();
  });

  it("blanks an OpenTelemetry record's secret header attributes, one value or a list, and Tyk's raw request and response", () => {
    const attribute = (key: string, value: unknown): unknown => ({ key, value });
    const otlp = JSON.stringify({
      attributes: [
        attribute('http.request.header.authorization', { stringValue: 'Bearer SECRET-1' }),
        attribute('http.request.header.x-api-key', { arrayValue: { values: [{ stringValue: 'SECRET-2' }, { stringValue: 'SECRET-3' }] } }),
        attribute('http.response.header.set-cookie', { arrayValue: { values: [] } }),
        attribute('http.request.header.accept', { stringValue: '*/*' }),
        attribute('url.full', { stringValue: 'https://a.example/x?token=SECRET-4&page=2' }),
      ],
    });
    const shown = redactSecrets(Buffer.from(otlp))?.toString('utf8') ?? '';
    for (const secret of ['SECRET-1', 'SECRET-2', 'SECRET-3', 'SECRET-4']) expect(shown).not.toContain(secret);
    expect(JSON.parse(shown)).toEqual({
      attributes: [
        attribute('http.request.header.authorization', { stringValue: '[redacted]' }),
        attribute('http.request.header.x-api-key', { stringValue: '[redacted]' }),
        attribute('http.response.header.set-cookie', { stringValue: '[redacted]' }),
        attribute('http.request.header.accept', { stringValue: '*/*' }),
        attribute('url.full', { stringValue: 'https://a.example/x?token=[redacted]&page=2' }),
      ],
    });
    // The semantic conventions' key, spaced as another writer may space it.
    expect(redactSecrets(Buffer.from('{ "key" : "http.request.header.cookie" , "value" : { "stringValue" : "sid=S" } }'))?.toString()).toBe('{ "key" : "http.request.header.cookie" , "value" : {"stringValue":"[redacted]"} }');
    const tyk = JSON.stringify({ raw_request: Buffer.from('GET / HTTP/1.1\r\nAuthorization: Bearer T\r\n').toString('base64'), raw_response: 'SFRUUC8xLjE=', api_name: 'orders' });
    expect(JSON.parse(redactSecrets(Buffer.from(tyk))?.toString() ?? '')).toEqual({ raw_request: '[redacted]', raw_response: '[redacted]', api_name: 'orders' });
    // Hostile text the list pattern could backtack on: returns, unchanged.
    const hostile = `{"key":"http.request.header.cookie","value":{"arrayValue":{"values":[${'{"stringValue":"a"} '.repeat(5000)}x`;
    expect(redactSecrets(Buffer.from(hostile))?.toString()).toBe(hostile);
  });

  it('is what show prints by default, and --unredacted prints the value as it is', () => {
    const letter = entry(1, { reasonCode: 'adapter_unmapped', value: Buffer.from('{"request":{"headers":{"authorization":"Basic dTpw"}}}') });
    expect(formatEntry(letter, 512).at(-1)).toBe('  value          (54 bytes) {"request":{"headers":{"authorization":"[redacted]"}}}');
    expect(formatEntry(letter, 512, true).at(-1)).toBe('  value          (54 bytes) {"request":{"headers":{"authorization":"Basic dTpw"}}}');
  });

  it('withholds a value that is not UTF-8 (a protobuf record, a corrupt message) unless --unredacted', () => {
    // A protobuf OTLP record: the header's name and value are length-prefixed strings, not JSON.
    const proto = Buffer.concat([Buffer.from([0x0a, 0x21]), Buffer.from('http.request.header.authorization'), Buffer.from([0x12, 0x0d, 0x0a, 0x0b]), Buffer.from('Bearer S-P1'), Buffer.from([0xff])]);
    const letter = entry(1, { reasonCode: 'adapter_unparseable', value: proto });
    const shown = formatEntry(letter, 512).at(-1) ?? '';
    expect(shown).toBe(`  value          (${proto.length} bytes) withheld: not UTF-8 text, so credentials in it can't be found and redacted (--unredacted prints it)`);
    expect(formatEntry(letter, 512, true).at(-1)).toContain('Bearer S-P1');
    // JSON with one byte that is not UTF-8: withheld too, not printed unredacted.
    const corrupt = entry(2, { reasonCode: 'not_json', value: Buffer.concat([Buffer.from('{"authorization":"Bearer S-C1",'), Buffer.from([0xc3])]) });
    expect(formatEntry(corrupt, 512).at(-1)).not.toContain('S-C1');
  });
});

describe('formatEntry', () => {
  // The reason quotes the message (a family, an unknown key), and every header is the producer's.
  it('escapes control characters in every header it prints, so none reaches the terminal', () => {
    const hostile = entry(1, { reason: 'a device\u001b[2J\u001b[31mFAKE\nreason ok', topic: 'vigil.events.policy\u0007', reasonCode: 'wrong_topic\u009b' as DeadLetterRecord['reasonCode'] });
    const printed = formatEntry(hostile, 64).join('\n');
    const controls = [...printed].filter((character) => character !== '\n' && ((character.codePointAt(0) ?? 0) < 0x20 || ((character.codePointAt(0) ?? 0) >= 0x7f && (character.codePointAt(0) ?? 0) <= 0x9f)));
    expect(controls).toEqual([]);
    expect(printed).toContain('reason         wrong_topic\\u009b: a device\\u001b[2J\\u001b[31mFAKE\\nreason ok');
    expect(printed.split('\n').filter((line) => line.trimStart().startsWith('reason'))).toHaveLength(1);
  });
});

describe('escapeBytes', () => {
  it('prints UTF-8 text as it is, escaping control characters and backslashes', () => {
    expect(escapeBytes(Buffer.from('{"path":"/\u0000null","ua":"a\tb"}\n'), 100)).toBe('{"path":"/\\u0000null","ua":"a\\tb"}\\n');
    expect(escapeBytes(Buffer.from('C:\\x \u0085 \u2028 ü'), 100)).toBe('C:\\\\x \\u0085 \\u2028 ü');
  });

  it('prints bytes that are not UTF-8 as \\xNN', () => {
    expect(escapeBytes(Buffer.from([0x7b, 0xff, 0xfe, 0x5c, 0x41, 0x0a]), 100)).toBe('{\\xff\\xfe\\\\A\\x0a');
  });

  it('cuts at the byte limit, never inside a character, and counts what is left', () => {
    expect(escapeBytes(Buffer.from('abcdef'), 4)).toBe('abcd… (2 more bytes)');
    // ü is two bytes: at a 4-byte limit "aüb" (4 bytes) fits, "aüü" would not.
    expect(escapeBytes(Buffer.from('aübü'), 4)).toBe('aüb… (2 more bytes)');
    expect(escapeBytes(Buffer.from('aüü'), 2)).toBe('a… (4 more bytes)');
    expect(escapeBytes(Buffer.from([0xff, 0xff, 0xff]), 2)).toBe('\\xff\\xff… (1 more bytes)');
  });

  it('says when there is nothing to print', () => {
    expect(escapeBytes(null, 10)).toBe('(no value)');
    expect(escapeBytes(Buffer.alloc(0), 10)).toBe('(0 bytes)');
  });
});

describe('summarise', () => {
  it('counts by reason in the codes order, with distinct source positions, times, source topics and redrives', () => {
    const early = Date.parse('2026-11-27T09:00:00Z');
    const late = Date.parse('2026-11-27T11:00:00Z');
    const summary = summarise(
      DLQ,
      [
        entry(1, { reasonCode: 'not_json' }, late),
        entry(2, {}, late),
        entry(3, { offset: '1002' }, early), // the same original as entry 2
        entry(4, { topic: 'vigil.events.device', redrive: { from: `${DLQ}/0/1`, count: 1 } }, early),
      ],
      new Map([[0, '5']]),
    );
    expect(summary).toEqual({
      topic: DLQ,
      ends: { 0: '5' },
      total: 4,
      byReason: [
        { reasonCode: 'too_large', count: 3, distinct: 2, oldest: early, newest: late, sourceTopics: { [POLICY]: 2, 'vigil.events.device': 1 }, redriven: 1 },
        { reasonCode: 'not_json', count: 1, distinct: 1, oldest: late, newest: late, sourceTopics: { [POLICY]: 1 }, redriven: 0 },
      ],
    });
  });
});

describe('formatRedrive', () => {
  it('reports selected, sent and skipped, with the reasons and examples', () => {
    const position = { topic: DLQ, partition: 0, offset: '2' };
    expect(
      formatRedrive({ selected: 3, sent: 2, wouldSend: 0, sentByTopic: { [POLICY]: 2 }, skipped: [{ reason: 'redrive_limit', detail: 'redriven 3 times already; --force sends it again', position }], dryRun: false }),
    ).toEqual(['redrive: 3 selected, 2 sent, 1 skipped', `  sent 2 to ${POLICY}`, `  skipped 1 redrive_limit (${DLQ}/0/2: redriven 3 times already; --force sends it again)`]);
    expect(formatRedrive({ selected: 2, sent: 0, wouldSend: 2, sentByTopic: {}, skipped: [], dryRun: true })).toEqual(['redrive (dry run): 2 selected, 0 sent (2 would be sent), 0 skipped']);
  });
});

describe('runDeadLetters --help', () => {
  it.each([[['--help']], [['-h']], [['help']], [['list', '--help']], [['redrive', '--reason', 'schema_invalid', '-h']]])('prints the usage and exits 0 for %j, loading nothing', async (args: string[]) => {
    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    try {
      // No context: asking for one (loading the configuration, connecting) would throw.
      const code = await runDeadLetters(args, () => {
        throw new Error('the configuration was loaded');
      });
      expect(code).toBe(0);
      expect(printed.join('\n')).toContain('vigil deadletters list');
    } finally {
      log.mockRestore();
    }
  });
});
