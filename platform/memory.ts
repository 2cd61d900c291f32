import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { Logger } from './logger';

/**
 * Below this heap limit V8 caps its own growth factor under 2 (measured with `--trace-gc-verbose`
 * on Node 20: 1.4 at a 512 MB limit, 1.6 at 1 GB, 1.9 at 1.75 GB, 4 from 2 GB up), so a fixed
 * growth would loosen it rather than tighten it: the heap growth is set only from this limit up.
 */
export const HEAP_GROWTH_MIN_LIMIT_BYTES = 2048 * 1024 * 1024;

/** What {@link applyHeapGrowth} did, and why. */
export type HeapGrowthOutcome =
  | { applied: true; percent: number }
  | { applied: false; why: 'off' | 'heap-limit' | 'command-line' };

/** What {@link applyHeapGrowth} reads of and writes to the process; tests pass their own. */
export interface HeapGrowthEnvironment {
  /** V8's heap limit in bytes (`v8.getHeapStatistics().heap_size_limit`). */
  heapSizeLimit: number;
  /** Node's command-line flags (`process.execArgv`; V8 refuses this flag in NODE_OPTIONS). */
  execArgv: readonly string[];
  setFlags: (flags: string) => void;
}

function processEnvironment(): HeapGrowthEnvironment {
  return { heapSizeLimit: getHeapStatistics().heap_size_limit, execArgv: process.execArgv, setFlags: setFlagsFromString };
}

/**
 * Sets how far V8 lets the heap grow past what its last full collection kept before it collects
 * again (`--heap-growing-percent`; `VIGIL_HEAP_GROWTH_PERCENT`), when that holds memory tighter
 * than V8 would on its own.
 *
 * Why: a long-running consumer turns over far more memory than it keeps. V8 sets the next full
 * collection at the live heap times a factor it picks from its collection speed, capped by the
 * heap limit, and Node sets that limit from the machine's memory: from a 2 GB limit up the factor
 * reaches 4, and the process's resident size follows its garbage, not what it holds
 * (docs/performance.md, "Memory"). Unlike `--max-old-space-size`, this flag is read whenever V8
 * computes the next collection's limit, so the process can set it for itself at start.
 *
 * Left alone: `0` (V8's own rule); a heap limit under {@link HEAP_GROWTH_MIN_LIMIT_BYTES}, where
 * V8's own cap is already tighter (the container image's 512 MB); and a `--heap-growing-percent`
 * given to Node on its command line, which the operator chose.
 *
 * Process-wide: call it from a command's entry point, not from a library.
 */
export function applyHeapGrowth(percent: number, logger?: Logger, environment: HeapGrowthEnvironment = processEnvironment()): HeapGrowthOutcome {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth must be a whole number of percent from 0 up, got ${String(percent)}`);
  if (percent === 0) return { applied: false, why: 'off' };
  if (environment.execArgv.some((flag) => /^--heap[-_]growing[-_]percent(=|$)/.test(flag))) {
    logger?.info({ heapGrowthPercent: percent }, "heap growth left to Node's command line (--heap-growing-percent given)");
    return { applied: false, why: 'command-line' };
  }
  const limitMb = Math.round(environment.heapSizeLimit / (1024 * 1024));
  if (environment.heapSizeLimit < HEAP_GROWTH_MIN_LIMIT_BYTES) {
    logger?.info({ heapGrowthPercent: percent, heapLimitMb: limitMb }, `heap growth left to V8: under a heap limit of ${limitMb} MB its own growth is already tighter`);
    return { applied: false, why: 'heap-limit' };
  }
  environment.setFlags(`--heap-growing-percent=${percent}`);
  logger?.info({ heapGrowthPercent: percent, heapLimitMb: limitMb }, 'heap growth set');
  return { applied: true, percent };
}
