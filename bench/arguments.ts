/** A positive integer command-line argument of a benchmark, or `fallback` when it is absent. */
export function positiveInteger(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${text}`);
  return value;
}
