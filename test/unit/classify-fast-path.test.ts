import { classifyMessage, type MessageLimits } from '../../ingest';
import { fastMessage } from '../../ingest/sdk/fast-check';
import { eventSchema, type Family } from '../../schemas';
import { fuzzTraffic, seededRandom } from '../support/fuzz';
import { deviceInput, invocationInput, minimalEvents, policyInput, withField } from './fixtures';

/**
 * classifyMessage skips zod for a message whose text is exactly what the SDK's fast check writes
 * for it (ingest/classify.ts, canonicalEvent). It must then return what zod returns, and never
 * accept what zod refuses: held to that over the SDK's own messages, the fuzz traffic, and
 * single-character mutations of the SDK's messages.
 */

const limits: MessageLimits = { maxMessageBytes: 256 * 1024, maxJsonDepth: 16 };
const now = new Date('2024-05-01T12:00:00.000Z');
const source = { service: 'unit-service', kind: 'service' } as const;

/** The SDK's message text for each family's common input (the fixtures, without what the fast check leaves to zod). */
function sdkTexts(): Array<{ family: Family; text: string }> {
  const minimal = minimalEvents();
  const inputs: Array<{ family: Family; input: Record<string, unknown> }> = [
    { family: 'policy', input: withField(withField(policyInput(), 'labels', undefined), 'policy.scopes', undefined) },
    { family: 'invocation', input: invocationInput() },
    { family: 'device', input: withField(deviceInput(), 'device.geo', undefined) },
    { family: 'policy', input: { policy: minimal.policy.policy } },
    { family: 'invocation', input: { invocation: minimal.invocation.invocation } },
    { family: 'device', input: { device: minimal.device.device } },
  ];
  return inputs.map(({ family, input }, index) => {
    const written = fastMessage(family, input, `sdk-event-${String(index).padStart(4, '0')}`, '2024-05-01T10:00:00.000Z', source);
    if (written === undefined) throw new Error(`the fast check did not write fixture ${index} (${family})`);
    return { family, text: written.value };
  });
}

/** What zod alone says of a text: the parsed event, or undefined when it is not a valid event. */
function zodEvent(text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = eventSchema.safeParse(parsed);
  return result.success ? result.data : undefined;
}

describe('classifyMessage, the SDK message fast path', () => {
  afterEach(() => jest.restoreAllMocks());

  it('returns the SDK’s own messages without running zod, equal to what zod returns', () => {
    const texts = sdkTexts();
    const parse = jest.spyOn(eventSchema._zod, 'run');
    const results = texts.map(({ family, text }) => classifyMessage(Buffer.from(text), limits, family, now));
    expect(parse).not.toHaveBeenCalled();
    parse.mockRestore();
    results.forEach((result, index) => {
      expect(result.ok).toBe(true);
      if (result.ok) expect(result.event).toEqual(zodEvent(texts[index]?.text ?? ''));
    });
  });

  it('leaves another producer’s spelling of the same event to zod, with the same answer', () => {
    const [{ family, text } = { family: 'policy' as Family, text: '' }] = sdkTexts();
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(text) as Record<string, unknown>).reverse()));
    const spaced = JSON.stringify(JSON.parse(text), null, 1);
    const parse = jest.spyOn(eventSchema._zod, 'run');
    const results = [reordered, spaced].map((variant) => classifyMessage(Buffer.from(variant), limits, family, now));
    expect(parse).toHaveBeenCalledTimes(2);
    parse.mockRestore();
    for (const result of results) {
      expect(result.ok).toBe(true);
      if (result.ok) expect(result.event).toEqual(zodEvent(text));
    }
  });

  it('still refuses an event out of the time range on the fast path', () => {
    const [{ family, text } = { family: 'policy' as Family, text: '' }] = sdkTexts();
    const result = classifyMessage(Buffer.from(text), limits, family, new Date('2024-04-01T00:00:00.000Z'));
    expect(result).toMatchObject({ ok: false, reasonCode: 'time_out_of_range' });
  });

  it('agrees with zod on every message of the fuzz traffic', () => {
    const messages = fuzzTraffic({ seed: 77, count: 4000, idPrefix: 'fast-path', maxMessageBytes: limits.maxMessageBytes, maxJsonDepth: limits.maxJsonDepth, now });
    let accepted = 0;
    for (const message of messages) {
      const result = classifyMessage(message.value, limits, message.family, now);
      if (!result.ok) continue;
      accepted++;
      expect(result.event).toEqual(zodEvent(message.value?.toString('utf8').replace(/^\uFEFF/, '') ?? ''));
    }
    expect(accepted).toBeGreaterThan(500);
  });

  it('never accepts a one-character change of an SDK message that zod refuses, and returns zod’s event for the rest', () => {
    const random = seededRandom(5);
    const replacements = ['"', '\\', 'x', 'Z', '0', '9', ' ', '-', '.', ':', '{', '}', ',', '\\u0000', '\\t', 'é', ''];
    let agreedValid = 0;
    let agreedInvalid = 0;
    for (const { family, text } of sdkTexts()) {
      for (let position = 0; position < text.length; position++) {
        for (let draw = 0; draw < 3; draw++) {
          const replacement = replacements[Math.floor(random() * replacements.length)] ?? '';
          const mutated = text.slice(0, position) + replacement + text.slice(position + 1);
          const expected = zodEvent(mutated);
          const result = classifyMessage(Buffer.from(mutated), limits, family, now);
          if (expected === undefined) {
            if (result.ok) throw new Error(`accepted what zod refuses: ${mutated}`);
            agreedInvalid++;
          } else if (result.ok) {
            expect(result.event).toEqual(expected);
            agreedValid++;
          } else {
            // zod's event, refused after it (another family's topic, a time out of range): not the fast path's doing.
            expect(['wrong_topic', 'time_out_of_range']).toContain(result.reasonCode);
          }
        }
      }
    }
    expect(agreedValid).toBeGreaterThan(100);
    expect(agreedInvalid).toBeGreaterThan(100);
  });
});
