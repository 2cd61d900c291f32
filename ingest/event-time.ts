/**
 * A message's event time as the partition runner's alignment reads it, before decoding: the
 * aligner needs the time of every message of a batch to know how far the partition may go, and
 * a full parse of each message twice would cost more than the alignment saves. The top-level
 * `time` of the envelope is found by a byte search; the one nested place a `"time"` key could
 * appear (a label named `time`) makes it parse the message instead.
 */

const TIME_FIELD = Buffer.from('"time":"');
/** An RFC 3339 time is at most 35 characters (nanoseconds and an offset). */
const LONGEST_TIME = 40;

/**
 * The event time (ms) of a raw message, or undefined when it has none that can be read (it is
 * then decoded and refused or evaluated as any other, and never waits for alignment). A hint
 * for ordering only: what the rules see is the validated event's own time.
 */
export function messageEventTime(value: Buffer | null): number | undefined {
  if (value === null || value.length === 0) return undefined;
  const at = value.indexOf(TIME_FIELD);
  if (at >= 0 && value.indexOf(TIME_FIELD, at + TIME_FIELD.length) < 0) {
    const start = at + TIME_FIELD.length;
    const end = value.indexOf(0x22, start);
    if (end > start && end - start <= LONGEST_TIME) return finite(Date.parse(value.toString('latin1', start, end)));
    return undefined;
  }
  // Absent (spaces around the colon, another encoding) or found twice: ask the parser.
  try {
    const parsed: unknown = JSON.parse(value.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'time' in parsed && typeof parsed.time === 'string') return finite(Date.parse(parsed.time));
  } catch {
    // Not JSON: decode refuses it; alignment has no time to go by.
  }
  return undefined;
}

function finite(ms: number): number | undefined {
  return Number.isFinite(ms) ? ms : undefined;
}
