import type { GeoDocument } from '../schemas';
import type { GeoLookup } from './enrich';

function isCoordinate(value: number | null, limit: number): value is number {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= limit;
}

/**
 * Opens geoip-lite's bundled database: country, region, city, location and accuracy radius.
 * geoip-lite reads about 140 MB of tables into memory when it is first required, so it is
 * loaded here, when the pipeline starts, and never by importing a module (the SDK, replay and
 * unit tests don't pay for it).
 */
export async function openGeoipLite(): Promise<GeoLookup> {
  const { default: geoip } = await import('geoip-lite');
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
    return { geo, ...(found.area ? { accuracyKm: found.area } : {}) };
  };
}
