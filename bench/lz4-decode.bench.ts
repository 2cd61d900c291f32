/**
 * What reading an LZ4 record batch costs, by the size of the frame, on the event loop or in
 * libuv's thread pool.
 *
 * A producer that lingers a few milliseconds (the SDK's librdkafka client: 5 ms, LZ4 by default)
 * writes frames of a few events each when traffic is steady, and the ingest consumer decompresses
 * every one of them. This bench decompresses frames of 1 to 600 gateway events through the codec
 * Vigil registers with kafkajs (lz4-napi's `decompressFrame`, in the thread pool) as the same run's
 * baseline, and through lz4-napi's `decompressFrameSync` on the event loop. Per frame size it prints
 * the process's CPU per frame (every thread: the pool's work counts) and the wall time, each as
 * the ratio event loop / pool, medians over the rounds, cases alternating within each round.
 * docs/performance.md says why the codec still uses the pool.
 *
 *   npx tsx bench/lz4-decode.bench.ts [rounds=5]
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { registerCodecs } from '../platform';
import { positiveInteger } from './arguments';
import { gatewayEvents } from './gateway-events';
import { median } from './stats';

const ROUNDS = positiveInteger(process.argv[2], 5, 'rounds');
const SIZES = [1, 3, 15, 50, 150, 600] as const;
/** Decompressions per case and round: about 2 MB of events each, at least 500 frames. */
const framesFor = (events: number): number => Math.max(500, Math.round(3_000 / events));

/** Gateway events as JSON (an id and a time added, as the SDK adds them), concatenated as in a record batch. */
function frameOf(count: number): { raw: Buffer; frame: Buffer } {
  const at = Date.parse('2026-12-05T12:00:00Z');
  const raw = Buffer.from(
    gatewayEvents(count, { varied: true })
      .map(({ family, input }, n) => JSON.stringify({ id: randomUUID(), time: new Date(at + n * 37).toISOString(), family, schemaVersion: 1, ...input }))
      .join(''),
  );
  return { raw, frame: compressFrameSync(raw) };
}

async function timed(frames: number, decode: () => Promise<Buffer>): Promise<{ cpu: number; wall: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let n = 0; n < frames; n++) await decode();
  const used = process.cpuUsage(cpu);
  return { cpu: (used.user + used.system) / frames, wall: ((performance.now() - started) * 1000) / frames };
}

async function main(): Promise<void> {
  registerCodecs();
  const codec = (CompressionCodecs[CompressionTypes.LZ4] as () => { decompress(buffer: Buffer): Promise<Buffer> })();
  console.log(`LZ4 decode per frame: on the event loop (decompressFrameSync) / Vigil's codec, in the thread pool (the baseline), same run, ${ROUNDS} rounds, medians`);
  console.log('');
  console.log('events  raw B  frame B  pool CPU µs  event loop CPU µs  CPU ratio  wall ratio');
  for (const events of SIZES) {
    const { raw, frame } = frameOf(events);
    // Both give the very bytes produced.
    const onLoop = (): Promise<Buffer> => Promise.resolve(decompressFrameSync(frame));
    if (!(await codec.decompress(frame)).equals(raw) || !(await onLoop()).equals(raw)) throw new Error(`a frame of ${events} events did not decode to its bytes`);
    const frames = framesFor(events);
    const pool: { cpu: number; wall: number }[] = [];
    const loop: { cpu: number; wall: number }[] = [];
    await timed(100, () => codec.decompress(frame));
    await timed(100, onLoop);
    for (let round = 0; round < ROUNDS; round++) {
      const first = round % 2 === 0;
      if (first) pool.push(await timed(frames, () => codec.decompress(frame)));
      loop.push(await timed(frames, onLoop));
      if (!first) pool.push(await timed(frames, () => codec.decompress(frame)));
    }
    const cpuRatio = median(loop.map(({ cpu }, round) => cpu / (pool[round]?.cpu ?? NaN)));
    const wallRatio = median(loop.map(({ wall }, round) => wall / (pool[round]?.wall ?? NaN)));
    console.log(
      `${String(events).padStart(6)}  ${String(raw.length).padStart(6)}  ${String(frame.length).padStart(7)}  ${median(pool.map(({ cpu }) => cpu)).toFixed(1).padStart(11)}  ${median(loop.map(({ cpu }) => cpu)).toFixed(1).padStart(17)}  ${cpuRatio.toFixed(2).padStart(9)}  ${wallRatio.toFixed(2).padStart(10)}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
