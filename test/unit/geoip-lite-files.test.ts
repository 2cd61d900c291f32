import geoip from 'geoip-lite';
import { GeoipLiteFiles, geoipLiteDataDirectory } from '../../ingest';
import { seededRandom } from '../../scripts/simulated-traffic';

/** Unsigned 32-bit numbers from a seed (the demo's generator, scaled), so a failure names addresses that come back. */
function numbers(seed: number): () => number {
  const random = seededRandom(seed);
  return () => Math.floor(random() * 4_294_967_296);
}

function ipv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function ipv6(next: () => number): string {
  // Global unicast (2000::/3) with a random tail, sometimes written with a `::`.
  const groups = Array.from({ length: 8 }, (_unused, index) => (index === 0 ? 0x2000 + (next() % 0x2000) : next() % 0x10000).toString(16));
  if (next() % 3 === 0) return `${groups.slice(0, 3).join(':')}::${groups[7]}`;
  return groups.join(':');
}

/** The fields of geoip-lite's answer that enrichment reads. */
function reduced(answer: { country: string; region: string; city: string; timezone: string; ll: unknown; area?: number } | null): unknown {
  if (answer === null) return null;
  return { country: answer.country, region: answer.region, city: answer.city, timezone: answer.timezone, ll: answer.ll, area: answer.area };
}

describe('GeoipLiteFiles (geoip-lite tables read from the files)', () => {
  const files = new GeoipLiteFiles(geoipLiteDataDirectory());
  afterAll(() => files.close());

  it('answers as geoip-lite does, address by address: random IPv4 and IPv6, range edges, mapped, private, invalid', () => {
    const next = numbers(20261202);
    const addresses: string[] = [];
    for (let n = 0; n < 20_000; n++) addresses.push(ipv4(next()));
    for (let n = 0; n < 5_000; n++) addresses.push(ipv6(next));
    for (let n = 0; n < 2_000; n++) {
      // The ends of the ranges geoip-lite knows, and the addresses just outside them.
      const found = geoip.lookup(ipv4(next()));
      if (found === null) continue;
      const [floor, ceil] = found.range;
      for (const value of [floor - 1, floor, ceil, ceil + 1]) if (value >= 0 && value <= 0xffffffff) addresses.push(ipv4(value));
    }
    addresses.push('0.0.0.0', '255.255.255.255', '10.1.2.3', '172.16.0.1', '192.168.1.1', '127.0.0.1', '81.2.69.142', '8.8.8.8');
    addresses.push('::ffff:8.8.8.8', '0:0:0:0:0:FFFF:81.2.69.142', '2001:4860:4860::8888', '2a00:1450:4001:81b::200e', '::', '::1', 'fe80::1', 'ffff::1');
    addresses.push('', 'not an ip', '999.1.1.1', '1.2.3');
    const wrong: string[] = [];
    let located = 0;
    for (const address of addresses) {
      const expected = reduced(geoip.lookup(address));
      if (expected !== null) located++;
      const actual = reduced(files.lookup(address));
      if (JSON.stringify(actual) !== JSON.stringify(expected)) wrong.push(`${address}: ${JSON.stringify(actual)} instead of ${JSON.stringify(expected)}`);
    }
    expect(wrong.slice(0, 5)).toStrictEqual([]);
    // The comparison means something only if most addresses were located.
    expect(located).toBeGreaterThan(addresses.length / 2);
  });

  it('reads a range of IPv4 addresses, far more blocks than it keeps, and answers the same on a second pass', () => {
    const small = new GeoipLiteFiles(geoipLiteDataDirectory(), 2);
    try {
      const next = numbers(7);
      const addresses = Array.from({ length: 2_000 }, () => ipv4(next()));
      const first = addresses.map((address) => JSON.stringify(small.lookup(address)));
      const second = addresses.map((address) => JSON.stringify(small.lookup(address)));
      expect(second).toStrictEqual(first);
      expect(first).toStrictEqual(addresses.map((address) => JSON.stringify(files.lookup(address))));
    } finally {
      small.close();
    }
  });

  it('refuses a directory without the city tables', () => {
    expect(() => new GeoipLiteFiles('/nonexistent-geoip-data')).toThrow(/ENOENT/);
  });
});
