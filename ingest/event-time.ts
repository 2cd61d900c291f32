/**
 * A message's event time as the partition runner's alignment reads it, before decoding: the
 * aligner needs the time of every message of a batch to know how far the partition may go, and
 * a full parse of each message twice would cost more than the alignment saves. The top-level
 * `time` of the envelope is found by a byte search; the one nested place a `"time"` key could
 * appear (a label named `time`) makes it parse the message instead.
 */

import { EARLIEST_EVENT_TIME, MAX_FUTURE_MS } from './classify';

const TIME_FIELD = Buffer.from('"time":"');
/** An RFC 3339 time is at most 35 characters (nanoseconds and an offset). */
const LONGEST_TIME = 40;

/** What decode will refuse anyway, so alignment need not go by it (see {@link messageEventTime}). */
export interface EventTimeBounds {
  /** The pipeline's clock (ms): a time more than a day ahead of it is `time_out_of_range`. */
  now: number;
  /** A larger message is `too_large`: its time is not read, nor the message parsed. */
  maxMessageBytes: number;
}

/**
 * The event time (ms) of a raw message, or undefined when it has none that can be read (it is
 * then decoded and refused or evaluated as any other, and never waits for alignment). A hint
 * for ordering only: what the rules see is the validated event's own time.
 *
 * With `bounds`, a message decode is bound to refuse by its size or its time has none either. A
 * time years ahead would otherwise stop its partition until every other one had read all it was
 * given, since no watermark ever reaches it: one such message in a partition's batch, and the
 * partitions ran one after another in short chunks (docs/hostile-input.md).
 */
export function messageEventTime(value: Buffer | null, bounds?: EventTimeBounds): number | undefined {
  if (value === null || value.length === 0) return undefined;
  if (bounds && value.length > bounds.maxMessageBytes) return undefined;
  const at = value.indexOf(TIME_FIELD);
  if (at >= 0 && value.indexOf(TIME_FIELD, at + TIME_FIELD.length) < 0) {
    const start = at + TIME_FIELD.length;
    const end = value.indexOf(0x22, start);
    if (end > start && end - start <= LONGEST_TIME) return accepted(Date.parse(value.toString('latin1', start, end)), bounds);
    return undefined;
  }
  // Absent (spaces around the colon, another encoding) or found twice: ask the parser.
  try {
    const parsed: unknown = JSON.parse(value.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'time' in parsed && typeof parsed.time === 'string') return accepted(Date.parse(parsed.time), bounds);
  } catch {
    // Not JSON: decode refuses it; alignment has no time to go by.
  }
  return undefined;
}

function accepted(ms: number, bounds: EventTimeBounds | undefined): number | undefined {
  if (!Number.isFinite(ms)) return undefined;
  if (bounds && (ms > bounds.now + MAX_FUTURE_MS || ms < EARLIEST_EVENT_TIME)) return undefined;
  return ms;
}
