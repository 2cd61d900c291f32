/**
 * Text the operator CLI reads from a command line and prints to a terminal, shared by its
 * commands so each reads a time and escapes a value the same way.
 */

/**
 * Whether a time's date and clock fields are real (Date.parse takes 2026-02-30 as 2 March, and
 * T24:00 as the next day's midnight): its fields, read back from the parsed time in the zone the
 * text names, must be the ones written. The grammar is each command's; this checks only the
 * calendar (a zone of `+HH:MM` or `+HHMM`, at most 18 hours).
 */
export function calendarDate(text: string): boolean {
  const [, year, month, day, hour = '00', minute = '00', zone = 'Z'] = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(text) ?? [];
  if (year === undefined || month === undefined || day === undefined) return false;
  const offsetMinutes = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)));
  if (Math.abs(offsetMinutes) > 18 * 60) return false;
  // The wall time the text names, as if it were UTC: each field must survive the round trip.
  const wall = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute)));
  return wall.getUTCFullYear() === Number(year) && wall.getUTCMonth() + 1 === Number(month) && wall.getUTCDate() === Number(day) && wall.getUTCHours() === Number(hour) && wall.getUTCMinutes() === Number(minute);
}

/**
 * Prints bytes for a terminal: UTF-8 text as it is, with control characters and backslashes
 * escaped (`\n`, `\u0000`, `\\`); other bytes as `\xNN`. At most `maxBytes` of the value are
 * shown (never half a character), with what was left out said at the end.
 */
export function escapeBytes(value: Buffer | null, maxBytes: number): string {
  if (value === null) return '(no value)';
  if (value.length === 0) return '(0 bytes)';
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    text = undefined;
  }
  let out = '';
  let shown = 0;
  if (text !== undefined) {
    for (const character of text) {
      const size = Buffer.byteLength(character);
      if (shown + size > maxBytes) break;
      shown += size;
      const code = character.codePointAt(0) ?? 0;
      if (character === '\\') out += '\\\\';
      else if (character === '\n') out += '\\n';
      else if (character === '\r') out += '\\r';
      else if (character === '\t') out += '\\t';
      else if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else out += character;
    }
  } else {
    for (const byte of value.subarray(0, maxBytes)) {
      out += byte === 0x5c ? '\\\\' : byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
    }
    shown = Math.min(value.length, maxBytes);
  }
  return shown < value.length ? `${out}… (${value.length - shown} more bytes)` : out;
}

/**
 * Text someone else chose (a header, a receiver's answer, an alert's title) as a terminal may
 * print it, as {@link escapeBytes} prints bytes (C1 controls escaped too): it can't clear,
 * recolour or retitle the terminal, or print a line of its own.
 */
export function terminalText(value: string): string {
  return value === '' ? '' : escapeBytes(Buffer.from(value, 'utf8'), Number.MAX_SAFE_INTEGER);
}
