/**
 * geoip-lite lookups: its tables read from the files a page at a time (GeoipLiteFiles, what
 * Vigil uses) against geoip-lite's own module with every table in memory (the baseline, same
 * process, same addresses). Prints CPU µs per lookup of each and the ratio, and the memory each
 * holds (arrayBuffers after opening).
 *
 *   npx tsx bench/geoip-lite-files.bench.ts [addresses=50000] [distinct=50000]
 *
 * `distinct` below `addresses` repeats addresses, as traffic repeats its clients.
 */
import { GeoipLiteFiles, geoipLiteDataDirectory } from '../ingest';
import { positiveInteger } from './arguments';
import { seededRandom } from '../scripts/simulated-traffic';

const ADDRESSES = positiveInteger(process.argv[2], 50_000, 'addresses');
const DISTINCT = positiveInteger(process.argv[3], 50_000, 'distinct');

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

async function main(): Promise<void> {
  const random = seededRandom(12345);
  const next = (): number => Math.floor(random() * 4_294_967_296);
  const distinct = Array.from({ length: DISTINCT }, () => {
    const value = next();
    return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
  });
  const addresses = Array.from({ length: ADDRESSES }, (_unused, index) => distinct[index % DISTINCT] ?? '');
  const before = process.memoryUsage().arrayBuffers;
  const files = new GeoipLiteFiles(geoipLiteDataDirectory());
  const afterFiles = process.memoryUsage().arrayBuffers;
  const { default: geoip } = await import('geoip-lite');
  const afterModule = process.memoryUsage().arrayBuffers;
  for (const address of addresses.slice(0, 2_000)) {
    geoip.lookup(address);
    files.lookup(address);
  }
  console.log(`${ADDRESSES} lookups of ${DISTINCT} distinct IPv4 addresses; memory held: files ${((afterFiles - before) / 1048576).toFixed(1)} MB (plus the blocks it keeps, at most 3 MiB), geoip-lite ${((afterModule - afterFiles) / 1048576).toFixed(1)} MB`);
  for (let round = 1; round <= 3; round++) {
    let started = cpuMicros();
    for (const address of addresses) geoip.lookup(address);
    const baseline = (cpuMicros() - started) / ADDRESSES;
    started = cpuMicros();
    for (const address of addresses) files.lookup(address);
    const ours = (cpuMicros() - started) / ADDRESSES;
    console.log(`round ${round}: geoip-lite in memory ${baseline.toFixed(2)} µs/lookup, from the files ${ours.toFixed(2)} µs/lookup: ${(ours / baseline).toFixed(2)}× (+${(ours - baseline).toFixed(2)} µs)`);
  }
  files.close();
}

void main();
