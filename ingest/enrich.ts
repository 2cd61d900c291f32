import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { boundedMemo } from '../platform';
import { unmappedIpv4, type VigilEvent, type GeoDocument } from '../schemas';

/** Whether an address can be located: private and reserved ranges never are. */
export type IpScope = 'public' | 'private' | 'reserved';

const privateRanges = new BlockList();
for (const [network, prefix] of [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10], // carrier-grade NAT
] as const) privateRanges.addSubnet(network, prefix, 'ipv4');
privateRanges.addSubnet('fc00::', 7, 'ipv6'); // unique local

const reservedRanges = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) reservedRanges.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const) reservedRanges.addSubnet(network, prefix, 'ipv6');

/**
 * Classifies an IP address (v4, v6, or v4-mapped v6) without the cache: what {@link ipScope}
 * computes once per address. `BlockList.check` builds a `SocketAddress` per call (3 % of
 * `vigil run`'s busy time in issue 12's profile).
 */
export function ipScopeUncached(ip: string): IpScope {
  const address = unmappedIpv4(ip);
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return 'reserved';
  if (privateRanges.check(address, family)) return 'private';
  if (reservedRanges.check(address, family)) return 'reserved';
  return 'public';
}

/** How many addresses {@link ipScope} remembers; the oldest is forgotten first. */
const IP_SCOPES_KEPT = 10_000;

/**
 * Classifies an IP address (v4, v6, or v4-mapped v6). The answer depends on the text alone, and
 * traffic repeats its clients, so answers are kept for the last {@link IP_SCOPES_KEPT} addresses
 * seen (a few hundred kilobytes at most).
 */
export const ipScope: (ip: string) => IpScope = boundedMemo(IP_SCOPES_KEPT, ipScopeUncached);

/** Which geo database answered: what each document's `vigil.geo.database*` fields name. */
export interface GeoDatabaseInfo {
  /** MaxMind's `database_type` (`GeoLite2-City`, `GeoIP2-City`), or `geoip-lite`. */
  name: string;
  /** When its data was built (MaxMind's `build_epoch`); absent when the database doesn't say. */
  build?: Date;
}

/** A located address; `accuracyKm` is the radius the database vouches for. */
export interface GeoResult {
  geo: GeoDocument;
  accuracyKm?: number;
  /** The database that answered; one object per loaded database, shared by its answers. */
  database?: GeoDatabaseInfo;
}

/** Looks an address up; injectable so tests and other databases can stand in. */
export type GeoLookup = (ip: string) => GeoResult | undefined;

/** How many times the file was read again after a change, and how many of those were refused. */
export interface GeoReloadStats {
  reloaded: number;
  refused: number;
}

/** A geo database enrichment uses, possibly swapped for a newer one while Vigil runs. */
export interface GeoDatabase {
  /** Looks an address up in the database in force now. */
  readonly lookup: GeoLookup;
  /** The database in force now, and where it came from (a file, or the bundled package). */
  info(): GeoDatabaseInfo & { origin: string; version?: string };
  stats(): GeoReloadStats;
  /** Stops watching the file. Idempotent. */
  close(): void;
}

/** What enrichment adds to an event. */
export interface Enrichment {
  ip?: string;
  ipScope?: IpScope;
  geo?: GeoDocument;
  geoSource: 'geoip' | 'producer' | 'none';
  accuracyKm?: number;
  /** The database that gave `geo`, when `geoSource` is `geoip`. */
  geoDatabase?: GeoDatabaseInfo;
}

/**
 * Where an event came from: the producer's own location when it sent one (a phone's GPS beats
 * an IP database), else a lookup of the client IP in the geo database the composition root
 * opened; private and reserved addresses are marked and never looked up.
 */
