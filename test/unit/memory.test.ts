import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { applyHeapGrowth } from '../../platform';

const CHURN = join(__dirname, '..', 'support', 'heap-churn.ts');

/** The heap's peak committed size of a child turning over ~30 MB live, with the setting given. */
function peakHeap(setting: string): number {
  const child = spawnSync(process.execPath, ['--import', 'tsx', CHURN, setting], { encoding: 'utf8', timeout: 60_000 });
  if (child.status !== 0) throw new Error(`heap-churn ${setting} exited with ${String(child.status)}: ${child.stderr}`);
  const { peakHeapBytes } = JSON.parse(child.stdout) as { peakHeapBytes: number };
  return peakHeapBytes;
}

describe('applyHeapGrowth', () => {
  it('refuses what is not a whole number of percent, naming it', () => {
    expect(() => applyHeapGrowth(-1)).toThrow('heap growth must be a whole number of percent from 0 up, got -1');
    expect(() => applyHeapGrowth(2.5)).toThrow('got 2.5');
  });

  // The flag is V8's, set after the heap exists: this holds the Node in use to taking it then
  // (a Node whose V8 dropped or froze the flag fails here, not silently in production).
  it('keeps the heap of a process that turns its memory over well under what V8 lets it reach on its own', () => {
    const own = peakHeap('none');
    const off = peakHeap('0');
    const held = peakHeap('25');
    expect(held).toBeLessThan(own * 0.75);
    // 0 leaves V8 its own rule: the same run peaks where the untouched one does, within a tenth.
    expect(Math.abs(off - own)).toBeLessThan(own * 0.1);
  });
});
