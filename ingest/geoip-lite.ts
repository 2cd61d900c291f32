import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { boundedMemo } from '../platform';
import type { GeoDocument } from '../schemas';
import type { GeoDatabaseInfo, GeoLookup } from './enrich';
import { GeoipLiteFiles, type GeoipLiteAnswer } from './geoip-lite-files';

/** How many addresses' answers {@link openGeoipLite}'s lookup keeps; the oldest is forgotten first. */
export const GEO_ANSWERS_KEPT = 10_000;

function isCoordinate(value: number | null, limit: number): value is number {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= limit;
}

/** geoip-lite's version and the date of its data, for documents and `/metrics`. */
export interface GeoipLiteInfo extends GeoDatabaseInfo {
  name: 'geoip-lite';
  /** The installed package's version, e.g. `1.4.10`. */
  version: string;
}

/**
 * Reads which geoip-lite is installed and when its data was built. The package carries no date
 * of its own, but `data/city.checksum` names the MaxMind file its tables were made from
 * (`GeoLite2-City-CSV_20231115.zip`), and geoip-lite's `updatedb` script rewrites it when an
 * operator refreshes the data; the files' times are only the install time.
 */
export function geoipLiteInfo(): GeoipLiteInfo {
  const manifest = createRequire(__filename).resolve('geoip-lite/package.json');
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  let build: Date | undefined;
  try {
    const checksum = readFileSync(join(dirname(manifest), 'data', 'city.checksum'), 'utf8');
    const day = /_(\d{4})(\d{2})(\d{2})\.zip/.exec(checksum);
    if (day) build = new Date(`${day[1]}-${day[2]}-${day[3]}T00:00:00Z`);
  } catch {
    // A package without the checksum file: the build date is unknown, and said to be.
  }
  return { name: 'geoip-lite', version, ...(build && !Number.isNaN(build.getTime()) ? { build } : {}) };
}

/** The directory of the geoip-lite package's data files (`geoip-city.dat` and the rest). */
export function geoipLiteDataDirectory(): string {
  return join(dirname(createRequire(__filename).resolve('geoip-lite/package.json')), 'data');
}

/**
 * Opens geoip-lite's bundled database: country, region, city, location and accuracy radius.
 * geoip-lite's own module reads about 140 MB of tables into memory when it is required; the
 * tables are read from its files instead, a page at a time ({@link GeoipLiteFiles}: the same
 * answers, about 1 MB per file of the process's memory, the rest in the operating system's page
 * cache). Opened when the pipeline starts, never by importing a module.
 */
export function openGeoipLite(): Promise<GeoLookup> {
  const files = new GeoipLiteFiles(geoipLiteDataDirectory());
  const { name, build } = geoipLiteInfo();
  // One object shared by every answer: documents name it, and no lookup allocates it again.
  const database: GeoDatabaseInfo = { name, ...(build ? { build } : {}) };
  // Traffic repeats its clients: the last GEO_ANSWERS_KEPT addresses' answers are kept (this
  // database's only: a reload opens a new one). The document's objects are still built per event.
  const answerOf = boundedMemo<GeoipLiteAnswer | null>(GEO_ANSWERS_KEPT, (ip) => files.lookup(ip));
  return Promise.resolve((ip: string) => {
    const found = answerOf(ip);
    if (found === null) return undefined;
    const geo: GeoDocument = {};
    if (found.country) geo.country_iso_code = found.country;
    if (found.city) geo.city_name = found.city;
    if (found.region && found.country) geo.region_iso_code = `${found.country}-${found.region}`;
    if (found.timezone) geo.timezone = found.timezone;
    const [lat, lon] = found.ll;
    // geoip-lite reports [null, null] for some ranges, and [0, 0] when it knows no place: a
    // geo_point of either would be refused or wrong, so there is no location then.
    if (isCoordinate(lat, 90) && isCoordinate(lon, 180) && !(lat === 0 && lon === 0)) geo.location = { lat, lon };
    if (Object.keys(geo).length === 0) return undefined;
    return { geo, ...(found.area ? { accuracyKm: found.area } : {}), database };
  });
}
