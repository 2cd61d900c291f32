import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration written as `250ms`, `30s`, `5m`, `2h` or `30d`, parsed to milliseconds. */
export const durationSchema = z
  .string({ error: 'expected a duration such as 30s, 5m, 2h or 30d (a number alone has no unit)' })
  .regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 30s, 5m, 2h or 30d')
  .transform((text) => {
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
    return Number(match?.[1]) * (UNITS[match?.[2] ?? 'ms'] ?? 1);
  })
  .refine((ms) => ms > 0, 'a duration must be positive');

/** `272000` → `4m32s`; `300000` → `5m`. For sentences, not for parsing back. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
