import { setFlagsFromString } from 'node:v8';
import type { Logger } from './logger';

/**
 * Sets how far V8 lets the heap grow past what its last full collection kept before it collects
 * again (`--heap-growing-percent`; `VIGIL_HEAP_GROWTH_PERCENT`). `0` leaves V8's own rule.
 *
 * Why: a long-running consumer turns over far more memory than it keeps. V8 sizes the next
 * collection's threshold as the live heap times a factor it picks from its collection speed,
 * capped by the heap limit, and Node sets that limit from the machine's memory: on a large
 * machine the factor reaches 4, and the process's resident size follows the garbage, not what
 * it holds (docs/performance.md, "Memory"). Unlike `--max-old-space-size`, this flag is read at
 * every collection, so the process can set it for itself at start; the heap limit stays
 * Node's (or the operator's `NODE_OPTIONS`), so a larger live heap still fits.
 *
 * Process-wide: call it from a command's entry point, not from a library.
 */
export function applyHeapGrowth(percent: number, logger?: Logger): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth must be a whole number of percent from 0 up, got ${String(percent)}`);
  if (percent === 0) return;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  logger?.info({ heapGrowthPercent: percent }, 'heap growth set');
}
