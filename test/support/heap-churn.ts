/**
 * A child process for test/unit/memory.test.ts: turns over a live set that keeps being replaced,
 * as a consumer's chunks and caches are, with `applyHeapGrowth(percent)` applied first (or not,
 * for `none`), and prints the heap's peak committed size in bytes as JSON.
 */
import { applyHeapGrowth } from '../../platform/memory';

const [setting] = process.argv.slice(2);
if (setting !== 'none') applyHeapGrowth(Number(setting));
// About 30 MB live at any time: objects survive long enough to be promoted, then die in old space.
const slots = 3000;
const live: unknown[] = new Array<unknown>(slots).fill(null);
let peak = 0;
for (let round = 0; round < 30_000; round++) {
  const batch: { position: number; text: string }[] = [];
  for (let item = 0; item < 100; item++) batch.push({ position: item, text: `chunk ${round}:${item}` });
  live[round % slots] = batch;
  if (round % 100 === 0) peak = Math.max(peak, process.memoryUsage().heapTotal);
}
process.stdout.write(JSON.stringify({ setting, peakHeapBytes: peak }));
