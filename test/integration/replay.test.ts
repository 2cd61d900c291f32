import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ensureTopics, loadConfig } from '../../platform';
import { indexNames, type Detection } from '../../schemas';
import { replayDetections } from '../../scripts/replay';
import { isolatedConfig, openStack, vigilOn, waitFor } from '../support/harness';
import { mixedHour, produceEvents } from '../support/mixed-hour';

/** One NDJSON line: a failed login of `userId` at `at` (ms). */
function failedLogin(id: string, at: number, userId: string): string {
  return JSON.stringify({
    id,
    schemaVersion: 1,
    family: 'policy',
    time: new Date(at).toISOString(),
    source: { service: 'edge-gateway-eu', kind: 'gateway' },
    actor: { userId },
    client: { ip: '81.2.69.142' },
    policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', group: 'accounts', resource: { api: 'accounts-v1', method: 'POST', path: '/v1/login' } },
  });
}

describe('vigil replay over an NDJSON file', () => {
  let folder: string;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-replay-'));
  });

  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  it('reports what would fire, leaves no state behind, and gives the same ids twice', async () => {
    const start = Date.parse('2026-03-01T12:00:00Z');
    const lines: string[] = [];
    for (let n = 0; n < 11; n++) lines.push(failedLogin(`evt-replay-${n}`, start + n * 15_000, 'u-replay'));
    lines.push('{"this is": "not an event"}', 'not json at all');
    const file = join(folder, 'events.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);

    const first = await replayDetections({ file });
    const second = await replayDetections({ file });
    expect(first.events).toBe(11);
    expect(first.refused).toBe(2);
    expect(first.detections.map((detection) => detection.ruleId)).toEqual(['authn-failures-per-user']);
    expect(first.detections[0]?.reason).toBe('10 failed logins for user u-replay from 1 IP in 2m15s; threshold 10 in 5m.');
    expect(second.detections.map((detection) => detection.id)).toEqual(first.detections.map((detection) => detection.id));

    const config = loadConfig();
    const redis = new Redis(config.redis.url);
    try {
      // Its throwaway state is under the configured prefix (an ACL user may be limited to it), and gone.
      const [, leftovers] = await redis.scan('0', 'MATCH', `${config.redis.prefix}:replay-*`, 'COUNT', 10_000);
      expect(leftovers).toEqual([]);
    } finally {
      await redis.quit();
    }
  });

  // Checked against the wall clock, every line of a file dated a week ahead was refused
  // (time_out_of_range) and the run reported 0 events.
  it('replays events dated any time: a file has no time-range check', async () => {
    const ahead = Date.now() + 7 * 86_400_000;
    const lines = Array.from({ length: 11 }, (_, n) => failedLogin(`evt-ahead-${n}`, ahead + n * 15_000, 'u-ahead'));
    const file = join(folder, 'ahead.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const replayed = await replayDetections({ file });
    expect({ events: replayed.events, refused: replayed.refused, rules: replayed.detections.map((detection) => detection.ruleId) }).toEqual({ events: 11, refused: 0, rules: ['authn-failures-per-user'] });
  });
});

describe.each([
  ['off (the default): each event rebuilt from its document', 'off'],
  ['on: each event read from event.original', 'on'],
])('vigil replay over stored events, event.original %s', (_title, original) => {
  // An hour of mixed traffic whose rules fire: brute force, stuffing, travel, new devices, floods.
  const START = Date.parse('2026-03-02T10:00:00Z');
  const EVENTS = mixedHour(START, 21);

  it('gives the detections the live run made, with the same ids', async () => {
    const stack = openStack(isolatedConfig(original === 'on' ? { VIGIL_EVENT_ORIGINAL: 'on' } : {}));
    const live = new Map<string, Detection>();
    const vigil = vigilOn(stack, { onDetections: (found) => void found.forEach((detection) => live.set(detection.id, detection)) });
    try {
      await ensureTopics(stack.kafka, stack.config);
      await produceEvents(stack.kafka, stack.config, EVENTS);
      await vigil.start();
      await waitFor('the hour consumed', () => (vigil.stats().ingest?.consumed ?? 0) >= EVENTS.length, 120_000);
      await vigil.stop();
      const index = indexNames(stack.config.indices.prefix).eventPattern;
      await stack.elasticsearch.indices.refresh({ index });
      const sample = await stack.elasticsearch.search<{ event: { original?: string } }>({ index, size: 1, _source_includes: ['event.original'] });
      expect(typeof sample.hits.hits[0]?._source?.event?.original).toBe(original === 'on' ? 'string' : 'undefined');

      const replay = await replayDetections({ from: new Date(START - 60_000).toISOString(), to: new Date(START + 61 * 60_000).toISOString(), config: stack.config });
      expect(replay).toMatchObject({ events: EVENTS.length, refused: 0, rebuilt: original === 'on' ? 0 : EVENTS.length, inexact: 0 });
      expect(live.size).toBeGreaterThan(5);
      const ids = (detections: Iterable<Detection>): string[] => [...detections].map((detection) => `${detection.ruleId} ${detection.id}`).sort();
      expect(ids(replay.detections)).toStrictEqual(ids(live.values()));
    } finally {
      await vigil.stop();
      await stack.cleanup();
    }
  }, 240_000);
});
