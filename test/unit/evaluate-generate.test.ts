import { ATTACK_CASES, BENIGN_CASES, distanceKm, generateTraffic, type GeoAnswer, type Locate } from '../../scripts/evaluate/generate';

/**
 * A made-up geo database: the first octet picks a region, the next two a city in it. Octets 1-99
 * are cities in patches over the globe, 100-119 are US addresses known only by country (the country's default point), the
 * rest are not located.
 */
const locate: Locate = (ip) => {
  const [first = 0, second = 0, third = 0] = ip.split('.').map(Number);
  if (first < 100) return { country: first % 2 === 0 ? 'US' : 'DE', city: `city-${first}-${second}-${third}`, lat: -60 + ((first * 7) % 120) + (second / 256) * 8, lon: -170 + ((first * 37) % 340) + (third / 256) * 8 } satisfies GeoAnswer;
  if (first < 120) return { country: 'US', city: '', lat: 37.751, lon: -97.822 };
  return undefined;
};

const END = Date.parse('2026-03-02T12:00:30Z');
const small = (seed: number) => generateTraffic({ seed, end: END, locate, users: 60, requestsPerUser: 10, floodSources: 120, volume: 0.2 });

describe('generateTraffic', () => {
  it('labels every attack and benign case once, within the hour that ends on a minute boundary', () => {
    const traffic = small(7);
    expect(traffic.end).toBe(Date.parse('2026-03-02T12:00:00Z'));
    expect(traffic.start).toBe(traffic.end - 3_600_000);
    expect(traffic.cases.map((item) => item.id)).toEqual([...ATTACK_CASES, ...BENIGN_CASES]);
    for (const item of traffic.cases) {
      expect(item.keys.length).toBeGreaterThan(0);
      expect(item.events).toBeGreaterThan(0);
      expect(Date.parse(item.start)).toBeGreaterThanOrEqual(traffic.start);
      expect(Date.parse(item.start)).toBeLessThanOrEqual(Date.parse(item.end));
    }
    expect(traffic.cases.filter((item) => item.kind === 'attack')).toHaveLength(ATTACK_CASES.length);
  });

  it('produces events in event-time order, inside the hour, each labelled with its case', () => {
    const traffic = small(11);
    const times = traffic.events.map((event) => event.at);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(traffic.start);
    expect(Math.max(...times)).toBeLessThan(traffic.end);
    const labelled = new Set(traffic.events.map((event) => event.input.labels?.case));
    for (const item of traffic.cases) expect(labelled.has(item.id)).toBe(true);
    expect(labelled.has('background')).toBe(true);
    for (const event of traffic.events.slice(0, 200)) expect(event.input.time).toBe(new Date(event.at).toISOString());
  });

  it('is reproducible by seed and varies with it', () => {
    const a = small(5);
    const b = small(5);
    const c = small(6);
    expect(b.cases).toEqual(a.cases);
    expect(b.events.length).toBe(a.events.length);
    expect(c.cases.map((item) => item.keys)).not.toEqual(a.cases.map((item) => item.keys));
    expect(c.cases.map((item) => item.start)).not.toEqual(a.cases.map((item) => item.start));
  });

  it('keeps the flood on many sources, each under the per-IP rate, with invented usernames and failed authentication', () => {
    const traffic = small(3);
    const flood = traffic.events.filter((event) => event.input.labels?.case === 'distributed-flood');
    const perIp = new Map<string, number>();
    const perMinute = new Map<string, number>();
    for (const event of flood) {
      if (event.family !== 'policy') continue;
      expect(event.input.policy).toMatchObject({ kind: 'authn', outcome: 'fail' });
      expect(event.input.actor?.userId).toBeDefined();
      const ip = event.input.client?.ip ?? '';
      const minute = `${ip} ${Math.floor(event.at / 60_000)}`;
      perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
      perMinute.set(minute, (perMinute.get(minute) ?? 0) + 1);
    }
    expect(perIp.size).toBe(120);
    expect(Math.max(...perMinute.values())).toBeLessThan(5);
    const item = traffic.cases.find((entry) => entry.id === 'distributed-flood');
    expect(item?.keys).toEqual([['identity-v2', '/v2/sessions']]);
    expect(Date.parse(item?.start ?? '') % 60_000).toBe(0);
  });

  it('places the coarse-geoip user in a city of the country whose default point the coarse address gets', () => {
    const traffic = small(9);
    const item = traffic.cases.find((entry) => entry.id === 'coarse-geoip');
    const coarseIp = item?.entities[0] ?? '';
    expect(locate(coarseIp)?.city).toBe('');
    const user = item?.keys[0]?.[0];
    const homes = traffic.events.filter((event) => event.family === 'device' && event.input.actor?.userId === user).map((event) => locate(event.input.client?.ip ?? ''));
    const home = homes.find((geo) => geo !== undefined && geo.city !== '');
    expect(home?.country).toBe(locate(coarseIp)?.country);
    expect(distanceKm(home as GeoAnswer, locate(coarseIp) as GeoAnswer)).toBeGreaterThan(1000);
  });

  it('makes the plausible trip reachable and the impossible one not', () => {
    const traffic = small(13);
    const speedOf = (id: string): number => {
      const item = traffic.cases.find((entry) => entry.id === id);
      const user = item?.keys[0]?.[0];
      const logins = traffic.events.filter((event) => event.family === 'device' && event.input.actor?.userId === user && event.input.labels?.case === id);
      const away = logins.findIndex((event) => event.input.client?.ip === item?.entities[0]);
      const before = logins[away - 1];
      const after = logins[away];
      if (before === undefined || after === undefined) throw new Error(`no trip in ${id}`);
      const km = distanceKm(locate(before.input.client?.ip ?? '') as GeoAnswer, locate(after.input.client?.ip ?? '') as GeoAnswer);
      return km / ((after.at - before.at) / 3_600_000);
    };
    expect(speedOf('plausible-travel')).toBeLessThan(900);
    expect(speedOf('impossible-travel')).toBeGreaterThan(900);
  });

  it('refuses a seed that is not an integer, and says so when the database has no address of a kind', () => {
    expect(() => generateTraffic({ seed: 1.5, end: END, locate })).toThrow('the seed must be an integer, not 1.5');
    expect(() => generateTraffic({ seed: 1, end: END, locate: () => undefined, users: 60 })).toThrow(/no address found for a background user/);
    expect(() => generateTraffic({ seed: 1, end: END, locate, users: 10 })).toThrow('users must be an integer of at least 50, not 10');
  });
});
