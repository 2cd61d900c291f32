import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { HEAP_GROWTH_MIN_LIMIT_BYTES, applyHeapGrowth, type HeapGrowthEnvironment } from '../../platform';

const CHURN = join(__dirname, '..', 'support', 'heap-churn.ts');
const GB = 1024 * 1024 * 1024;

/** A process with the given heap limit and command line, recording the flags set. */
function environment(heapSizeLimit: number, execArgv: readonly string[] = []): HeapGrowthEnvironment & { set: string[] } {
  const set: string[] = [];
  return { heapSizeLimit, execArgv, setFlags: (flags) => set.push(flags), set };
}

/**
 * The heap's peak committed size of a child turning over ~30 MB live, with the setting given. The
 * child gets a 4 GB heap limit of its own (and no NODE_OPTIONS), so V8's own growth is the one
 * this setting is for, whatever machine or container the suite runs in.
 */
function peakHeap(setting: string): number {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawnSync(process.execPath, ['--max-old-space-size=4096', '--import', 'tsx', CHURN, setting], { encoding: 'utf8', timeout: 60_000, env });
  if (child.status !== 0) throw new Error(`heap-churn ${setting} exited with ${String(child.status)}: ${child.stderr}`);
  const { peakHeapBytes } = JSON.parse(child.stdout) as { peakHeapBytes: number };
  return peakHeapBytes;
}

describe('applyHeapGrowth', () => {
  it('refuses what is not a whole number of percent, naming it', () => {
    expect(() => applyHeapGrowth(-1, undefined, environment(4 * GB))).toThrow('heap growth must be a whole number of percent from 0 up, got -1');
    expect(() => applyHeapGrowth(2.5, undefined, environment(4 * GB))).toThrow('got 2.5');
  });

  it("sets V8's growth under a large heap limit, where V8 would let the heap grow fourfold", () => {
    const process = environment(4 * GB);
    expect(applyHeapGrowth(75, undefined, process)).toEqual({ applied: true, percent: 75 });
    expect(process.set).toEqual(['--heap-growing-percent=75']);
    const atTheBound = environment(HEAP_GROWTH_MIN_LIMIT_BYTES);
    expect(applyHeapGrowth(75, undefined, atTheBound).applied).toBe(true);
  });

  it("leaves V8 alone for 0, under a smaller heap limit (V8's own growth is tighter there), and when Node's command line sets it", () => {
    const off = environment(4 * GB);
    expect(applyHeapGrowth(0, undefined, off)).toEqual({ applied: false, why: 'off' });
    // The container image's 512 MB limit: V8's own factor is 1.4 there, under 1.75.
    const image = environment(512 * 1024 * 1024);
    expect(applyHeapGrowth(75, undefined, image)).toEqual({ applied: false, why: 'heap-limit' });
    const justUnder = environment(HEAP_GROWTH_MIN_LIMIT_BYTES - 1);
    expect(applyHeapGrowth(75, undefined, justUnder).applied).toBe(false);
    const operator = environment(4 * GB, ['--enable-source-maps', '--heap-growing-percent=30']);
    expect(applyHeapGrowth(75, undefined, operator)).toEqual({ applied: false, why: 'command-line' });
    const underscored = environment(4 * GB, ['--heap_growing_percent=30']);
    expect(applyHeapGrowth(75, undefined, underscored).applied).toBe(false);
    for (const process of [off, image, justUnder, operator, underscored]) expect(process.set).toEqual([]);
  });

  // The flag is V8's, set after the heap exists: this holds the Node in use to taking it then
  // (a Node whose V8 dropped the flag or read it only at start fails here, not silently in production).
  it('keeps the heap of a process that turns its memory over well under what V8 lets it reach on its own', () => {
    const own = peakHeap('none');
    const held = peakHeap('25');
    expect(held).toBeLessThan(own * 0.75);
  });
});
