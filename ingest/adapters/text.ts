import { present } from './common';

/**
 * Guards that keep a gateway's text inside the contract's limits, so one odd field loses that
 * field, not the record: the contract refuses control characters and over-long identifiers, and
 * an adapter would rather leave `actor.userId` out than dead-letter an otherwise good request.
 */

// Written with escapes in a string, as schemas/envelope.ts does: the same ranges the contract refuses.
const CONTROL = new RegExp(String.raw`[\u0000-\u001F\u007F-\u009F]`);
const CONTROL_BUT_TAB = new RegExp(String.raw`[\u0000-\u0008\u000A-\u001F\u007F-\u009F]`);

/** A value fit for an identifier field (1–256 characters, no control character), else `undefined`. */
export function identifierText(value: unknown): string | undefined {
  const text = present(value);
  return text !== undefined && text.length <= 256 && !CONTROL.test(text) ? text : undefined;
}

/** A value fit for a label (at most 256 characters, no control character), else `undefined`. */
export function labelText(value: unknown): string | undefined {
  return identifierText(value);
}

/** A User-Agent as the contract takes it (at most 1024 characters, a tab allowed), else `undefined`. */
export function userAgentText(value: unknown): string | undefined {
  const text = present(value);
  return text !== undefined && text.length <= 1024 && !CONTROL_BUT_TAB.test(text) ? text : undefined;
}

/** A path or route the contract takes (starts with `/`, at most 2048 characters, no control character). */
export function pathText(value: string | undefined): string | undefined {
  return value !== undefined && value.startsWith('/') && value.length <= 2048 && !CONTROL.test(value) ? value : undefined;
}

/** Labels with the absent values left out; keys are the adapter's own, already in the contract's shape. */
export function labels(entries: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(entries)) {
    const text = labelText(value);
    if (text !== undefined) out[key] = text;
  }
  return out;
}

/** A plain JSON object (not an array, not null), or `undefined`. */
export function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** `JSON.parse` that answers `undefined` instead of throwing. */
export function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** A whole number in range from a number or numeric text, else `undefined`. */
export function integerIn(value: unknown, min: number, max: number): number | undefined {
  const text = present(value);
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  const number = Number(text);
  return number >= min && number <= max ? number : undefined;
}
