import { isDeepStrictEqual } from 'node:util';
import { classifyMessage, type MessageLimits } from '../../ingest';
import { fuzzTraffic } from '../support/fuzz';
import { referenceClassifyMessage } from '../support/hot-path-reference';

/**
 * classifyMessage refuses a bad message more cheaply than it did (no stack trace for a JSON
 * SyntaxError or a schema refusal, the SDK's text recognised by its opening; docs/hostile-input.md),
 * and must still decide every message as zod alone did: same outcome, same reason code, same
 * text naming what is wrong, same event. Held to that over the hostile-input bench's own traffic
 * (the fuzz generator, fixed seeds and clock) against the implementation before, with the SDK
 * fast path off (test/support/hot-path-reference.ts).
 */

// The pipeline's defaults (platform/config.ts), which the bench runs with.
const limits: MessageLimits = { maxMessageBytes: 256 * 1024, maxJsonDepth: 16 };
const now = new Date('2026-12-01T12:00:00.000Z');
// Read before any test of this file has classified anything.
const stackTraceLimitAtLoad = Error.stackTraceLimit;

describe('classifyMessage against the zod-only path', () => {
  it.each([1001, 1002, 1003])('decides the hostile bench traffic of seed %i exactly as zod alone did', (seed) => {
    const traffic = fuzzTraffic({ seed, count: 4000, idPrefix: `equivalence-${seed}`, ...limits, now });
    const differences: string[] = [];
    const reasons = new Set<string>();
    for (const message of traffic) {
      const expected = referenceClassifyMessage(message.value, limits, message.family, now, { sdkFastPath: false });
      const actual = classifyMessage(message.value, limits, message.family, now);
      reasons.add(actual.ok ? 'ok' : actual.reasonCode);
      if (!isDeepStrictEqual(actual, expected)) {
        differences.push(`${message.seq} ${message.kind}: ${JSON.stringify(actual).slice(0, 200)} instead of ${JSON.stringify(expected).slice(0, 200)}`);
      }
    }
    expect(differences.slice(0, 5)).toStrictEqual([]);
    // The traffic reaches every refusal classify makes, so none of them went untested.
    expect([...reasons].sort()).toStrictEqual(['empty', 'not_json', 'ok', 'schema_invalid', 'time_out_of_range', 'too_deep', 'too_large', 'unknown_schema_version', 'wrong_topic']);
  });

  it('names every problem of a refused event, not only the first', () => {
    const event = { id: 'x', schemaVersion: 1, family: 'policy', time: 'yesterday', source: { service: '', kind: 'robot' } };
    const result = classifyMessage(Buffer.from(JSON.stringify(event)), limits, 'policy', now);
    expect(result).toStrictEqual(referenceClassifyMessage(Buffer.from(JSON.stringify(event)), limits, 'policy', now, { sdkFastPath: false }));
    expect(result.ok ? [] : result.message.split('; ').map((problem) => problem.split(':')[0])).toStrictEqual(['id', 'time', 'source.service', 'source.kind', 'policy']);
  });

  it('leaves the stack trace limit as it found it, after a message that is not JSON', () => {
    const result = classifyMessage(Buffer.from('{"id":'), limits, 'policy', now);
    expect(result).toMatchObject({ ok: false, reasonCode: 'not_json' });
    expect(stackTraceLimitAtLoad).toBeGreaterThan(0);
    expect(Error.stackTraceLimit).toBe(stackTraceLimitAtLoad);
    expect(new Error('after').stack?.split('\n').length).toBeGreaterThan(1);
  });
});