export function enrich(event: VigilEvent, lookup: GeoLookup): Enrichment {
  const ip = event.client.ip ?? (event.family === 'device' ? event.device.ip : undefined);
  // Members are assigned in the order the former spreads wrote them (ip, ipScope, geo, geoSource,
  // accuracyKm, geoDatabase): one object per event instead of a base and its copies.
  const enrichment = {} as Enrichment;
  if (ip !== undefined) {
    enrichment.ip = ip;
    enrichment.ipScope = ipScope(ip);
  }
  if (event.family === 'device' && event.device.geo !== undefined) {
    const given = event.device.geo;
    const geo: GeoDocument = { location: { lat: given.lat, lon: given.lon } };
    if (given.country) geo.country_iso_code = given.country;
    if (given.city !== undefined) geo.city_name = given.city;
    enrichment.geo = geo;
    enrichment.geoSource = 'producer';
    if (given.accuracyKm !== undefined) enrichment.accuracyKm = given.accuracyKm;
    return enrichment;
  }
  const found = ip === undefined || enrichment.ipScope !== 'public' ? undefined : lookup(ip);
  if (found === undefined) {
    enrichment.geoSource = 'none';
    return enrichment;
  }
  enrichment.geo = found.geo;
  enrichment.geoSource = 'geoip';
  if (found.accuracyKm !== undefined) enrichment.accuracyKm = found.accuracyKm;
  if (found.database !== undefined) enrichment.geoDatabase = found.database;
  return enrichment;
}

/**
 * Points geo databases give for an address they know only by its country: the country's default
 * point, with no city (read from the geoip-lite data, built from MaxMind's GeoLite2, where each is
 * the answer for thousands of ranges). US: 37.751,-97.822, in Kansas. A location here is coarse
 * even if a city came with it.
 */
export const COUNTRY_DEFAULT_POINTS: readonly { country: string; lat: number; lon: number }[] = [
  { country: 'US', lat: 37.751, lon: -97.822 },
  { country: 'CN', lat: 34.7732, lon: 113.722 },
  { country: 'JP', lat: 35.6897, lon: 139.6895 },
  { country: 'GB', lat: 51.4964, lon: -0.1224 },
  { country: 'DE', lat: 51.2993, lon: 9.491 },
  { country: 'NL', lat: 52.3824, lon: 4.8995 },
  { country: 'KR', lat: 37.5112, lon: 126.9741 },
  { country: 'CH', lat: 47.1449, lon: 8.1551 },
  { country: 'CA', lat: 43.6319, lon: -79.3716 },
  { country: 'FR', lat: 48.8582, lon: 2.3387 },
  { country: 'BR', lat: -22.8305, lon: -43.2192 },
  { country: 'RU', lat: 55.7386, lon: 37.6068 },
  { country: 'IT', lat: 43.1479, lon: 12.1097 },
  { country: 'AU', lat: -33.494, lon: 143.2104 },
  { country: 'MX', lat: 19.4342, lon: -99.0559 },
  { country: 'IN', lat: 21.9974, lon: 79.0011 },
  { country: 'ZA', lat: -28.9984, lon: 23.9888 },
];

const DEFAULT_POINTS = new Set(COUNTRY_DEFAULT_POINTS.map(({ lat, lon }) => `${lat.toFixed(4)},${lon.toFixed(4)}`));

/**
 * How precise an enrichment's point is (InputGeo `precision`): the producer's own position is a
 * place (`city`); a database answer is one only with a city and away from a country's default
 * point, else it is `country`: where the country is, not where anyone was. Undefined without a point.
 */
export function geoPrecision(enrichment: Enrichment): 'city' | 'country' | undefined {
  const location = enrichment.geo?.location;
  if (location === undefined) return undefined;
  if (enrichment.geoSource === 'producer') return 'city';
  if (enrichment.geo?.city_name === undefined || enrichment.geo.city_name === '') return 'country';
  return DEFAULT_POINTS.has(`${location.lat.toFixed(4)},${location.lon.toFixed(4)}`) ? 'country' : 'city';
}
