import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { GeoDocument } from '../schemas';
import type { GeoDatabaseInfo, GeoLookup } from './enrich';

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

/**
 * Opens geoip-lite's bundled database: country, region, city, location and accuracy radius.
 * geoip-lite reads about 140 MB of tables into memory when it is first required, so it is
 * loaded here, when the pipeline starts, and never by importing a module (the SDK, replay and
 * unit tests don't pay for it).
 */
export async function openGeoipLite(): Promise<GeoLookup> {
  const { default: geoip } = await import('geoip-lite');
  const { name, build } = geoipLiteInfo();
  // One object shared by every answer: documents name it, and no lookup allocates it again.
  const database: GeoDatabaseInfo = { name, ...(build ? { build } : {}) };
  return (ip) => {
    const found = geoip.lookup(ip);
    if (found === null) return undefined;
    const geo: GeoDocument = {};
    if (found.country) geo.country_iso_code = found.country;
    if (found.city) geo.city_name = found.city;
    if (found.region && found.country) geo.region_iso_code = `${found.country}-${found.region}`;
    if (found.timezone) geo.timezone = found.timezone;
    const [lat, lon] = found.ll as [number | null, number | null];
    // geoip-lite reports [null, null] for some ranges, and [0, 0] when it knows no place: a
    // geo_point of either would be refused or wrong, so there is no location then.
    if (isCoordinate(lat, 90) && isCoordinate(lon, 180) && !(lat === 0 && lon === 0)) geo.location = { lat, lon };
    if (Object.keys(geo).length === 0) return undefined;
    return { geo, ...(found.area ? { accuracyKm: found.area } : {}), database };
  };
}
