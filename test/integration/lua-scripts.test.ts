import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  alertKeys,
  commandName,
  defineScripts,
  deleteKeysUnder,
  firstFullDistinctWindow,
  groupKeys,
  keysUnder,
  parseDistinctShareState,
  riskKeys,
  requestKeys as correlationRequestKeys,
  stateKey,
  userKeys as correlationUserKeys,
} from '../../detectors';
import { callBatch, callScript, luaFiles } from '../support/redis';

/**
 * Every Lua script of the detection engine, held to the contract in its header, on the real
 * Redis. Each test gets its own key prefix and deletes its keys afterwards.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TTL = 60_000;

type Script = Parameters<typeof callScript>[1];

const deleteKeys = deleteKeysUnder;

let redis: Redis;
let prefix: string;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
  defineScripts(redis);
});

afterAll(async () => {
  await redis.quit();
});

beforeEach(() => {
  prefix = `it-${randomBytes(4).toString('hex')}`;
});

afterEach(async () => {
  await deleteKeys(redis, prefix);
});

/** The keys of one (rule, group key), built by the one key builder. */
function key(part: Parameters<typeof stateKey>[3], keyText = 'user=u-1'): string {
  return stateKey(prefix, 'it-rule', keyText, part);
}

async function call(script: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown[]> {
  const reply = await callScript(redis, script, keys, args);
  if (!Array.isArray(reply)) throw new Error(`${script} replied ${JSON.stringify(reply)}, expected an array`);
  return reply as unknown[];
}

/** windowAdd (version 3) with the window ending at the event (as the engine calls it). */
function windowAdd(
  id: string,
  time: number,
  options: { start?: number; end?: number; trim?: number; ttl?: number; max?: number; least?: number; window?: string; fired?: string } = {},
): Promise<unknown[]> {
  return call(
    'windowAdd',
    [options.window ?? key('window'), options.fired ?? key('fired')],
    [id, time, options.start ?? 0, options.end ?? time, options.trim ?? 0, options.ttl ?? TTL, options.max ?? 50, options.least ?? 0],
  );
}

function distinctAdd(
  value: string,
  id: string,
  time: number,
  options: { start?: number; end?: number; trim?: number; ttl?: number; read?: number; least?: number; max?: number } = {},
): Promise<unknown[]> {
  return call(
    'distinctAdd',
    [key('values'), key('events'), key('fired')],
    [value, id, time, options.start ?? 0, options.end ?? time, options.trim ?? 0, options.ttl ?? TTL, options.read ?? 200, options.least ?? 0, options.max ?? 50],
  );
}

/** sequenceAdd-2 for one event: `members` are the "<step>:<event id>" it should record. */
function sequenceAdd(
  time: number,
  members: readonly string[],
  options: { start?: number; end?: number; trim?: number; ttl?: number; max?: number; final?: number } = {},
): Promise<unknown[]> {
  const id = members[0]?.split(':')[1] ?? '';
  const steps = members.map((member) => member.split(':')[0]).join(',');
  return call('sequenceAdd', [key('steps'), key('fired')], [
    time, options.start ?? 0, options.end ?? time, options.trim ?? 0, options.ttl ?? TTL, options.max ?? 200, id, steps, options.final ?? 9,
  ]);
}

/** firstSeen-1; a resolution of 1 ms (the default here) records every sighting. */
function firstSeen(value: string, time: number, options: { trim?: number; ttl?: number; resolution?: number } = {}): Promise<unknown[]> {
  return call('firstSeen', [key('seen')], [value, time, options.trim ?? 0, options.ttl ?? TTL, options.resolution ?? 1]);
}

/** locationAdd-2 for one located event: the reply parsed back to locations. */
async function locationAdd(
  location: { eventId: string; time: string } & Record<string, unknown>,
  options: { trim?: number; ttl?: number; max?: number } = {},
): Promise<[unknown, unknown]> {
  const reply = await call('locationAdd', [key('locations'), key('located')], [
    location.eventId, Date.parse(location.time), JSON.stringify(location), options.trim ?? 0, options.ttl ?? TTL, options.max ?? 128,
  ]);
  return reply.map((side) => (typeof side === 'string' ? (JSON.parse(side) as unknown) : side)) as [unknown, unknown];
}

async function claimFiring(time: number, cooldownMs: number, ttl = TTL, id = `det-${time}`): Promise<unknown> {
  return callScript(redis, 'claimFiring', [key('fired')], [time, cooldownMs, ttl, id]);
}

/** The correlation keys of a user (last device, devices, session), from the one key builder. */
function userKeys(userId = 'u-1', sessionId = 's-1'): [string, string, string] {
  return correlationUserKeys(prefix, userId, sessionId);
}

/** The correlation keys of one request: its policy decisions, and the user its authentication pass named. */
function requestKeys(requestId = 'r-1'): [string, string] {
  return correlationRequestKeys(prefix, requestId);
}

/** The correlation key of one request's policy decisions. */
function requestKey(requestId = 'r-1'): string {
  return requestKeys(requestId)[0];
}

function noteDevice(
  deviceId: string,
  time: number,
  options: { country?: string; city?: string; ttl?: number; session?: string; keys?: [string, string, string] } = {},
): Promise<unknown> {
  return callScript(redis, 'noteDevice', options.keys ?? userKeys(), [
    deviceId,
    time,
    options.country ?? '',
    options.city ?? '',
    options.ttl ?? TTL,
    options.session ?? '',
  ]);
}

function readContext(readSession: 0 | 1, keys: [string, string, string] = userKeys()): Promise<unknown[]> {
  return call('readContext', keys, [readSession]);
}

function noteRequest(kind: string, outcome: 'pass' | 'fail', options: { ttl?: number; request?: string; user?: string } = {}): Promise<unknown> {
  return callScript(redis, 'noteRequest', requestKeys(options.request), [kind, outcome, options.ttl ?? TTL, options.user ?? '']);
}

function readRequest(request?: string): Promise<unknown[]> {
  return call('readRequest', requestKeys(request), []);
}

/** A flat HGETALL-style reply as an object, so the tests don't depend on hash field order. */
function pairs(flat: readonly unknown[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (let index = 0; index + 1 < flat.length; index += 2) result[String(flat[index])] = String(flat[index + 1]);
  return result;
}

/** Scripts with a contract test below; compared with the files shipped. */
const covered = new Set<string>();

function describeScript(file: string, body: () => void): void {
  covered.add(file);
  describe(file, body);
}

describe('the Lua scripts of the detection engine, on the real Redis', () => {
  describeScript('windowAdd-2.lua', () => {
    it('counts the events in [start, end] and lists them oldest first with their scores', async () => {
      await windowAdd('evt-1', 1000);
      await windowAdd('evt-5', 5000); // later in event time, arrived earlier: outside [start, 4000]
      await windowAdd('evt-3', 3000);
      await windowAdd('evt-2', 2000);
      const reply = await windowAdd('evt-4', 4000, { start: 2000, end: 4000 });
      expect(reply).toEqual([3, null, null, null, 'evt-2', '2000', 'evt-3', '3000', 'evt-4', '4000']);
    });

    it('counts an event exactly at the window start and not one a millisecond before it', async () => {
      await windowAdd('evt-before', 9_999);
      await windowAdd('evt-edge', 10_000);
      const reply = await windowAdd('evt-end', 70_000, { start: 10_000, end: 70_000 });
      expect(reply).toEqual([2, null, null, null, 'evt-edge', '10000', 'evt-end', '70000']);
    });

    it('past ARGV[7] members (a flood), counts the window up to the event and returns its oldest time and its newest members, oldest first', async () => {
      for (let index = 1; index <= 4; index++) await windowAdd(`evt-${index}`, index * 1000);
      // Arrived earlier, later in event time: counted either side, not in the window up to the event.
      await windowAdd('evt-7', 7000);
      const reply = await windowAdd('evt-5', 5000, { start: 2000, end: 8000, max: 2 });
      expect(reply).toEqual([5, null, 4, '2000', 'evt-4', '4000', 'evt-5', '5000']);
    });

    it('does not count a re-added (redelivered) event id twice', async () => {
      expect((await windowAdd('evt-1', 1000))[0]).toBe(1);
      expect((await windowAdd('evt-2', 2000))[0]).toBe(2);
      const again = await windowAdd('evt-1', 1000, { end: 2000 });
      expect(again).toEqual([2, null, null, null, 'evt-1', '1000', 'evt-2', '2000']);
      expect(await redis.zcard(key('window'))).toBe(2);
    });

    it('drops members scored below the trim once the call is done, keeping one scored exactly at it', async () => {
      await windowAdd('evt-1', 1000);
      await windowAdd('evt-2', 2000);
      // The engine never reads below the trim (start >= trim), so the call may trim after its reads.
      const reply = await windowAdd('evt-3', 3000, { start: 2000, trim: 2000 });
      expect(reply).toEqual([2, null, null, null, 'evt-2', '2000', 'evt-3', '3000']);
      expect(await redis.zrange(key('window'), 0, -1)).toEqual(['evt-2', 'evt-3']);
    });

    it('returns the count alone, without members or fired mark, below the least count worth reading (ARGV[8])', async () => {
      await redis.hset(key('fired'), 'time', '12345', 'id', 'det-a');
      await windowAdd('evt-1', 1000, { least: 3 });
      expect(await windowAdd('evt-2', 2000, { least: 3 })).toEqual([2, null]);
      expect(await windowAdd('evt-3', 3000, { least: 3 })).toEqual([3, '12345|det-a', null, null, 'evt-1', '1000', 'evt-2', '2000', 'evt-3', '3000']);
    });

    it('returns the fired mark from KEYS[2] and leaves that key alone', async () => {
      await redis.hset(key('fired'), 'time', '12345', 'id', 'det-a');
      const reply = await windowAdd('evt-1', 20_000);
      expect(reply[1]).toBe('12345|det-a');
      expect(await redis.hgetall(key('fired'))).toEqual({ time: '12345', id: 'det-a' });
      expect(await redis.pttl(key('fired'))).toBe(-1);
    });

    it('is atomic under concurrent callers: 20 clients × 25 adds give each caller a distinct count, 1..500', async () => {
      const clients = Array.from({ length: 20 }, () => new Redis(REDIS_URL));
      try {
        for (const client of clients) defineScripts(client);
        const time = 1_000_000;
        const replies = await Promise.all(
          clients.flatMap((client, clientIndex) =>
            Array.from({ length: 25 }, (_, call) =>
              callScript(client, 'windowAdd', [key('window'), key('fired')], [`evt-${clientIndex}-${call}`, time, time - TTL, time, 0, TTL, 1, 0]),
            ),
          ),
        );
        const counts = replies.map((reply) => (reply as unknown[])[0] as number).sort((a, b) => a - b);
        expect(counts).toEqual(Array.from({ length: 500 }, (_, index) => index + 1));
        expect(await redis.zcard(key('window'))).toBe(500);
      } finally {
        await Promise.all(clients.map((client) => client.quit()));
      }
    });
  });

  describeScript('distinctAdd-3.lua', () => {
    it('keeps every event with its value and time, and reads back every event of [start, end] oldest first', async () => {
      await distinctAdd('u-1', 'evt-1', 1000);
      await distinctAdd('u-2', 'evt-2', 2000);
      await distinctAdd('u-1', 'evt-3', 3000);
      const reply = await distinctAdd('u-3', 'evt-4', 4000);
      // Bound: 3 values seen since start; 4 events held, all read (no fallback: false, 0).
      expect(reply).toEqual([3, null, 4, null, 0, 'evt-1|u-1', '1000', 'evt-2|u-2', '2000', 'evt-3|u-1', '3000', 'evt-4|u-3', '4000']);
    });

    it('reads a window either side: a late event gets the events after it, up to end', async () => {
      await distinctAdd('u-later', 'evt-later', 9000);
      await distinctAdd('u-beyond', 'evt-beyond', 20_000);
      const reply = await distinctAdd('u-late', 'evt-late', 5000, { start: 0, end: 10_000 });
      // The bound counts every value seen since start (u-beyond too: it only bounds); the events stop at end.
      expect(reply).toEqual([3, null, 2, null, 0, 'evt-late|u-late', '5000', 'evt-later|u-later', '9000']);
    });

    it('keeps the latest time of a value (GT) when an older event arrives late, and the older event too', async () => {
      await distinctAdd('u-1', 'evt-late-seen-first', 5000);
      await distinctAdd('u-1', 'evt-older', 3000);
      expect(await redis.zscore(key('values'), 'u-1')).toBe('5000');
      expect(await redis.zscore(key('events'), 'evt-older|u-1')).toBe('3000');
      // A redelivery adds nothing.
      await distinctAdd('u-1', 'evt-older', 3000);
      expect(await redis.zcard(key('events'))).toBe(2);
    });

    it('falls back to the window ending at the event when more events are held than ARGV[8]', async () => {
      await distinctAdd('u-future', 'evt-future', 9000);
      for (let index = 1; index <= 4; index++) await distinctAdd(`u-${index}`, `evt-${index}`, index * 1000);
      const reply = await distinctAdd('u-5', 'evt-5', 5000, { start: 1000, end: 10_000, read: 5, max: 2 });
      // 6 held in [start, end], above 5: the values last seen in [start, time] (u-future is after
      // the event), the first two values and events up to the event.
      expect(reply).toEqual([6, null, 6, 5, 2, 'u-1', 'u-2', 'evt-1|u-1', '1000', 'evt-2|u-2', '2000']);
      const all = await distinctAdd('u-5', 'evt-5', 5000, { start: 1000, end: 10_000, read: 6 });
      expect(all.slice(0, 5)).toEqual([6, null, 6, null, 0]);
      expect(all).toHaveLength(5 + 12);
    });

    it('drops values and events scored below the trim', async () => {
      await distinctAdd('u-1', 'evt-1', 1000);
      await distinctAdd('u-2', 'evt-2', 2000);
      await distinctAdd('u-3', 'evt-3', 3000, { trim: 2000 });
      expect(await redis.zrange(key('values'), 0, -1)).toEqual(['u-2', 'u-3']);
      expect(await redis.zrange(key('events'), 0, -1)).toEqual(['evt-2|u-2', 'evt-3|u-3']);
    });

    it('returns the bound alone below the least count worth reading (ARGV[9])', async () => {
      await distinctAdd('u-1', 'evt-1', 1000, { least: 2 });
      expect(await distinctAdd('u-1', 'evt-2', 2000, { least: 2 })).toEqual([1, null, 0]);
      expect(await distinctAdd('u-2', 'evt-3', 3000, { least: 2 })).toEqual([2, null, 3, null, 0, 'evt-1|u-1', '1000', 'evt-2|u-1', '2000', 'evt-3|u-2', '3000']);
    });

    it('returns the fired mark from KEYS[3] and leaves that key alone', async () => {
      await redis.hset(key('fired'), 'time', '777', 'id', 'det-b');
      const reply = await distinctAdd('u-1', 'evt-1', 1000);
      expect(reply.slice(0, 3)).toEqual([1, '777|det-b', 1]);
      expect(await redis.pttl(key('fired'))).toBe(-1);
    });
  });

  describeScript('distinctShare-4.lua', () => {
    /** distinctShare-4 for an event that is counted (a failure) or not (a success). */
    const share = (
      value: string,
      id: string,
      time: number,
      counted: boolean,
      options: { start?: number; end?: number; trim?: number; ttl?: number; least?: number; read?: number } = {},
    ) =>
      call('distinctShare', [key('values'), key('events'), key('fired'), key('others')], [
        value, id, time, options.start ?? 0, options.end ?? time, options.trim ?? 0, options.ttl ?? TTL, options.read ?? 200, options.least ?? 0, counted ? 1 : 0, 50,
      ]);

    it('keeps the counted events and the others, each "<id>|<value>", and reads both back with their times', async () => {
      await share('u-1', 'evt-1', 1000, true);
      await share('u-2', 'evt-2', 2000, false);
      await share('u-3', 'evt-3', 3000, true);
      const reply = await share('u-1', 'evt-4', 4000, true);
      // u-2 only passed: it is no counted value (the bound), only a value of the share. 3 counted events, then the one other.
      expect(reply).toEqual([2, null, 4, null, 0, 0, 0, 3, 'evt-1|u-1', '1000', 'evt-3|u-3', '3000', 'evt-4|u-1', '4000', 'evt-2|u-2', '2000']);
      expect(await redis.zrange(key('others'), 0, -1)).toEqual(['evt-2|u-2']);
    });

    it('reads [start, end] only, returns the bound alone below the least count, and falls back above ARGV[8]', async () => {
      await share('u-old', 'evt-1', 500, true);
      await share('', 'evt-2', 800, false);
      await share('u-1', 'evt-3', 1500, true);
      await share('u-9', 'evt-9', 9000, true);
      expect(await share('', 'evt-4', 2000, false, { start: 1000, end: 3000, least: 3 })).toEqual([2, null, 0]);
      expect(await share('u-2', 'evt-5', 2500, true, { start: 1000, end: 3000, least: 3 })).toEqual([
        3, null, 3, null, 0, 0, 0, 2, 'evt-3|u-1', '1500', 'evt-5|u-2', '2500', 'evt-4|', '2000',
      ]);
      // Capped: counted values in [start, time], again, the others' values (none: no value); values and counted events.
      expect(await share('', 'evt-6', 2600, false, { start: 1000, end: 3000, least: 3, read: 3 })).toEqual([
        3, null, 4, 2, 2, 0, 2, 'u-1', 'u-2', 2, 'evt-3|u-1', '1500', 'evt-5|u-2', '2500',
      ]);
    });

    it('counts, in the fallback, the distinct values of the newest ARGV[8] others in [start, time] that are not counted ones', async () => {
      await share('u-1', 'evt-1', 1500, true);
      await share('u-2', 'evt-2', 2500, true);
      await share('u-late', 'evt-3', 2900, true); // its latest failure is after the event: not among the counted values up to it
      await share('p-old', 'evt-f', 1200, false); // beyond the newest 6
      await share('u-1', 'evt-a', 1600, false); // failed, then signed in: one value, a counted one
      await share('p-1', 'evt-b', 1700, false);
      await share('p-1', 'evt-c', 1800, false); // the same user twice: once
      await share('', 'evt-d', 1900, false); // no value: none
      await share('u-late', 'evt-e', 2000, false);
      // 10 events held, 6 read: the newest 6 others up to 2600 hold p-2, u-late and p-1 besides u-1.
      expect(await share('p-2', 'evt-g', 2600, false, { start: 1000, end: 3000, read: 6 })).toEqual([
        3, null, 10, 2, 2, 3, 2, 'u-1', 'u-2', 2, 'evt-1|u-1', '1500', 'evt-2|u-2', '2500',
      ]);
    });

    it('gives the share in values read in full or in the fallback: one account padding a stuffing run is one value (6 December 2026)', async () => {
      const window = 600_000;
      const base = 1_000_000;
      const attempt = (value: string, id: string, time: number, counted: boolean, read = 200) =>
        share(value, id, time, counted, { start: time - window, end: time + window, least: 8, read });
      // 10 users failing, 20 s apart, and 30 sign-ins of the attacker's own account between them: 10 of 40 events.
      const events = [
        ...Array.from({ length: 10 }, (_, index) => ({ value: `leaked-${index}`, id: `evt-f${index}`, time: base + index * 20_000, counted: true })),
        ...Array.from({ length: 30 }, (_, index) => ({ value: 'own-account', id: `evt-p${index}`, time: base + 2000 + index * 5000, counted: false })),
      ].sort((left, right) => left.time - right.time);
      for (const { value, id, time, counted } of events) await attempt(value, id, time, counted);
      const last = { value: 'leaked-9', id: 'evt-f9', time: base + 180_000 };
      const full = parseDistinctShareState(await attempt(last.value, last.id, last.time, true));
      const capped = parseDistinctShareState(await attempt(last.value, last.id, last.time, true, 20));
      expect(full.members).toHaveLength(40);
      expect(firstFullDistinctWindow(full.members ?? [], last.time, window, 8, 0.5).found?.share).toStrictEqual({ counted: 10, total: 11 });
      expect(capped.capped?.share).toStrictEqual({ counted: 10, total: 11 });
    });

    it('keeps an office NAT under the share in the fallback: the newest others hold many users', async () => {
      const window = 600_000;
      const base = 1_000_000;
      const attempt = (value: string, id: string, time: number, counted: boolean, read = 200) =>
        share(value, id, time, counted, { start: time - window, end: time + window, least: 8, read });
      // 40 staff sign in (password, then a second factor), 8 of them after a typo: 8 of 40 users, 8 of 88 events.
      for (let index = 0; index < 40; index++) {
        const time = base + index * 10_000;
        if (index % 5 === 0) await attempt(`staff-${index}`, `evt-typo-${index}`, time, true);
        await attempt(`staff-${index}`, `evt-password-${index}`, time + 1000, false);
        await attempt(`staff-${index}`, `evt-otp-${index}`, time + 4000, false);
      }
      const time = base + 39 * 10_000 + 4000;
      const full = parseDistinctShareState(await attempt('staff-39', 'evt-otp-39', time, false));
      const found = firstFullDistinctWindow(full.members ?? [], time, window, 8, 0.5);
      expect([found.found, found.reached]).toStrictEqual([undefined, true]);
      // 50 read: the newest 50 others are staff 15 to 39, of whom 5 failed and are counted once, among the 8: 8 of at least 28 users.
      const capped = parseDistinctShareState(await attempt('staff-39', 'evt-otp-39', time, false, 50));
      expect(capped.capped?.share).toStrictEqual({ counted: 8, total: 28 });
    });

    it('trims all three sets after the batch and returns the fired mark', async () => {
      await redis.hset(key('fired'), 'time', '777', 'id', 'det-b');
      await share('u-1', 'evt-1', 1000, true);
      await share('', 'evt-2', 1000, false);
      const reply = await share('u-2', 'evt-3', 3000, true, { start: 2000, trim: 2000 });
      expect(reply.slice(0, 3)).toEqual([1, '777|det-b', 1]);
      expect(await redis.zrange(key('values'), 0, -1)).toEqual(['u-2']);
      expect(await redis.zrange(key('events'), 0, -1)).toEqual(['evt-3|u-2']);
      expect(await redis.zrange(key('others'), 0, -1)).toEqual([]);
      expect(await redis.pttl(key('fired'))).toBe(-1);
    });
  });

  describeScript('sequenceAdd-2.lua', () => {
    it('adds every step the event matched and reads the steps in [start, end] newest first', async () => {
      await sequenceAdd(1000, ['0:evt-1']);
      await sequenceAdd(9000, ['1:evt-9']); // outside [.., 3000]
      await sequenceAdd(2000, ['0:evt-2', '1:evt-2']);
      const reply = await sequenceAdd(3000, ['1:evt-3'], { start: 1000, end: 3000 });
      expect(reply).toEqual([null, '1:evt-3', '3000', '1:evt-2', '2000', '0:evt-2', '2000', '0:evt-1', '1000']);
    });

    it('counts the start edge in and the millisecond before it out', async () => {
      await sequenceAdd(9_999, ['0:evt-before']);
      await sequenceAdd(10_000, ['0:evt-edge']);
      const reply = await sequenceAdd(70_000, ['1:evt-end'], { start: 10_000, end: 70_000 });
      expect(reply).toEqual([null, '1:evt-end', '70000', '0:evt-edge', '10000']);
    });

    it('does not add a redelivered step twice, caps the reply by ARGV[6] and trims old members', async () => {
      await sequenceAdd(1000, ['0:evt-1']);
      await sequenceAdd(1000, ['0:evt-1']);
      await sequenceAdd(2000, ['0:evt-2']);
      expect(await redis.zcard(key('steps'))).toBe(2);
      // Capped from the newest end: a long history must not push the latest steps out.
      expect(await sequenceAdd(3000, ['0:evt-3'], { max: 1 })).toEqual([null, '0:evt-3', '3000']);
      await sequenceAdd(4000, ['1:evt-4'], { trim: 2000 });
      expect(await redis.zrange(key('steps'), 0, -1)).toEqual(['0:evt-2', '0:evt-3', '1:evt-4']);
    });

    it('leaves final steps before the event out of the reply (ARGV[9] names the final step)', async () => {
      await sequenceAdd(1000, ['1:evt-1'], { final: 1 });
      await sequenceAdd(2000, ['0:evt-2'], { final: 1 });
      await sequenceAdd(5000, ['1:evt-5'], { final: 1 });
      const reply = await sequenceAdd(3000, ['1:evt-3'], { start: 0, end: 9000, final: 1 });
      expect(reply).toEqual([null, '1:evt-5', '5000', '1:evt-3', '3000', '0:evt-2', '2000']);
      expect(await redis.zcard(key('steps'))).toBe(4);
    });

    it('returns the fired mark from KEYS[2] and leaves that key alone', async () => {
      await redis.hset(key('fired'), 'time', '4242', 'id', 'det-c');
      expect((await sequenceAdd(1000, ['0:evt-1']))[0]).toBe('4242|det-c');
      expect(await redis.pttl(key('fired'))).toBe(-1);
    });
  });

  describeScript('firstSeen-1.lua', () => {
    it('says when a value was last seen and how many other values the key knows', async () => {
      expect(await firstSeen('dev-a', 1000)).toEqual([null, 0]);
      expect(await firstSeen('dev-b', 2000)).toEqual([null, 1]);
      expect(await firstSeen('dev-c', 3000)).toEqual([null, 2]);
      // Known excludes the value itself.
      expect(await firstSeen('dev-a', 4000)).toEqual(['1000', 2]);
      expect(await firstSeen('dev-a', 5000)).toEqual(['4000', 2]);
    });

    it('keeps the latest time when an older event arrives late', async () => {
      await firstSeen('dev-a', 5000);
      expect(await firstSeen('dev-a', 3000)).toEqual(['5000', null]);
      expect(await redis.zscore(key('seen'), 'dev-a')).toBe('5000');
    });

    it('does not record a known value again within the resolution, and does not count the others for it', async () => {
      await firstSeen('dev-a', 1000, { resolution: 10_000 });
      await firstSeen('dev-b', 1500, { resolution: 10_000 });
      expect(await firstSeen('dev-a', 5000, { resolution: 10_000 })).toEqual(['1000', null]);
      expect(await redis.zscore(key('seen'), 'dev-a')).toBe('1000');
      // A redelivery is answered as the first time even within the resolution.
      expect(await firstSeen('dev-b', 1500, { resolution: 10_000 })).toEqual(['1500', 1]);
      // At the resolution it is recorded again (and counted, as before).
      expect(await firstSeen('dev-a', 11_000, { resolution: 10_000 })).toEqual(['1000', 1]);
      expect(await redis.zscore(key('seen'), 'dev-a')).toBe('11000');
    });

    it('forgets values last seen before the horizon, keeping one seen exactly at it', async () => {
      await firstSeen('dev-old', 1000);
      await firstSeen('dev-edge', 2000);
      await firstSeen('dev-old-again', 1500);
      expect(await firstSeen('dev-old', 10_000, { trim: 2000 })).toEqual([null, 1]);
      expect((await redis.zrange(key('seen'), 0, -1)).sort()).toEqual(['dev-edge', 'dev-old']);
    });
  });

  describeScript('locationAdd-2.lua', () => {
    const place = (city: string, eventId: string, time: string): { lat: number; lon: number; city: string; time: string; eventId: string } => ({
      lat: city.length,
      lon: -city.length,
      city,
      time: `2026-03-02T${time}:00.000Z`,
      eventId,
    });
    const london = place('London', 'evt-london', '09:00');
    const rome = place('Rome', 'evt-rome', '09:30');
    const paris = place('Paris', 'evt-paris', '10:00');

    it('returns no neighbours the first time, then the one before in event time', async () => {
      expect(await locationAdd(london)).toEqual([null, null]);
      expect(await locationAdd(paris)).toEqual([london, null]);
      expect(await redis.zrange(key('locations'), 0, -1)).toEqual(['evt-london', 'evt-paris']);
    });

    it('gives an older event that arrives late both its neighbours in event time, not the newest', async () => {
      await locationAdd(london);
      await locationAdd(paris);
      expect(await locationAdd(rome)).toEqual([london, paris]);
      // Newest first: each event finds the later one as its next neighbour.
      const other = 'user=u-2';
      const add = (location: typeof london): Promise<unknown[]> =>
        call('locationAdd', [key('locations', other), key('located', other)], [location.eventId, Date.parse(location.time), JSON.stringify(location), 0, TTL, 128]);
      expect(await add(paris)).toEqual([null, null]);
      expect((await add(london)).map((side) => (typeof side === 'string' ? (JSON.parse(side) as unknown) : side))).toEqual([null, paris]);
    });

    it('gives a redelivered event the neighbours it had the first time, ignoring events that arrived after it', async () => {
      await locationAdd(london);
      await locationAdd(paris);
      await locationAdd(rome); // between the two, arrived last
      expect(await locationAdd(paris)).toEqual([london, null]);
      expect(await locationAdd(london)).toEqual([null, null]);
      expect(await locationAdd(rome)).toEqual([london, paris]);
      expect(await redis.zcard(key('locations'))).toBe(3);
    });

    it('orders events of the same instant by event id', async () => {
      const first = place('Oslo', 'evt-a', '09:00');
      const second = place('Lima', 'evt-b', '09:00');
      await locationAdd(second);
      expect(await locationAdd(first)).toEqual([null, second]);
    });

    it('forgets events before the trim (with their locations) and keeps at most the given number, oldest dropped first', async () => {
      const at = (minutes: number): number => Date.parse(london.time) + minutes * 60_000;
      for (let minute = 0; minute < 5; minute++) await locationAdd({ ...london, eventId: `e-${minute}`, time: new Date(at(minute)).toISOString() }, { max: 3 });
      expect(await redis.zrange(key('locations'), 0, -1)).toEqual(['e-2', 'e-3', 'e-4']);
      expect((await redis.hkeys(key('located'))).sort()).toEqual(['e:e-2', 'e:e-3', 'e:e-4', 'n']);
      // Below the trim: neither stored nor compared.
      expect(await locationAdd({ ...london, eventId: 'e-old', time: new Date(at(0)).toISOString() }, { trim: at(3) })).toEqual([null, null]);
      expect(await redis.zrange(key('locations'), 0, -1)).toEqual(['e-3', 'e-4']);
      expect((await redis.hkeys(key('located'))).sort()).toEqual(['e:e-3', 'e:e-4', 'n']);
    });
  });

  describeScript('claimFiring-1.lua', () => {
    it('claims a key that never fired and stores the time with the TTL passed', async () => {
      expect(await claimFiring(5000, 1000, 30_000)).toBe(1);
      expect(await redis.hgetall(key('fired'))).toEqual({ time: '5000', id: 'det-5000' });
      const remaining = await redis.pttl(key('fired'));
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThanOrEqual(30_000);
    });

    it('refuses a claim within the cooldown on either side, and accepts one exactly a cooldown away', async () => {
      await claimFiring(5000, 1000);
      expect(await claimFiring(5999, 1000)).toBe(0);
      expect(await claimFiring(4001, 1000)).toBe(0);
      expect(await claimFiring(5000, 1000, TTL, 'det-other')).toBe(0);
      expect(await redis.hget(key('fired'), 'time')).toBe('5000');
      expect(await claimFiring(6000, 1000)).toBe(1);
      expect(await redis.hget(key('fired'), 'time')).toBe('6000');
    });

    it('grants a redelivered claim (same detection id, same time) again, and nothing else', async () => {
      expect(await claimFiring(5000, 1000, TTL, 'det-same')).toBe(1);
      expect(await claimFiring(5000, 1000, TTL, 'det-same')).toBe(1);
      expect(await claimFiring(5500, 1000, TTL, 'det-same')).toBe(0);
    });

    it('keeps the latest time when an older detection, outside the cooldown, claims later', async () => {
      await claimFiring(8000, 1000);
      expect(await claimFiring(3000, 1000)).toBe(1);
      expect(await redis.hget(key('fired'), 'time')).toBe('8000');
    });

    it('lets exactly one of 20 concurrent clients claim one window', async () => {
      const clients = Array.from({ length: 20 }, () => new Redis(REDIS_URL));
      try {
        for (const client of clients) defineScripts(client);
        const replies = await Promise.all(
          clients.map((client, index) => callScript(client, 'claimFiring', [key('fired')], [10_000 + index, 60_000, TTL, `det-${index}`])),
        );
        expect(replies.filter((reply) => reply === 1)).toHaveLength(1);
        expect(replies.filter((reply) => reply === 0)).toHaveLength(19);
      } finally {
        await Promise.all(clients.map((client) => client.quit()));
      }
    });
  });

  describeScript('surgeTick-2.lua', () => {
    /** One event of `bucket`; `oldest` is the oldest bucket still open (default: the event's own, no lateness). */
    const tick = (
      bucket: number,
      measure: string,
      options: { member?: string; numerator?: boolean; bin?: number; alpha?: number; ttl?: number; oldest?: number; user?: string; lag?: number; report?: number; at?: number; id?: string } = {},
    ) =>
      call('surgeTick', [key('surge', options.user), key(`surge-hll:${bucket}`, options.user)], [
        bucket,
        measure,
        1,
        options.numerator ? 1 : 0,
        JSON.stringify(options.member === undefined ? [] : [options.member]),
        JSON.stringify(options.bin === undefined ? [] : [options.bin, 1]),
        options.alpha ?? 0.5,
        options.ttl ?? TTL,
        options.oldest ?? bucket,
        options.ttl ?? TTL,
        // lag 1: a bucket meets the baseline of every bucket before it (no lateness)
        options.lag ?? 1,
        options.report ?? 0,
        options.at ?? bucket * 1000,
        options.id ?? 'evt',
      ]);

    it('counts the bucket and folds each full bucket into the EWMA baseline', async () => {
      for (let n = 0; n < 10; n++) await tick(100, 'count');
      // The first full bucket seeds the baseline; empty buckets in between fold as zeros.
      const afterFirst = await tick(101, 'count');
      expect(afterFirst.slice(0, 11).map(Number)).toEqual([1, 10, 0, 1, 1, 0, 0, 0, 10, 0, 1]);
      expect(afterFirst[11]).toBe('[]');
      for (let n = 0; n < 3; n++) await tick(101, 'count');
      const afterGap = await tick(103, 'count');
      // Bucket 101 (4 events) then empty bucket 102, alpha 0.5: mean 10 → 7 → 3.5; variance 0 → 9 → 16.75.
      expect(afterGap.map(Number).slice(0, 4)).toEqual([1, 3.5, 16.75, 3]);
    });

    it('does not count an event of a bucket already folded, and says how many events it did not count', async () => {
      await tick(200, 'count');
      await tick(201, 'count');
      expect((await tick(200, 'count')).slice(0, 11).map(Number)).toEqual([0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1]);
    });

    it('keeps buckets open while the lateness covers them: a late event counts in its own bucket, against the buckets before it', async () => {
      const late = { oldest: 95 };
      for (let n = 0; n < 4; n++) await tick(99, 'count', late);
      await tick(100, 'count', late);
      await tick(101, 'count', late);
      // Bucket 100 again, after 101 opened: counted (2 events), measured against bucket 99 alone.
      expect((await tick(100, 'count', late)).map(Number).slice(0, 7)).toEqual([2, 4, 0, 1, 2, 0, 0]);
      // Bucket 101 against 99 then 100 (alpha 0.5): mean 4 → 3; variance 0 → 0.5 × (0 + 0.5 × 4) = 1.
      expect((await tick(101, 'count', late)).map(Number).slice(0, 5)).toEqual([2, 3, 1, 2, 2]);
      // Nothing folded yet: the buckets are open, the baseline stored is empty.
      expect(await redis.hgetall(key('surge'))).toMatchObject({ samples: '0', 'n:99': '4', 'n:100': '2', 'n:101': '2' });
      // The lateness passes 99 and 100: folded for good; 101 stays open. Bucket 106 is measured
      // against 99, 100, 101 and four empty buckets: mean 3 → 2.5 → 1.25 → 0.625 → 0.3125 → 0.15625.
      expect((await tick(106, 'count', { oldest: 101 })).map(Number).slice(1, 4)).toEqual([0.15625, 0.4130859375, 7]);
      const stored = await redis.hgetall(key('surge'));
      expect(stored).toMatchObject({ f: '100', mean: '3', var: '1', samples: '2', 'n:101': '2', 'n:106': '1' });
      expect(Object.keys(stored).filter((field) => /^n:/.test(field)).sort()).toEqual(['n:101', 'n:106']);
      expect((await tick(100, 'count', { oldest: 101 })).map(Number)[6]).toBe(1);
    });

    it('stores the same state for the same events in any order within the lateness', async () => {
      const events: [number, string][] = [[300, 'a'], [300, 'b'], [301, 'c'], [302, 'a'], [300, 'd'], [301, 'e'], [303, 'f'], [302, 'b']];
      const inOrder = [...events].sort((a, b) => a[0] - b[0]);
      for (const [bucket, member] of inOrder) await tick(bucket, 'distinct', { member, oldest: 299, user: 'user=in-order', bin: 5 });
      for (const [bucket, member] of events) await tick(bucket, 'distinct', { member, oldest: 299, user: 'user=arrival', bin: 5 });
      // Then the lateness passes them all, in one step for one key and bucket by bucket for the other.
      await tick(310, 'distinct', { member: 'z', oldest: 305, user: 'user=in-order' });
      for (const bucket of [306, 307, 308, 309, 310]) await tick(bucket, 'distinct', { member: 'z', oldest: bucket - 5, user: 'user=arrival' });
      const [ordered, arrival] = [await redis.hgetall(key('surge', 'user=in-order')), await redis.hgetall(key('surge', 'user=arrival'))];
      // Bucket 300 had 3 distinct members (a, b, d), counted in its own HyperLogLog.
      // Folded: buckets 300 to 303 and empty 304.
      expect(ordered).toMatchObject({ samples: '5', f: '304' });
      const withoutLast = (state: Record<string, string>): Record<string, string> =>
        Object.fromEntries(Object.entries(state).filter(([field]) => !/:(30[6-9])$/.test(field)));
      expect(withoutLast(arrival)).toEqual(withoutLast(ordered));
    });

    it('measures distinct members per bucket, a ratio and a p95', async () => {
      for (const member of ['a', 'b', 'a', 'c']) await tick(300, 'distinct', { member, oldest: 290 });
      await tick(301, 'distinct', { member: 'x', oldest: 290 });
      // A late member of bucket 300 counts in 300's own HyperLogLog, not 301's.
      expect((await tick(300, 'distinct', { member: 'd', oldest: 290 })).map(Number).slice(0, 6)).toEqual([4, 0, 0, 0, 5, 4]);
      await deleteKeys(redis, prefix);
      await tick(400, 'ratio', { numerator: true });
      expect(Number((await tick(400, 'ratio'))[0])).toBe(0.5);
      await deleteKeys(redis, prefix);
      for (let n = 0; n < 19; n++) await tick(500, 'p95', { bin: 20 });
      // 20 events: the 19th (95%) is in bin 20, whose upper bound is 2^(20/4) = 32.
      expect(Number((await tick(500, 'p95', { bin: 40 }))[0])).toBe(32);
    });

    it('keeps baselines of the events and the numerator events per bucket, whatever the measure', async () => {
      for (let n = 0; n < 4; n++) await tick(700, 'p95', { bin: 10, numerator: n === 0 });
      // Bucket 700 (4 events, 1 in the numerator) seeds both baselines.
      expect((await tick(701, 'p95', { bin: 10, numerator: true })).map(Number).slice(7, 11)).toEqual([1, 4, 1, 1]);
      // Bucket 701 (1 event, 1 numerator), then empty bucket 702 as zeros, alpha 0.5: events
      // 4 → 2.5 → 1.25, numerator 1 → 1 → 0.5; a p95's own baseline folds no empty bucket.
      const reply = (await tick(703, 'p95', { bin: 10 })).map(Number);
      expect(reply.slice(7, 11)).toEqual([0, 1.25, 0.5, 3]);
      expect(reply[3]).toBe(2);
    });

    it('keeps the baselines of state that version 3 wrote, and drops its unfinished bucket', async () => {
      await redis.hset(key('surge'), { b: 800, n: 50, e: 5, 'h:10': 3, mean: '40', var: '4', samples: 12, nmean: '45', emean: '4', nsamples: 12 });
      const reply = (await tick(801, 'count', { oldest: 796 })).map(Number);
      expect(reply.slice(1, 4)).toEqual([40, 4, 12]);
      expect(reply.slice(8, 11)).toEqual([45, 4, 12]);
      expect(await redis.hgetall(key('surge'))).toEqual({ mean: '40', var: '4', samples: '12', nmean: '45', emean: '4', nsamples: '12', z: '0', f: '800', 'n:801': '1', 'l:801': '801000|evt' });
    });

    it('version 5: a bucket meets the baseline folded through bucket - lag, however far the clock has folded, whatever is still open', async () => {
      // lag 3: an allowed lateness of 2 buckets (events of bucket B come with the clock at B - 2 or later).
      const lag = 3;
      // Buckets 900 to 909: 4 events each, then bucket 910, 40 events, read in two orders. In
      // one, bucket 909 has 1 of its 4 events when 910 comes, and the clock has folded to 907;
      // in the other, bucket 909 is complete and another partition's clock has folded to 908.
      const fill = async (user: string, oldestAt910: number, lastOf909: number): Promise<unknown[]> => {
        for (let bucket = 900; bucket < 910; bucket++) {
          for (let n = 0; n < (bucket === 909 ? lastOf909 : 4); n++) await tick(bucket, 'count', { oldest: bucket - 2, user, lag, at: bucket * 1000 + n, id: `e${n}` });
        }
        let reply: unknown[] = [];
        for (let n = 0; n < 40; n++) reply = await tick(910, 'count', { oldest: oldestAt910, user, lag, at: 910_000 + n, id: `f${n}` });
        return reply;
      };
      const early = (await fill('user=early', 908, 1)).map(String);
      const late = (await fill('user=late', 909, 4)).map(String);
      // Both meet the baseline folded through 907 (910 - lag): 8 buckets of 4, a mean of 4.
      expect(early.slice(0, 4)).toEqual(['40', '4', '0', '8']);
      expect(late.slice(0, 4)).toEqual(early.slice(0, 4));
      // The baselines kept: after each of the last lag + 1 folded buckets.
      const stored = await redis.hgetall(key('surge', 'user=late'));
      expect(Object.keys(stored).filter((field) => field.startsWith('p:')).sort()).toEqual(['p:905', 'p:906', 'p:907', 'p:908']);
      expect(stored['p:907']).toBe('4 0 8 4 0 8');
    });

    it('version 5: reports a bucket it folds for good, complete, with its own baseline and its latest event', async () => {
      const lag = 2;
      for (let bucket = 950; bucket < 954; bucket++) await tick(bucket, 'count', { oldest: bucket - 3, lag, report: 3, at: bucket * 1000 + 7, id: `a-${bucket}` });
      // Bucket 954: 5 events, the latest by time first (its id names it whatever the order).
      for (const [at, id] of [[954_900, 'z'], [954_100, 'y'], [954_900, 'x'], [954_500, 'w'], [954_200, 'v']] as const) await tick(954, 'count', { oldest: 951, lag, report: 3, at, id });
      // A quiet bucket with too few events is not reported: 955 gets 2.
      for (let n = 0; n < 2; n++) await tick(955, 'count', { oldest: 952, lag, report: 3 });
      // The clock passes 954 and 955: both fold; only 954 (5 events >= 3) is reported.
      const reply = await tick(960, 'count', { oldest: 957, lag, report: 3 });
      const closed = JSON.parse(String(reply[11])) as unknown[][];
      // [bucket, measure, mean, var, samples, events, distinct, numerator, nmean, emean, nsamples, latest time, latest id]:
      // 954 meets the baseline through 952 (buckets 950 to 952, one event each).
      expect(closed).toEqual([[954, 5, 1, 0, 3, 5, 0, 0, 1, 0, 3, 954_900, 'z']]);
      // Folded once: the next call reports nothing.
      expect((await tick(960, 'count', { oldest: 957, lag, report: 3 }))[11]).toBe('[]');
    });

    it('keeps at most 64 buckets open, however far apart the events', async () => {
      for (let bucket = 1000; bucket < 1070; bucket++) await tick(bucket, 'count', { oldest: 0 });
      const open = Object.keys(await redis.hgetall(key('surge'))).filter((field) => /^n:/.test(field));
      expect(open).toHaveLength(64);
      expect(open).not.toContain('n:1005');
    });

    it('writes back what changed (version 6): the same replies and the same stored fields as version 5, which rewrote the whole hash, call after call', async () => {
      // Version 5 as it was (test/support/lua/surgeTick-v5.lua), registered under a test name.
      const reference = 'it_surgeTick_v5_reference';
      const prelude = readFileSync(join(__dirname, '../../detectors/state/lua/lib/batch.lua'), 'utf8');
      redis.defineCommand(reference, { lua: `${prelude}\n${readFileSync(join(__dirname, '../support/lua/surgeTick-v5.lua'), 'utf8')}` });
      const callReference = (items: readonly { keys: string[]; args: (string | number)[] }[]): Promise<unknown> =>
        (Reflect.get(redis, reference) as (...args: (string | number)[]) => Promise<unknown>).call(redis, items.length * 2, ...items.flatMap((item) => item.keys), ...items.flatMap((item) => item.args));
      // A fixed pseudo-random walk: four keys, one measure each, a clock that moves on (and
      // sometimes jumps hours), late events, events from the future (opening buckets ahead, past
      // the 64 kept open), redeliveries; calls of 1 to 8 items, a key often twice in one call.
      let seed = 12345;
      const random = (below: number): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % below;
      };
      const measures = ['count', 'distinct', 'ratio', 'p95'] as const;
      const surgeKeys = (at: string, user: number, bucket: number): string[] => [stateKey(at, 'it-rule', `user=u-${user}`, 'surge'), stateKey(at, 'it-rule', `user=u-${user}`, `surge-hll:${bucket}`)];
      let clock = 10_000_000;
      const calls: { user: number; bucket: number; args: (string | number)[] }[][] = [];
      for (let call = 0; call < 120; call++) {
        const items: { user: number; bucket: number; args: (string | number)[] }[] = [];
        for (let item = 0, count = 1 + random(8); item < count; item++) {
          const step = random(100);
          clock += step < 3 ? 3_600_000 * (1 + random(3)) : random(40_000);
          const time = step >= 96 ? clock + 60_000 * (1 + random(90)) : step >= 80 ? clock - random(200_000) : clock;
          const user = random(4);
          const measure = measures[user] ?? 'count';
          const bucket = Math.floor(time / 60_000);
          const events = 1 + random(5);
          items.push({
            user,
            bucket,
            args: [
              bucket, measure, events, random(events + 1),
              JSON.stringify(measure === 'distinct' || user === 2 ? Array.from({ length: events }, () => `m-${random(7)}`) : []),
              JSON.stringify(measure === 'p95' ? [10 + random(6), events] : []),
              0.3, TTL, Math.floor((clock - 120_000) / 60_000), TTL, 3, random(3) === 0 ? 0 : 2, time, `evt-${random(50)}`,
            ],
          });
        }
        calls.push(items);
      }
      // Then 70 buckets ahead of the clock for one key, ten a call: past the 64 kept open.
      for (let first = 0; first < 70; first += 10) {
        calls.push(
          Array.from({ length: 10 }, (_, offset) => {
            const time = clock + 60_000 * (first + offset + 2);
            const bucket = Math.floor(time / 60_000);
            return { user: 3, bucket, args: [bucket, 'p95', 2, 1, '[]', JSON.stringify([12, 2]), 0.3, TTL, Math.floor((clock - 120_000) / 60_000), TTL, 3, 2, time, `evt-${first + offset}`] };
          }),
        );
      }
      const [now, before] = [`${prefix}:v6`, `${prefix}:v5`];
      const seen = { snapshots: 0, mostOpen: 0, reported: 0, late: 0 };
      for (const [index, items] of calls.entries()) {
        const replies = await callBatch(redis, 'surgeTick', items.map(({ user, bucket, args }) => ({ keys: surgeKeys(now, user, bucket), args })));
        const expected = await callReference(items.map(({ user, bucket, args }) => ({ keys: surgeKeys(before, user, bucket), args })));
        expect({ call: index, replies }).toEqual({ call: index, replies: expected });
        for (const reply of replies as unknown[][]) {
          if (reply[11] !== '[]') seen.reported++;
          if (Number(reply[6]) > 0) seen.late++;
        }
        for (let user = 0; user < 4; user++) {
          const [stored, storedBefore] = [await redis.hgetall(surgeKeys(now, user, 0)[0] ?? ''), await redis.hgetall(surgeKeys(before, user, 0)[0] ?? '')];
          expect({ call: index, user, stored }).toEqual({ call: index, user, stored: storedBefore });
          const fields = Object.keys(stored);
          seen.snapshots = Math.max(seen.snapshots, fields.filter((field) => field.startsWith('p:')).length);
          seen.mostOpen = Math.max(seen.mostOpen, fields.filter((field) => field.startsWith('n:')).length);
        }
      }
      // The walk went where it should: snapshots kept, 64 buckets open, closed buckets reported, events too late.
      expect(seen.snapshots).toBeGreaterThan(1);
      expect(seen.mostOpen).toBe(64);
      expect(seen.reported).toBeGreaterThan(0);
      expect(seen.late).toBeGreaterThan(0);
    });

    it('adds up an item of many events as those events one by one', async () => {
      const keysOf = (user: string): string[] => [key('surge', user), key('surge-hll:600', user)];
      const reply = await callScript(redis, 'surgeTick', keysOf('user=tally'), [600, 'p95', 5, 2, '["a","b","c"]', '[10,3,20,2]', 0.5, TTL, 600, TTL, 1, 0, 600_000, 'e5']);
      for (const [index, bin] of [10, 10, 20, 10, 20].entries()) {
        await callScript(redis, 'surgeTick', keysOf('user=single'), [
          600, 'p95', 1, index < 2 ? 1 : 0, JSON.stringify(index < 3 ? [['a', 'b', 'c'][index]] : []), JSON.stringify([bin, 1]), 0.5, TTL, 600, TTL, 1, 0, 600_000, `e${index + 1}`,
        ]);
      }
      const single = await redis.hgetall(key('surge', 'user=single'));
      expect(await redis.hgetall(key('surge', 'user=tally'))).toEqual(single);
      expect(single).toMatchObject({ 'n:600': '5', 'e:600': '2', 'd:600': '3', 'h:600': '[10,3,20,2]' });
      // p95 of 3 × bin 10 and 2 × bin 20 is in bin 20; 3 distinct members.
      expect((reply as unknown[]).slice(0, 11).map(Number)).toEqual([32, 0, 0, 0, 5, 3, 0, 2, 0, 0, 0]);
    });
  });

  /** The alert keys of one test (detectors/state/keys.ts builds the same). */
  const alertKey = (name: string): string => `${prefix}:{alerts}:${name}`;
  interface FoldOptions {
    group?: string;
    rank?: number;
    rule?: string;
    quiet?: number;
    windowStart?: number;
    explains?: boolean;
    explainedBy?: string[];
    explainer?: string;
    stormMax?: number;
    order?: number;
    /** How long after the explaining alert's last detection one is still absorbed. @defaultValue 300000 */
    grace?: number;
    /** Group keys of the entities the detection names besides its own. @defaultValue [] */
    named?: string[];
    /** Most entities one alert lists. @defaultValue 20 */
    maxEntities?: number;
    /** Most detection ids and entities an evidence hash keeps. @defaultValue 5000 and 1000 */
    evidence?: { ids: number; entities: number };
  }
  /** alertFold-12 for detection `id` at event time `time`, as the alert store calls it. */
  const fold = (id: string, time: number, options: FoldOptions = {}) => {
    const group = options.group ?? 'g-1';
    const rule = options.rule ?? 'rule-a';
    const explainer = options.explainer ?? '';
    return call(
      'alertFold',
      [
        alertKey(`alert:${group}`), alertKey('open'), alertKey('unsent'), alertKey('clock'), alertKey('wall'), alertKey(`evidence:${group}`),
        alertKey(`alert:${explainer || group}`), alertKey(`evidence:${explainer || group}`), alertKey(`storm:${rule}`),
        alertKey(`alert:campaign:${rule}`), alertKey(`evidence:campaign:${rule}`), alertKey('links'),
      ],
      [
        id, time, options.order ?? time, 5, options.quiet ?? 10_000, 2000, `alert-${id}`, rule, `Rule ${rule}`, options.rank ?? 1, '["T1498"]',
        `Rule ${rule}: ${group}`, '{"route":"/login"}', group, TTL, 3, `reason ${id}`, 'quiet', options.windowStart ?? time,
        options.explains ? 1 : 0, JSON.stringify(options.explainedBy ?? []), explainer, options.stormMax ?? 0, 60_000,
        `campaign:${rule}`, `campaign-${id}`, `Rule ${rule}: a campaign`, `{"rule.id":"${rule}"}`, `ip=${group}`, options.grace ?? 300_000,
        alertKey('alert:'), JSON.stringify(options.named ?? []), options.maxEntities ?? 20, 'actor.userId=',
        options.evidence?.ids ?? 5000, options.evidence?.entities ?? 1000,
      ],
    );
  };
  const fieldsOf = (json: unknown): Record<string, string> => {
    const flat = JSON.parse(String(json)) as string[];
    return Object.fromEntries(flat.flatMap((value, index) => (index % 2 === 0 ? [[value, String(flat[index + 1])]] : [])));
  };

  describeScript('alertHold-2.lua', () => {
    it('holds detections by order time, keeps one copy of a redelivered one, moves the clock and counts the late', async () => {
      const hold = (...triples: (string | number)[]) => call('alertHold', [alertKey('held'), alertKey('clock')], [777, TTL, 'detections:0', 0, ...triples]);
      expect(await hold(2000, 2000, '{"id":"b"}', 1000, 1500, '{"id":"a"}', 2000, 2000, '{"id":"b"}')).toEqual(['2000', 0]);
      expect(await redis.zrange(alertKey('held'), 0, -1, 'WITHSCORES')).toEqual(['{"id":"a"}', '1000', '{"id":"b"}', '2000']);
      expect(await redis.hgetall(alertKey('clock'))).toEqual({ max: '2000', arrived: '777', 'max:detections:0': '2000', 'arrived:detections:0': '777', 'behind:detections:0': '0' });
      // Once something at 1800 is folded, a detection at 1800 or before arrives late; the clock never goes back.
      await redis.hset(alertKey('clock'), 'folded', 1800);
      expect(await hold(1800, 1800, '{"id":"c"}', 1900, 1900, '{"id":"d"}')).toEqual(['2000', 1]);
    });
  });

  describeScript('alertRelease-2.lua', () => {
    const release = (now: number, lateness: number) => call('alertRelease', [alertKey('held'), alertKey('clock')], [now, lateness, 100, 500, 5000]);

    it('releases what the watermark passed, oldest first and ties by id, and everything once nothing arrived for the lateness', async () => {
      expect(await release(0, 1000)).toEqual([null, 0]);
      await call('alertHold', [alertKey('held'), alertKey('clock')], [10_000, TTL, 'p:0', 0, 5000, 5000, '{"id":"z"}', 5000, 5000, '{"id":"a"}', 9000, 9000, '{"id":"m"}']);
      // Watermark 9000 - 1000 = 8000: the two at 5000, by id; the one at 9000 waits.
      expect(await release(10_500, 1000)).toEqual(['8000', 0, '{"id":"a"}', '5000', '{"id":"z"}', '5000']);
      // Release does not remove: the alerter forgets what it folded. The fold clock is at the watermark.
      expect(await redis.zcard(alertKey('held'))).toBe(3);
      expect(await redis.hget(alertKey('clock'), 'folded')).toBe('8000');
      // Nothing arrived for the lateness (1000 ms since 10 000): everything held.
      expect((await release(11_000, 1000)).slice(2)).toEqual(['{"id":"a"}', '5000', '{"id":"z"}', '5000', '{"id":"m"}', '9000']);
    });

    it('holds a partition ahead back for an active partition behind, until that one goes idle', async () => {
      const hold = (partition: string, now: number, time: number, id: string) =>
        call('alertHold', [alertKey('held'), alertKey('clock')], [now, TTL, partition, 0, time, time, `{"id":"${id}"}`]);
      await hold('p:0', 10_000, 60_000, 'ahead');
      await hold('p:1', 10_100, 3000, 'behind');
      // p:1 is at 3000: the watermark is 2000, nothing of p:0 passes.
      expect(await release(10_200, 1000)).toEqual(['2000', 0]);
      await hold('p:1', 10_300, 30_000, 'behind-2');
      expect((await release(10_400, 1000)).slice(0, 4)).toEqual(['29000', 0, '{"id":"behind"}', '3000']);
      // p:1 idle (no arrival for the idle time, 500 ms), p:0 active: p:0 alone sets the watermark.
      await hold('p:0', 10_900, 61_000, 'ahead-2');
      expect((await release(11_000, 1000)).slice(0, 2)).toEqual(['60000', 0]);
      // Both idle, but a detection arrived within the lateness: the newest time held sets it.
      expect((await release(11_600, 1000)).slice(0, 2)).toEqual(['60000', 0]);
    });

    it('holds the others back for a partition with a backlog to read, past the idle time, until it catches up or the backlog time passes', async () => {
      const hold = (partition: string, now: number, behind: 0 | 1, time: number, id: string) =>
        call('alertHold', [alertKey('held'), alertKey('clock')], [now, TTL, partition, behind, time, time, `{"id":"${id}"}`]);
      await hold('p:1', 10_000, 1, 3000, 'behind');
      await hold('p:0', 10_000, 0, 60_000, 'ahead');
      // p:1 has more to read: 3 s of wall time without a batch (past the 500 ms idle time) and it
      // still holds p:0 back; so does the fallback (no arrival for the lateness) wait for it.
      expect(await release(13_000, 1000)).toEqual(['2000', 0]);
      // p:1 delivers the rest of its backlog and is caught up: then idle after 500 ms, as any.
      await hold('p:1', 13_100, 0, 40_000, 'behind-2');
      expect((await release(13_200, 1000)).slice(0, 2)).toEqual(['39000', 0]);
      expect((await release(13_700, 1000)).slice(0, 2)).toEqual(['59000', 0]);
      // A partition with a backlog that delivers nothing for the backlog time (5 s here) no longer holds the others back.
      await hold('p:2', 13_800, 1, 1000, 'stuck');
      expect((await release(14_000, 100_000)).slice(0, 2)).toEqual(['-99000', 0]);
      expect((await release(18_700, 100_000)).slice(0, 2)).toEqual(['-99000', 0]);
      expect((await release(18_700, 1000)).slice(0, 2)).toEqual(['0', 0]);
      expect((await release(18_801, 1000))[1]).toBe(1);
    });
  });

  describeScript('alertFold-12.lua', () => {
    it('opens, joins within the quiet period in event time, ignores a redelivered detection, and escalates at 10', async () => {
      const opened = await fold('d-1', 100_000);
      expect(opened[0]).toBe('opened');
      expect(opened[3]).toBe('own');
      expect(fieldsOf(opened[1])).toMatchObject({ id: 'alert-d-1', status: 'open', count: '1', rank: '1', revision: '1', first: '100000', last: '100000' });
      expect((await fold('d-1', 100_000))[0]).toBe('duplicate');
      let last: unknown[] = [];
      for (let n = 2; n <= 10; n++) last = await fold(`d-${n}`, 100_000 + n * 1000, { rule: n === 5 ? 'rule-b' : 'rule-a' });
      expect(last[0]).toBe('escalated');
      expect(fieldsOf(last[1])).toMatchObject({ id: 'alert-d-1', count: '10', rank: '2', suppressed: '7', last: '110000' });
      expect(JSON.parse(fieldsOf(last[1]).detections ?? '[]')).toEqual(['d-8', 'd-9', 'd-10']);
      // An earlier detection within the quiet period joins too, and moves `first` back.
      expect(fieldsOf((await fold('d-0', 95_000))[1])).toMatchObject({ first: '95000', count: '11' });
      expect(await redis.zscore(alertKey('open'), 'g-1')).toBe('110000');
      expect(await redis.zscore(alertKey('wall'), 'g-1')).toBe('5');
      expect(Object.keys(await redis.hgetall(alertKey('unsent'))).sort()).toEqual(['alert-d-1:10:escalated', 'alert-d-1:1:opened', 'alert-d-1:5:escalated']);
      // The fold clock is at the newest order time folded.
      expect(await redis.hget(alertKey('clock'), 'folded')).toBe('110000');
    });

    it('opens a new alert past the quiet period in event time, resolving the old one at its end; an older one is late', async () => {
      await fold('d-1', 100_000);
      const later = await fold('d-2', 120_001);
      expect(later[0]).toBe('opened');
      expect(fieldsOf(later[1]).id).toBe('alert-d-2');
      // Resolved at last + quiet, in event time, whenever it was noticed.
      expect(fieldsOf(later[2])).toMatchObject({ id: 'alert-d-1', status: 'resolved', resolved: '110000' });
      expect(Object.keys(await redis.hgetall(alertKey('unsent'))).sort()).toEqual(['alert-d-1:1:opened', 'alert-d-1:2:resolved', 'alert-d-2:1:opened']);
      expect((await fold('d-3', 50_000))[0]).toBe('late');
    });

    it('absorbs a detection its endpoint alert explains, once, and counts it as evidence', async () => {
      await fold('flood-1', 60_000, { group: 'endpoint', rule: 'flood', explains: true, windowStart: 0 });
      const explained = { group: 'ip-1', rule: 'stuffing', explainedBy: ['flood'], explainer: 'endpoint' };
      const absorbed = await fold('s-1', 30_000, explained);
      expect([absorbed[0], absorbed[3]]).toEqual(['absorbed', 'explainer']);
      expect(fieldsOf(absorbed[1])).toMatchObject({ id: 'alert-flood-1', absorbed: '1', count: '1' });
      expect((await fold('s-1', 30_000, explained))[0]).toBe('duplicate');
      await fold('s-2', 40_000, { ...explained, group: 'ip-2' });
      expect(await redis.hgetall(alertKey('evidence:endpoint'))).toMatchObject({ total: '2', 'r:stuffing': '2', 'e:ip=ip-1': '1', 'e:ip=ip-2': '1' });
      // Not explained by that rule, or outside the alert's window (from - lateness .. last + the
      // grace, at most the quiet period): an alert of its own.
      expect((await fold('s-3', 30_000, { ...explained, group: 'ip-3', explainedBy: ['surge'] }))[0]).toBe('opened');
      expect((await fold('s-4', 75_000, { ...explained, group: 'ip-4' }))[0]).toBe('opened');
      expect((await fold('s-5', -5000, { ...explained, group: 'ip-5' }))[0]).toBe('opened');
      // Within the quiet period (10 s) but past a 3 s grace: the flood is over, this is another attack.
      expect((await fold('s-6', 64_000, { ...explained, group: 'ip-6', grace: 3000 }))[0]).toBe('opened');
      expect((await fold('s-7', 62_000, { ...explained, group: 'ip-7', grace: 3000 }))[0]).toBe('absorbed');
    });

    it('folds a rule past the storm guard into one campaign alert', async () => {
      const replies: unknown[][] = [];
      for (let n = 1; n <= 5; n++) replies.push(await fold(`s-${n}`, 1000 * n, { group: `ip-${n}`, stormMax: 2 }));
      expect(replies.map((reply) => `${String(reply[0])}:${String(reply[3])}`)).toEqual(['opened:own', 'opened:own', 'opened:campaign', 'updated:campaign', 'updated:campaign']);
      expect(fieldsOf(replies[4]?.[1])).toMatchObject({ id: 'campaign-s-3', campaign: '1', count: '3' });
      expect(await redis.hgetall(alertKey('evidence:campaign:rule-a'))).toMatchObject({ total: '3', 'e:ip=ip-3': '1', 'e:ip=ip-5': '1' });
      // Outside the storm window (60 s) of the two alerts, the rule opens alerts again.
      expect((await fold('s-6', 200_000, { group: 'ip-6', stormMax: 2 }))[3]).toBe('own');
    });

    // A campaign of made-up keys grew the hash by two fields a detection, read whole by the
    // alerter at each change of the alert.
    it('bounds a campaign\'s evidence: ids kept and entities listed, the rest counted', async () => {
      const bounded = { stormMax: 1, evidence: { ids: 3, entities: 2 } };
      for (let n = 1; n <= 7; n++) await fold(`s-${n}`, 1000 * n, { ...bounded, group: `ip-${n}` });
      // s-1 opened its own alert; s-2 .. s-7 went to the campaign: 6 detections of 6 keys.
      await fold('s-8', 8000, { ...bounded, group: 'ip-2' }); // a listed key again
      const evidence = await redis.hgetall(alertKey('evidence:campaign:rule-a'));
      expect(evidence).toEqual({ total: '7', 'r:rule-a': '7', n: '2', 'e:ip=ip-2': '2', 'e:ip=ip-3': '1', 'e+': '4', 'd:s-2': '1', 'd:s-3': '1', 'd:s-4': '1' });
      // Within the ids kept, a redelivery is still absorbed once; past them, the campaign alert's
      // own newest ids (3 here) still know it: its count does not grow.
      expect((await fold('s-3', 3000, { ...bounded, group: 'ip-3' }))[0]).toBe('duplicate');
      const redelivered = await fold('s-7', 7000, { ...bounded, group: 'ip-7' });
      expect([redelivered[0], fieldsOf(redelivered[1]).count]).toEqual(['duplicate', '7']);
    });

    describe('linking an attack\'s entities into one incident', () => {
      const USER = 'actor.userId=victim';
      const IP = 'client.ip=203.0.113.9';
      const entitiesOf = (reply: unknown[]): unknown => JSON.parse(fieldsOf(reply[1]).entities ?? '[]');

      it('joins the open incident of a user the detection names, lists the IP, and folds the IP\'s later detections into it', async () => {
        expect((await fold('user-1', 100_000, { group: USER }))[0]).toBe('opened');
        // The takeover's success, keyed on the attacker's IP, names the victim: it joins the victim's incident.
        const takeover = await fold('seq-1', 105_000, { group: IP, rule: 'takeover', named: [USER] });
        expect([takeover[0], takeover[3]]).toEqual(['escalated', 'linked']);
        expect(fieldsOf(takeover[1])).toMatchObject({ id: 'alert-user-1', count: '2' });
        expect(entitiesOf(takeover)).toEqual([USER, IP]);
        expect((await fold('seq-1', 105_000, { group: IP, rule: 'takeover', named: [USER] }))[0]).toBe('duplicate');
        // A later detection on the IP alone goes to the incident the IP was linked into.
        const later = await fold('ip-1', 107_000, { group: IP, rule: 'rule-c' });
        expect([later[0], later[3], fieldsOf(later[1]).id]).toEqual(['escalated', 'linked', 'alert-user-1']);
        expect(await redis.zrange(alertKey('open'), 0, -1)).toEqual([USER]);
      });

      it('lists the user on an IP\'s incident opened first, and folds the user\'s later detections into it', async () => {
        const opened = await fold('seq-1', 100_000, { group: IP, rule: 'takeover', named: [USER] });
        expect(entitiesOf(opened)).toEqual([IP, USER]);
        const user = await fold('user-1', 102_000, { group: USER, rule: 'new-device' });
        expect([user[0], user[3], fieldsOf(user[1]).id]).toEqual(['escalated', 'linked', 'alert-seq-1']);
      });

      it('never glues two users through a shared IP, never merges two open incidents, and follows a link only while its incident is open', async () => {
        await fold('a-1', 100_000, { group: 'actor.userId=a' });
        expect(fieldsOf((await fold('nat-1', 101_000, { group: IP, rule: 'takeover', named: ['actor.userId=a'] }))[1]).id).toBe('alert-a-1');
        // The same IP names another user: not into a's incident (one incident is about one user).
        const other = await fold('nat-2', 102_000, { group: IP, rule: 'takeover', named: ['actor.userId=b'] });
        expect([other[0], other[3], fieldsOf(other[1]).id]).toEqual(['opened', 'own', 'alert-nat-2']);
        expect(entitiesOf(other)).toEqual([IP, 'actor.userId=b']);
        expect(await redis.hget(alertKey('alert:actor.userId=a'), 'count')).toBe('2');
        // c has an incident of its own, open: named by the IP's detection, it is not pulled in.
        await fold('c-1', 102_500, { group: 'actor.userId=c' });
        const named = await fold('nat-3', 103_000, { group: IP, rule: 'takeover', named: ['actor.userId=c'] });
        expect([named[3], fieldsOf(named[1]).id]).toEqual(['own', 'alert-nat-2']);
        expect(entitiesOf(named)).toEqual([IP, 'actor.userId=b']);
        // A user named by a detection on the same key, past the cap of entities, is not listed.
        const capped = await fold('d-1', 103_500, { group: 'client.ip=198.51.100.1', named: ['actor.userId=d'], maxEntities: 1 });
        expect(fieldsOf(capped[1]).entities).toBe('["client.ip=198.51.100.1"]');
        // b's incident is the IP's; once it resolved (its quiet period, 10 s, passed), b's detection opens its own.
        await callScript(redis, 'alertSettle', [alertKey(`alert:${IP}`), alertKey('open'), alertKey('unsent'), alertKey('clock'), alertKey('wall')], [200_000, 10_000, 0, IP, TTL, 'q']);
        const afterwards = await fold('b-1', 130_000, { group: 'actor.userId=b' });
        expect([afterwards[0], afterwards[3], fieldsOf(afterwards[1]).id]).toEqual(['opened', 'own', 'alert-b-1']);
      });

      it('records a late detection in the linked incident that already resolved in event time, without paging or reopening it', async () => {
        await fold('seq-1', 100_000, { group: IP, rule: 'takeover', named: [USER] });
        // The fold clock passes the incident's end (100 000 + the 10 s quiet period); it resolves.
        await fold('other', 200_000, { group: 'client.ip=192.0.2.1' });
        await callScript(redis, 'alertSettle', [alertKey(`alert:${IP}`), alertKey('open'), alertKey('unsent'), alertKey('clock'), alertKey('wall')], [10, 10_000, 0, IP, TTL, 'q']);
        expect(await redis.hget(alertKey(`alert:${IP}`), 'status')).toBe('resolved');
        const unsentBefore = await redis.hlen(alertKey('unsent'));
        // The user's detection of 100 005 arrives now (it was held up upstream): it belongs to that incident.
        const late = await fold('write-1', 100_005, { group: USER, rule: 'new-device-write', order: 100_005 });
        expect([late[0], late[3]]).toEqual(['updated', 'linked']);
        expect(fieldsOf(late[1])).toMatchObject({ id: 'alert-seq-1', status: 'resolved', count: '2', resolved: '110000' });
        expect(JSON.parse(fieldsOf(late[1]).rules ?? '[]')).toEqual(['takeover', 'new-device-write']);
        expect(await redis.hlen(alertKey('unsent'))).toBe(unsentBefore);
        // Past the resolve time, or before the fold clock passed it, it is an incident of its own.
        expect((await fold('write-2', 111_000, { group: USER, rule: 'new-device-write' }))[0]).toBe('opened');
      });
    });
  });

  describeScript('alertLinksPrune-2.lua', () => {
    const prune = (count: number) => call('alertLinksPrune', [alertKey('links'), alertKey('links-cursor')], [alertKey('alert:'), count, TTL]);
    const link = (entity: string, group: string, id: string) => redis.hset(alertKey('links'), entity, JSON.stringify({ group, id }));

    it('forgets the links whose alert expired or was replaced, keeps those its group still holds, and never renews the hash', async () => {
      await redis.hset(alertKey('alert:g-live'), 'id', 'alert-live', 'status', 'open');
      await redis.hset(alertKey('alert:g-resolved'), 'id', 'alert-old', 'status', 'resolved');
      await redis.hset(alertKey('alert:g-replaced'), 'id', 'alert-new', 'status', 'open');
      await link('ip=live', 'g-live', 'alert-live');
      await link('ip=resolved', 'g-resolved', 'alert-old');
      await link('ip=replaced', 'g-replaced', 'alert-replaced-earlier');
      await link('ip=expired', 'g-expired', 'alert-gone');
      await redis.hset(alertKey('links'), 'ip=garbled', 'not json');
      await redis.pexpire(alertKey('links'), 50_000);
      expect(await prune(100)).toEqual([5, 3, 1]);
      // A resolved alert its group still holds is still followed (alertFold-12's linkedAlert): kept.
      expect(Object.keys(await redis.hgetall(alertKey('links'))).sort()).toEqual(['ip=live', 'ip=resolved']);
      expect(await redis.pttl(alertKey('links'))).toBeLessThanOrEqual(50_000);
      expect(await redis.exists(alertKey('links-cursor'))).toBe(0);
    });

    it('walks a large hash a step at a time from where it stopped, and a whole pass leaves only live links', async () => {
      await redis.hset(alertKey('alert:g-live'), 'id', 'alert-live', 'status', 'open');
      // Past the listpack size, so that HSCAN pages (a small hash comes whole).
      for (let start = 0; start < 2000; start += 500) {
        const fields: Record<string, string> = {};
        for (let index = start; index < start + 500; index++) fields[`ip=${index}`] = JSON.stringify(index % 10 === 0 ? { group: 'g-live', id: 'alert-live' } : { group: `g-${index}`, id: `alert-${index}` });
        await redis.hset(alertKey('links'), fields);
      }
      const first = await prune(50);
      expect(Number(first[0])).toBeLessThan(2000);
      expect(first[2]).toBe(0);
      expect(await redis.get(alertKey('links-cursor'))).not.toBeNull();
      expect(await redis.pttl(alertKey('links-cursor'))).toBeGreaterThan(0);
      let calls = 1;
      let reply = first;
      while (reply[2] !== 1 && calls < 1000) {
        reply = await prune(50);
        calls++;
      }
      expect(calls).toBeGreaterThan(10);
      expect(await redis.hlen(alertKey('links'))).toBe(200);
      expect(await redis.exists(alertKey('links-cursor'))).toBe(0);
    });
  });

  describeScript('alertSettle-5.lua', () => {
    const settle = (now: number) => callScript(redis, 'alertSettle', [alertKey('alert:g-1'), alertKey('open'), alertKey('unsent'), alertKey('clock'), alertKey('wall')], [now, 10_000, 2000, 'g-1', TTL, 'quiet']);

    it('resolves once the fold clock passes the quiet period, at its event-time end, and only once', async () => {
      await fold('d-1', 100_000);
      expect(await settle(6)).toBeNull();
      await redis.hset(alertKey('clock'), 'folded', 110_001);
      const resolved = (await settle(7)) as [string, string];
      expect(resolved[1]).toBe('event');
      expect(fieldsOf(resolved[0])).toMatchObject({ status: 'resolved', resolved: '110000' });
      expect(await settle(8)).toBeNull();
      expect(await redis.zscore(alertKey('open'), 'g-1')).toBeNull();
      expect(JSON.parse((await redis.hget(alertKey('unsent'), 'alert-d-1:2:resolved')) ?? '{}')).toMatchObject({ kind: 'resolved', reason: 'quiet', at: 7 });
    });

    it('falls back on the wall clock when no detection arrives: after the quiet period and the lateness', async () => {
      await fold('d-1', 100_000);
      // Folded at wall-clock 5: quiet 10 000 + lateness 2000.
      expect(await settle(12_004)).toBeNull();
      const resolved = (await settle(12_005)) as [string, string];
      expect(resolved[1]).toBe('wall');
      expect(fieldsOf(resolved[0])).toMatchObject({ status: 'resolved', resolved: '110000' });
    });
  });

  describeScript('noteRequest-2.lua', () => {
    it('records each policy kind\'s outcome and never lets a pass overwrite a fail', async () => {
      expect(await noteRequest('authn', 'fail')).toBe(1);
      expect(await noteRequest('authn', 'pass')).toBe(1);
      expect(await redis.hget(requestKey(), 'authn')).toBe('fail');
      // A fail does replace an earlier pass.
      await noteRequest('authz', 'pass');
      expect(await redis.hget(requestKey(), 'authz')).toBe('pass');
      await noteRequest('authz', 'fail');
      await noteRequest('authz', 'pass');
      expect(await redis.hgetall(requestKey())).toEqual({ authn: 'fail', authz: 'fail' });
    });

    it('keeps requests apart', async () => {
      await noteRequest('authn', 'fail', { request: 'r-1' });
      await noteRequest('authn', 'pass', { request: 'r-2' });
      expect(await redis.hget(requestKey('r-1'), 'authn')).toBe('fail');
      expect(await redis.hget(requestKey('r-2'), 'authn')).toBe('pass');
    });

    // A client may send one X-Request-Id with many requests: the user a pass named holds only
    // while every pass under the id names the same user.
    it('keeps the user an authentication pass named, and forgets it once passes name two users', async () => {
      const [, passer] = requestKeys();
      await noteRequest('rate_limit', 'fail', { user: 'ignored' });
      expect(await redis.get(passer)).toBeNull();
      await noteRequest('authn', 'pass', { user: 'alice' });
      await noteRequest('authn', 'pass', { user: 'alice' });
      expect(await redis.get(passer)).toBe('alice');
      await noteRequest('authn', 'pass'); // a pass naming nobody changes nothing
      expect(await redis.get(passer)).toBe('alice');
      await noteRequest('authn', 'pass', { user: 'mallory' });
      expect(await redis.get(passer)).toBe('');
      await noteRequest('authn', 'pass', { user: 'alice' });
      expect(await redis.get(passer)).toBe('');
    });
  });

  describeScript('readRequest-2.lua', () => {
    it('returns an empty list when nothing is recorded for the request', async () => {
      expect(await readRequest()).toEqual([[], null]);
      await noteRequest('authn', 'pass', { request: 'r-other', user: 'alice' });
      expect(await readRequest()).toEqual([[], null]);
    });

    it('returns every kind and its outcome as a flat list, then the user a pass named, and writes nothing', async () => {
      await noteRequest('authn', 'pass', { user: 'alice' });
      await noteRequest('authz', 'fail');
      const [decisions, user] = await readRequest();
      expect(decisions).toHaveLength(4);
      expect(pairs(decisions as unknown[])).toEqual({ authn: 'pass', authz: 'fail' });
      expect(user).toBe('alice');
      expect((await keysUnder(redis, prefix)).sort()).toEqual([...requestKeys()].sort());
    });
  });

  describeScript('noteDevice-3.lua', () => {
    it('keeps the first-seen time of a device (HSETNX) and returns the number of devices', async () => {
      expect(await noteDevice('d-1', 1000)).toBe(1);
      expect(await noteDevice('d-1', 5000)).toBe(1);
      expect(await noteDevice('d-1', 500)).toBe(1); // late and older: still never overwritten
      expect(await redis.hget(userKeys()[1], 'd-1')).toBe('1000');
      expect(await noteDevice('d-2', 6000)).toBe(2);
      expect(await redis.hgetall(userKeys()[1])).toEqual({ 'd-1': '1000', 'd-2': '6000' });
    });

    it('moves the user\'s last device forward with a newer event and not with an older one', async () => {
      await noteDevice('d-1', 1000, { country: 'GB', city: 'London' });
      await noteDevice('d-2', 2000, { country: 'FR', city: 'Paris' });
      const last = { device: 'd-2', country: 'FR', city: 'Paris', time: '2000' };
      expect(await redis.hgetall(userKeys()[0])).toEqual(last);
      // Older, arriving late: counted as a device, but not the last one.
      expect(await noteDevice('d-3', 1500, { country: 'DE', city: 'Berlin' })).toBe(3);
      expect(await redis.hgetall(userKeys()[0])).toEqual(last);
      // A redelivery of the newest event changes nothing.
      await noteDevice('d-2', 2000, { country: 'FR', city: 'Paris' });
      expect(await redis.hgetall(userKeys()[0])).toEqual(last);
    });

    it('writes the session hash only when ARGV[6] names a session', async () => {
      await noteDevice('d-1', 1000, { country: 'GB', city: 'London' });
      expect(await redis.exists(userKeys()[2])).toBe(0);
      await noteDevice('d-1', 2000, { country: 'GB', city: 'London', session: 's-1' });
      expect(await redis.hgetall(userKeys()[2])).toEqual({ device: 'd-1', country: 'GB', time: '2000' });
      expect(await keysUnder(redis, prefix)).toEqual([...userKeys()].sort());
    });
  });

  describeScript('readContext-3.lua', () => {
    it('knows nothing of a user never seen', async () => {
      expect(await readContext(1)).toEqual([null, null, null, 0, 0]);
      expect(await readContext(0)).toEqual([null, null, null, 0, 0]);
      expect(await keysUnder(redis, prefix)).toEqual([]);
    });

    it('prefers the session when it exists, else falls back to the user\'s last device', async () => {
      await noteDevice('d-1', 1000, { country: 'GB', session: 's-1' });
      await noteDevice('d-2', 2000, { country: 'FR' }); // the user's last device, outside the session
      expect(await readContext(1)).toEqual(['d-1', '1000', 'GB', 2, 1]);
      // ARGV[1] = 0: the user only, even though the session exists.
      expect(await readContext(0)).toEqual(['d-2', '2000', 'FR', 2, 0]);
      // A session never noted: the user's last device.
      expect(await readContext(1, userKeys('u-1', 's-unknown'))).toEqual(['d-2', '2000', 'FR', 2, 0]);
    });

    it('returns the first seen of the device (not the latest sighting), no country when unknown, and the device count', async () => {
      await noteDevice('d-1', 1000);
      await noteDevice('d-2', 2000);
      await noteDevice('d-1', 3000); // the last device again: first seen stays 1000
      expect(await readContext(0)).toEqual(['d-1', '1000', null, 2, 0]);
      await noteDevice('d-3', 4000, { session: 's-1' });
      expect(await readContext(1)).toEqual(['d-3', '4000', null, 3, 1]);
    });
  });

  describe('batch calls (the engine sends one call per script for a whole batch)', () => {
    /** Every key under a prefix with its content, the prefix left out, and whether it expires. */
    async function snapshot(under: string): Promise<Record<string, unknown>> {
      const state: Record<string, unknown> = {};
      for (const name of await keysUnder(redis, under)) {
        const type = await redis.type(name);
        const content =
          type === 'zset'
            ? await redis.zrange(name, 0, -1, 'WITHSCORES')
            : type === 'hash'
              ? await redis.hgetall(name)
              : await redis.pfcount(name);
        state[name.slice(under.length)] = { type, content, expires: (await redis.pttl(name)) > 0 };
      }
      return state;
    }

    /** A copy with every fraction written as text rounded to 10 significant digits. */
    function roundFractions(value: unknown): unknown {
      if (typeof value === 'string' && /^-?\d+\.\d+(e-?\d+)?$/.test(value)) return Number(value).toPrecision(10);
      if (Array.isArray(value)) return value.map(roundFractions);
      if (value !== null && typeof value === 'object' && !(value instanceof Error)) {
        return Object.fromEntries(Object.entries(value).map(([name, inner]) => [name, roundFractions(inner)]));
      }
      return value;
    }

    /**
     * One sequence of events on two keys, for every batch script: per key, events in order and out
     * of order, a redelivery (same id, same time, same key), repeated values within and beyond
     * firstSeen's resolution, a value seen on both keys, surge bucket changes and a late bucket.
     */
    const EVENTS: readonly { user: number; id: string; time: number; value: string }[] = [
      { user: 0, id: 'evt-0', time: 1000, value: 'v-0' },
      { user: 1, id: 'evt-1', time: 3000, value: 'v-1' },
      { user: 0, id: 'evt-2', time: 2500, value: 'v-0' },
      { user: 1, id: 'evt-1', time: 3000, value: 'v-1' },
      { user: 0, id: 'evt-4', time: 2000, value: 'v-1' },
      { user: 1, id: 'evt-5', time: 65_000, value: 'v-0' },
      { user: 0, id: 'evt-6', time: 66_000, value: 'v-0' },
      { user: 1, id: 'evt-7', time: 59_000, value: 'v-1' },
      { user: 0, id: 'evt-8', time: 130_000, value: 'v-2' },
      { user: 1, id: 'evt-9', time: 125_000, value: 'v-1' },
      { user: 0, id: 'evt-10', time: 131_000, value: 'v-2' },
      { user: 1, id: 'evt-11', time: 200_000, value: 'v-0' },
    ];

    function items(script: Script, at: string, measure: 'count' | 'distinct' | 'ratio' | 'p95' = 'count'): { keys: string[]; args: (string | number)[] }[] {
      const k = (part: Parameters<typeof stateKey>[3], user: number): string => stateKey(at, 'it-rule', `user=u-${user}`, part);
      return EVENTS.map(({ user, id, time, value }, index) => {
        // A trim that follows the latest time so far, as the engine's watermark does.
        const trim = Math.max(0, Math.max(...EVENTS.slice(0, index + 1).map((event) => event.time)) - 120_000);
        switch (script) {
          case 'windowAdd':
            return { keys: [k('window', user), k('fired', user)], args: [id, time, Math.max(trim, time - 60_000), time + 60_000, trim, TTL, 50, 2] };
          case 'distinctAdd':
            return { keys: [k('values', user), k('events', user), k('fired', user)], args: [value, id, time, Math.max(trim, time - 60_000), time + 60_000, trim, TTL, 2, 2, 50] };
          case 'distinctShare':
            return {
              keys: [k('values', user), k('events', user), k('fired', user), k('others', user)],
              args: [value, id, time, Math.max(trim, time - 60_000), time + 60_000, trim, TTL, 2, 2, index % 3 === 0 ? 0 : 1, 50],
            };
          case 'sequenceAdd':
            return { keys: [k('steps', user), k('fired', user)], args: [time, Math.max(trim, time - 60_000), time + 60_000, trim, TTL, 200, id, index % 4 === 0 ? '0,1' : String(index % 2), 1] };
          case 'firstSeen':
            return { keys: [k('seen', user)], args: [value, time, Math.max(0, time - 100_000), TTL, 2500] };
          case 'locationAdd':
            return { keys: [k('locations', user), k('located', user)], args: [id, time, JSON.stringify({ lat: index, lon: -index, time: new Date(time).toISOString(), eventId: id }), trim, TTL, 4] };
          case 'surgeTick':
            return {
              keys: [k('surge', user), k(`surge-hll:${Math.floor(time / 60_000)}`, user)],
              args: [
                Math.floor(time / 60_000),
                measure,
                1 + (index % 3),
                index % 2,
                JSON.stringify(measure === 'ratio' ? [] : [`m-${index % 5}`, `m-${index % 2}`]),
                JSON.stringify(measure === 'p95' ? [10 + (index % 7), 1 + (index % 3), 30, 1] : []),
                0.5,
                TTL,
                // The oldest bucket open: the latest time so far less a minute of lateness.
                Math.floor(Math.max(0, trim + 60_000) / 60_000),
                TTL,
                // A minute of lateness: the baseline two buckets back; closed buckets of 2 events or more reported.
                2,
                2,
                time,
                id,
              ],
            };
          default:
            throw new Error(`${script} is not a batch script`);
        }
      });
    }

    it.each([
      ['windowAdd', 'count'],
      ['distinctAdd', 'count'],
      ['distinctShare', 'count'],
      ['sequenceAdd', 'count'],
      ['firstSeen', 'count'],
      ['locationAdd', 'count'],
      ['surgeTick', 'count'],
      ['surgeTick', 'distinct'],
      ['surgeTick', 'ratio'],
      ['surgeTick', 'p95'],
    ] as const)('%s (%s): one call of many items replies and leaves state exactly as one call per item', async (script, measure) => {
      const one = `${prefix}:one`;
      const each = `${prefix}:each`;
      // A detection already claimed for user 1, so the replies that read it carry it.
      for (const at of [one, each]) await redis.hset(stateKey(at, 'it-rule', 'user=u-1', 'fired'), 'time', '2000', 'id', 'det-earlier');
      const batched = await callBatch(redis, script, items(script, one, measure));
      const separate: unknown[] = [];
      for (const item of items(script, each, measure)) separate.push(await callScript(redis, script, item.keys, item.args));
      expect(batched).toHaveLength(separate.length);
      expect(batched.some((reply) => reply instanceof Error)).toBe(false);
      // surgeTick keeps its baseline in memory across a call, at full precision, and stores it
      // as text of 14 digits: fractions are compared to 10.
      expect(roundFractions(batched)).toEqual(roundFractions(separate));
      const [stateOne, stateEach] = [await snapshot(one), await snapshot(each)];
      expect(Object.keys(stateOne).length).toBeGreaterThan(1);
      expect(roundFractions(stateOne)).toEqual(roundFractions(stateEach));
      for (const [name, entry] of Object.entries(stateOne)) {
        // The fired hashes were written by this test, without a TTL; every key a script wrote expires.
        if (!name.endsWith(':fired')) expect({ name, expires: (entry as { expires: boolean }).expires }).toEqual({ name, expires: true });
      }
      if (script === 'windowAdd' || script === 'sequenceAdd') expect(JSON.stringify(batched)).toContain('2000|det-earlier');
    });

    it('answers a failing item with an error in its place and the others as usual', async () => {
      await redis.set(key('seen', 'user=u-broken'), 'not a sorted set');
      const replies = await callBatch(redis, 'firstSeen', [
        { keys: [key('seen', 'user=u-1')], args: ['dev-a', 1000, 0, TTL, 1] },
        { keys: [key('seen', 'user=u-broken')], args: ['dev-a', 1000, 0, TTL, 1] },
        { keys: [key('seen', 'user=u-1')], args: ['dev-b', 2000, 0, TTL, 1] },
      ]);
      expect(replies[0]).toEqual([null, 0]);
      expect(replies[1]).toBeInstanceOf(Error);
      expect(String((replies[1] as Error).message)).toMatch(/firstSeen item 2: .*WRONGTYPE/);
      expect(replies[2]).toEqual([null, 1]);
      expect(await redis.pttl(key('seen', 'user=u-1'))).toBeGreaterThan(0);
    });

    it('refuses a call whose keys and arguments do not divide into items, naming the script and the counts', async () => {
      const sendRaw = Reflect.get(redis, commandName('firstSeen')) as (...args: (string | number)[]) => Promise<unknown>;
      await expect(sendRaw.call(redis, 1, key('seen'), 'dev-a', 1000, 0)).rejects.toThrow(
        'firstSeen: expected 1 keys and 5 arguments per item, got 1 keys and 3 arguments',
      );
      await expect(callBatch(redis, 'firstSeen', [{ keys: [key('seen')], args: ['dev-a', 1000] }])).rejects.toThrow(
        'script firstSeen takes 1 keys and 5 arguments per item, got 1 and 2',
      );
      expect(await keysUnder(redis, prefix)).toEqual([]);
    });
  });

  describeScript('alertSilence-2.lua', () => {
    const group = 'client.ip=203.0.113.7';
    const keys = (): string[] => [alertKeys(prefix).alert(group), alertKeys(prefix).heldBySilence];
    const mark = (id: string, kind: string, silences: string[]) => callScript(redis, 'alertSilence', keys(), [id, 3, kind, `reason of ${kind || 'a resolve'}`, group, TTL, ...silences]);

    it('records the silences on the alert the group holds, each once, at most the cap, keeping the alert\'s TTL; another alert of the group is left', async () => {
      const [key = ''] = keys();
      await redis.hset(key, 'id', 'alert-1', 'status', 'open');
      await redis.pexpire(key, TTL);
      expect(await mark('alert-1', '', ['s-1'])).toBe('["s-1"]');
      expect(await mark('alert-1', '', ['s-1', 's-2', 's-3', 's-4'])).toBe('["s-1","s-2","s-3"]');
      expect(await redis.hget(key, 'silenced')).toBe('["s-1","s-2","s-3"]');
      expect(await redis.pttl(key)).toBeGreaterThan(0);
      // A resolve holds nothing back: no held fields, not in the index.
      expect(await redis.hget(key, 'held')).toBeNull();
      expect(await redis.hget(key, 'heldSeq')).toBeNull();
      expect(await redis.exists(alertKeys(prefix).heldBySilence)).toBe(0);
      // The group opened another alert since (its hash was replaced): nothing is written.
      expect(await mark('alert-0', 'opened', ['s-9'])).toBeNull();
      expect(await redis.hget(key, 'silenced')).toBe('["s-1","s-2","s-3"]');
      expect(await redis.exists(alertKeys(prefix).heldBySilence)).toBe(0);
      // No alert at all: nothing is created.
      expect(await callScript(redis, 'alertSilence', [alertKeys(prefix).alert('client.ip=198.51.100.1'), alertKeys(prefix).heldBySilence], ['alert-2', 3, 'opened', 'r', 'client.ip=198.51.100.1', TTL, 's-1'])).toBeNull();
      expect(await redis.exists(alertKeys(prefix).alert('client.ip=198.51.100.1'))).toBe(0);
    });

    it('holds an opening or escalation with its reason, indexes the alert, and an opening held stays the kind to notify', async () => {
      const [key = '', index = ''] = keys();
      await redis.hset(key, 'id', 'alert-1', 'status', 'open');
      await mark('alert-1', 'escalated', ['s-1']);
      expect(await redis.hmget(key, 'held', 'heldReason')).toEqual(['escalated', 'reason of escalated']);
      await mark('alert-1', 'opened', ['s-1']);
      await mark('alert-1', 'escalated', ['s-2']);
      // A destination never told must hear the opening: `opened` wins; the reason is the latest.
      expect(await redis.hmget(key, 'held', 'heldReason')).toEqual(['opened', 'reason of escalated']);
      // Each hold counted: a release clears only the one it notified (alertHeldClear-3).
      expect(await redis.hget(key, 'heldSeq')).toBe('3');
      expect(await redis.hgetall(index)).toEqual({ 'alert-1': group });
      expect(await redis.pttl(index)).toBeGreaterThan(0);
    });
  });

  describeScript('alertHeldClear-3.lua', () => {
    const group = 'client.ip=203.0.113.7';
    const keys = (): string[] => [alertKeys(prefix).alert(group), alertKeys(prefix).heldBySilence, alertKeys(prefix).heldClaims];

    it("forgets a held alert and its claim: its index entry always, its own fields only while the group holds it", async () => {
      const [key = '', index = '', claims = ''] = keys();
      await redis.hset(key, 'id', 'alert-1', 'status', 'open', 'held', 'opened', 'heldReason', 'r', 'heldSeq', '1', 'silenced', '["s-1"]');
      await redis.hset(index, 'alert-1', group, 'alert-0', group);
      await redis.hset(claims, 'alert-1', '1', 'alert-0', '1');
      expect(await callScript(redis, 'alertHeldClear', keys(), ['alert-1', ''])).toBe(1);
      expect(await redis.hgetall(key)).toEqual({ id: 'alert-1', status: 'open', silenced: '["s-1"]' });
      // An older alert of the group (replaced since): only its index entry and claim go.
      await redis.hset(key, 'held', 'escalated', 'heldSeq', '4');
      expect(await callScript(redis, 'alertHeldClear', keys(), ['alert-0', '1'])).toBe(0);
      expect(await redis.hget(key, 'held')).toBe('escalated');
      expect(await redis.exists(index)).toBe(0);
      expect(await redis.exists(claims)).toBe(0);
    });

    it('keeps a hold recorded after the one notified: only the claim goes', async () => {
      const [key = '', index = '', claims = ''] = keys();
      await redis.hset(key, 'id', 'alert-1', 'status', 'open', 'held', 'escalated', 'heldReason', 'later', 'heldSeq', '2');
      await redis.hset(index, 'alert-1', group);
      await redis.hset(claims, 'alert-1', '1');
      expect(await callScript(redis, 'alertHeldClear', keys(), ['alert-1', '1'])).toBe(2);
      expect(await redis.hgetall(key)).toMatchObject({ held: 'escalated', heldReason: 'later', heldSeq: '2' });
      expect(await redis.hgetall(index)).toEqual({ 'alert-1': group });
      expect(await redis.exists(claims)).toBe(0);
      // The hold notified is the one there: cleared.
      expect(await callScript(redis, 'alertHeldClear', keys(), ['alert-1', '2'])).toBe(1);
      expect(await redis.hget(key, 'held')).toBeNull();
      expect(await redis.exists(index)).toBe(0);
    });
  });

  describeScript('alertHeldClaim-2.lua', () => {
    const group = 'client.ip=203.0.113.7';
    const keys = (): string[] => [alertKeys(prefix).heldBySilence, alertKeys(prefix).heldClaims];
    const claim = async (claimMs: number, ...ids: string[]): Promise<unknown> => callScript(redis, 'alertHeldClaim', keys(), [claimMs, TTL, ...ids]);

    it('takes held alerts no running claim holds, for a while, leaving them on the index', async () => {
      const [index = '', claims = ''] = keys();
      await redis.hset(index, 'alert-1', group, 'alert-2', group);
      // Not on the index (cleared meanwhile): not taken.
      expect(await claim(60_000, 'alert-1', 'alert-9')).toEqual(['alert-1']);
      expect(await redis.hgetall(index)).toEqual({ 'alert-1': group, 'alert-2': group });
      const [seconds = '0', micros = '0'] = await redis.time().then((time) => time.map(String));
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const ends = Number(await redis.hget(claims, 'alert-1'));
      expect(ends).toBeGreaterThanOrEqual(now + 59_000);
      expect(ends).toBeLessThanOrEqual(now + 60_000);
      // Claimed already: a second sweep takes only the other.
      expect(await claim(60_000, 'alert-1', 'alert-2')).toEqual(['alert-2']);
      expect(await claim(60_000, 'alert-1', 'alert-2')).toEqual([]);
      expect(await redis.pttl(claims)).toBeGreaterThan(TTL - 5000);
    });

    it('takes again an alert whose claim ended (its claimer died before notifying)', async () => {
      const [index = '', claims = ''] = keys();
      await redis.hset(index, 'alert-1', group);
      expect(await claim(50, 'alert-1')).toEqual(['alert-1']);
      expect(await claim(50, 'alert-1')).toEqual([]);
      await new Promise((done) => setTimeout(done, 120));
      expect(await claim(60_000, 'alert-1')).toEqual(['alert-1']);
      expect(Number(await redis.hget(claims, 'alert-1'))).toBeGreaterThan(Date.now() + 30_000);
    });
  });

  describeScript('groupSwap-2.lua', () => {
    const keys = (): string[] => [groupKeys(prefix, 'hook').state('al-1'), groupKeys(prefix, 'hook').due];

    it('writes a state only over the version read, bumps the version and indexes the due time', async () => {
      expect(await callScript(redis, 'groupSwap', keys(), [0, '{"n":1}', 5000, 'al-1', TTL])).toBe(1);
      // A writer that read before that write loses.
      expect(await callScript(redis, 'groupSwap', keys(), [0, '{"n":"late"}', 1000, 'al-1', TTL])).toBe(0);
      expect(await callScript(redis, 'groupSwap', keys(), [1, '{"n":2}', 7000, 'al-1', TTL])).toBe(2);
      expect(await redis.hgetall(keys()[0] as string)).toEqual({ v: '2', s: '{"n":2}' });
      expect(await redis.zrange(keys()[1] as string, 0, -1, 'WITHSCORES')).toEqual(['al-1', '7000']);
    });

    it('drops the incident from the due index when it is due never', async () => {
      await callScript(redis, 'groupSwap', keys(), [0, '{}', 5000, 'al-1', TTL]);
      await callScript(redis, 'groupSwap', [groupKeys(prefix, 'hook').state('al-2'), groupKeys(prefix, 'hook').due], [0, '{}', 6000, 'al-2', TTL]);
      expect(await callScript(redis, 'groupSwap', keys(), [1, '{}', '', 'al-1', TTL])).toBe(2);
      expect(await redis.zrange(keys()[1] as string, 0, -1)).toEqual(['al-2']);
    });
  });

  describeScript('riskAdd-2.lua', () => {
    const HOUR = 3_600_000;
    const entity = (value = 'u-1') => riskKeys(prefix, 'user', value);
    const add = (id: string, time: number, points = 25, value = 'u-1') => ({ keys: [entity(value).score, entity(value).contributors], args: [id, time, points, 'new-device', HOUR, 100, TTL, 3] });

    it('adds decayed points, crosses once with its contributors, and re-arms only below the threshold', async () => {
      const replies = await callBatch(redis, 'riskAdd', [add('d-1', 0, 60), add('d-2', HOUR, 80), add('d-3', HOUR, 10)]);
      expect(replies[0]).toEqual(['60', 0, 0, 0]);
      // 60 halved in an hour, plus 80: over 100, with every contributor so far.
      const crossed = replies[1] as unknown[];
      expect(crossed.slice(0, 4)).toEqual(['110', HOUR, 1, 0]);
      const pairs = crossed.slice(4).reduce<Record<string, unknown>>((all, value, index, list) => (index % 2 === 0 ? { ...all, [String(value)]: list[index + 1] } : all), {});
      expect(pairs).toEqual({ 'd-1': '0|60|new-device', 'd-2': `${HOUR}|80|new-device` });
      // Still over: no second crossing.
      expect(replies[2]).toEqual(['120', HOUR, 0, 0]);
      // A copy adds nothing. A copy of the detection that crossed says that crossing again, as it
      // was (its score and contributors then), so a redone batch still raises it (version 2).
      expect(await callBatch(redis, 'riskAdd', [add('d-3', HOUR, 10)])).toEqual([['120', HOUR, 0, 1]]);
      expect(await callBatch(redis, 'riskAdd', [add('d-2', HOUR, 80)])).toEqual([[...crossed.slice(0, 3), 1, ...crossed.slice(4)]]);
      expect(await redis.hget(entity().score, 'score')).toBe('120');
      // Three half-lives later: 15, below; 100 more crosses again.
      const [again] = await callBatch(redis, 'riskAdd', [add('d-4', 4 * HOUR, 100)]);
      expect((again as unknown[]).slice(0, 4)).toEqual(['115', 4 * HOUR, 1, 0]);
      // At most 3 contributors: the oldest went.
      expect(Object.keys(await redis.hgetall(entity().contributors)).sort()).toEqual(['d-2', 'd-3', 'd-4']);
    });

    it('adds a late detection at its points decayed to the entity time', async () => {
      await callBatch(redis, 'riskAdd', [add('d-1', 2 * HOUR, 10)]);
      const [late] = await callBatch(redis, 'riskAdd', [add('d-0', HOUR, 40)]);
      expect(late).toEqual(['30', 2 * HOUR, 0, 0]);
    });
  });

  /** One call of each script and the TTL it was passed; every key it writes must expire. */
  const writes: Record<string, () => Promise<number>> = {
    'windowAdd-2.lua': async () => {
      await windowAdd('evt-1', 1000, { ttl: 30_000 });
      return 30_000;
    },
    'distinctAdd-3.lua': async () => {
      await distinctAdd('u-1', 'evt-1', 1000, { ttl: 30_000 });
      return 30_000;
    },
    'distinctShare-4.lua': async () => {
      const keys = [key('values'), key('events'), key('fired'), key('others')];
      await callScript(redis, 'distinctShare', keys, ['u-1', 'evt-1', 1000, 0, 1000, 0, 30_000, 200, 0, 1, 50]);
      await callScript(redis, 'distinctShare', keys, ['u-2', 'evt-2', 1000, 0, 1000, 0, 30_000, 200, 0, 0, 50]);
      return 30_000;
    },
    'sequenceAdd-2.lua': async () => {
      await sequenceAdd(1000, ['0:evt-1', '1:evt-1'], { ttl: 30_000 });
      return 30_000;
    },
    'firstSeen-1.lua': async () => {
      await firstSeen('dev-a', 1000, { ttl: 30_000 });
      return 30_000;
    },
    'locationAdd-2.lua': async () => {
      await locationAdd({ lat: 1, lon: 2, time: '1970-01-01T00:00:01.000Z', eventId: 'evt-1' }, { ttl: 30_000 });
      return 30_000;
    },
    'surgeTick-2.lua': async () => {
      await callScript(redis, 'surgeTick', [key('surge'), key('surge-hll:1')], [1, 'distinct', 1, 0, '["a"]', '[]', 0.5, 30_000, 1, 20_000, 6, 1, 60_000, 'evt-a']);
      await callScript(redis, 'surgeTick', [key('surge'), key('surge-hll:2')], [2, 'distinct', 1, 0, '["b"]', '[]', 0.5, 30_000, 2, 20_000, 6, 1, 120_000, 'evt-b']);
      // A late event of a folded bucket writes no HyperLogLog, and the hash still expires.
      await callScript(redis, 'surgeTick', [key('surge'), key('surge-hll:1')], [1, 'distinct', 1, 0, '["c"]', '[]', 0.5, 30_000, 2, 20_000, 6, 1, 60_000, 'evt-c']);
      return 30_000;
    },
    'alertHold-2.lua': async () => {
      await callScript(redis, 'alertHold', [alertKey('held'), alertKey('clock')], [1, 30_000, 'p:0', 0, 1000, 1000, '{"id":"a"}']);
      return 30_000;
    },
    'alertRelease-2.lua': async () => {
      // Reads write nothing: hold, release, and the keys must still expire.
      await callScript(redis, 'alertHold', [alertKey('held'), alertKey('clock')], [1, 30_000, 'p:0', 0, 1000, 1000, '{"id":"a"}']);
      await callScript(redis, 'alertRelease', [alertKey('held'), alertKey('clock')], [2, 0, 10, 0, 0]);
      return 30_000;
    },
    'alertFold-12.lua': async () => {
      // Every branch: open, join, absorb, campaign, late, link.
      await fold('u-1', 60_000, { group: 'actor.userId=v' });
      await fold('t-1', 61_000, { group: 'client.ip=9.9.9.9', named: ['actor.userId=v'] });
      await fold('f-1', 60_000, { group: 'endpoint', rule: 'flood', explains: true, windowStart: 0 });
      await fold('f-2', 61_000, { group: 'endpoint', rule: 'flood', explains: true, windowStart: 0 });
      await fold('s-1', 30_000, { group: 'ip-1', rule: 'stuffing', explainedBy: ['flood'], explainer: 'endpoint' });
      for (let n = 1; n <= 3; n++) await fold(`c-${n}`, 200_000 + n, { group: `ip-c${n}`, stormMax: 1 });
      await fold('late-1', 1000, { group: 'endpoint', rule: 'flood' });
      return TTL;
    },
    'alertSettle-5.lua': async () => {
      await fold('d-1', 1000);
      await callScript(redis, 'alertSettle', [alertKey('alert:g-1'), alertKey('open'), alertKey('unsent'), alertKey('clock'), alertKey('wall')], [100_000, 1000, 0, 'g-1', 20_000, 'q']);
      return TTL;
    },
    'noteRequest-2.lua': async () => {
      await noteRequest('authn', 'pass', { ttl: 30_000, user: 'alice' });
      await noteRequest('authn', 'fail', { ttl: 30_000 });
      await noteRequest('authn', 'pass', { ttl: 20_000 }); // the "fail stays" branch must still leave a TTL
      await noteRequest('authn', 'pass', { ttl: 20_000, user: 'mallory', request: 'r-2' });
      await noteRequest('authn', 'pass', { ttl: 20_000, user: 'alice', request: 'r-2' }); // the "two users" branch
      return 30_000;
    },
    'readRequest-2.lua': async () => {
      // Reads write nothing: write through noteRequest, read, and the keys must still expire.
      await noteRequest('authn', 'pass', { ttl: 30_000, user: 'alice' });
      await readRequest();
      await readRequest('r-never-noted');
      return 30_000;
    },
    'noteDevice-3.lua': async () => {
      await noteDevice('d-1', 2000, { ttl: 30_000, session: 's-1' });
      await noteDevice('d-2', 1000, { ttl: 20_000 }); // the "older event" branch must still leave a TTL
      return 30_000;
    },
    'readContext-3.lua': async () => {
      await noteDevice('d-1', 1000, { ttl: 30_000, session: 's-1' });
      await readContext(1);
      await readContext(0);
      await readContext(1, userKeys('u-1', 's-never-noted'));
      return 30_000;
    },
    'alertSilence-2.lua': async () => {
      // It writes into an alert's hash, which alertFold gave its TTL (it must keep it), and the index.
      const group = 'client.ip=203.0.113.7';
      const key = alertKeys(prefix).alert(group);
      await redis.hset(key, 'id', 'alert-1');
      await redis.pexpire(key, 30_000);
      await callScript(redis, 'alertSilence', [key, alertKeys(prefix).heldBySilence], ['alert-1', 10, 'opened', 'r', group, 30_000, 's-1']);
      return 30_000;
    },
    'alertHeldClear-3.lua': async () => {
      // It only deletes: the keys it leaves keep their TTLs.
      const group = 'client.ip=203.0.113.7';
      const key = alertKeys(prefix).alert(group);
      const { heldBySilence, heldClaims } = alertKeys(prefix);
      await redis.hset(key, 'id', 'alert-1', 'held', 'opened', 'heldSeq', '1');
      await redis.pexpire(key, 30_000);
      await redis.hset(heldBySilence, 'alert-1', group, 'alert-2', group);
      await redis.pexpire(heldBySilence, 30_000);
      await redis.hset(heldClaims, 'alert-1', '1', 'alert-2', '1');
      await redis.pexpire(heldClaims, 30_000);
      await callScript(redis, 'alertHeldClear', [key, heldBySilence, heldClaims], ['alert-1', '1']);
      return 30_000;
    },
    'alertLinksPrune-2.lua': async () => {
      // It only deletes links (their hash keeps its TTL); the cursor of a pass under way gets the TTL passed.
      const { links, linksCursor } = alertKeys(prefix);
      const fields: Record<string, string> = {};
      for (let index = 0; index < 1000; index++) fields[`ip=${index}`] = JSON.stringify({ group: `g-${index}`, id: `alert-${index}` });
      await redis.hset(links, fields);
      await redis.pexpire(links, 30_000);
      const [, , ended] = (await call('alertLinksPrune', [links, linksCursor], [alertKeys(prefix).alert(''), 10, 20_000])) as number[];
      expect(ended).toBe(0);
      await redis.hset(links, 'ip=live', '{"group":"g","id":"a"}');
      return 30_000;
    },
    'alertHeldClaim-2.lua': async () => {
      // The claims hash it creates gets the TTL; the index it reads keeps its own.
      const { heldBySilence, heldClaims } = alertKeys(prefix);
      await redis.hset(heldBySilence, 'alert-1', 'client.ip=203.0.113.7');
      await redis.pexpire(heldBySilence, 30_000);
      await callScript(redis, 'alertHeldClaim', [heldBySilence, heldClaims], [60_000, 30_000, 'alert-1']);
      return 30_000;
    },
    'groupSwap-2.lua': async () => {
      const keys = groupKeys(prefix, 'hook');
      await callScript(redis, 'groupSwap', [keys.state('al-1'), keys.due], [0, '{}', 5000, 'al-1', 30_000]);
      await callScript(redis, 'groupSwap', [keys.state('al-1'), keys.due], [1, '{}', '', 'al-1', 20_000]); // the "due never" branch
      await callScript(redis, 'groupSwap', [keys.state('al-2'), keys.due], [0, '{}', 5000, 'al-2', 30_000]);
      return 30_000;
    },
    'riskAdd-2.lua': async () => {
      const keys = riskKeys(prefix, 'user', 'u-1');
      await callBatch(redis, 'riskAdd', [{ keys: [keys.score, keys.contributors], args: ['d-1', 1000, 200, 'r', 60_000, 100, 30_000, 5] }]);
      await callBatch(redis, 'riskAdd', [{ keys: [keys.score, keys.contributors], args: ['d-1', 1000, 200, 'r', 60_000, 100, 20_000, 5] }]); // the copy branch
      return 30_000;
    },
    'claimFiring-1.lua': async () => {
      await claimFiring(10_000, 1000, 30_000);
      await claimFiring(5000, 1000, 20_000); // the "keep the later time" branch must still leave a TTL
      return 30_000;
    },
  };

  describe('TTLs', () => {
    it.each(Object.keys(writes))('%s sets a TTL on every key it writes', async (file) => {
      const ttl = await (writes[file] ?? (() => Promise.reject(new Error(`no TTL case for ${file}`))))();
      const keys = await keysUnder(redis, prefix);
      expect(keys.length).toBeGreaterThan(0);
      for (const written of keys) {
        const remaining = await redis.pttl(written);
        expect({ key: written, positive: remaining > 0, withinTtl: remaining <= ttl }).toEqual({ key: written, positive: true, withinTtl: true });
      }
    });
  });

  it('covers every Lua file shipped, for its contract and its TTLs', () => {
    const shipped = [...luaFiles()].sort();
    expect([...covered].sort()).toEqual(shipped);
    expect(Object.keys(writes).sort()).toEqual(shipped);
  });
});
