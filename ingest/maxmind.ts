import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Reader, type CityResponse } from 'maxmind';
import { VigilError, errorMessage, type Logger } from '../platform';
import { unmappedIpv4, type GeoDocument } from '../schemas';
import type { GeoDatabase, GeoDatabaseInfo, GeoReloadStats, GeoResult } from './enrich';

/** The variable that names the database file: every error about the file names it too. */
export const GEOIP_DATABASE_VARIABLE = 'VIGIL_GEOIP_DATABASE';

/** A geo database file that can't be used: missing, unreadable, not a MaxMind DB, or not a City/Country one. */
export class GeoDatabaseError extends VigilError {
  readonly file: string;

  constructor(file: string, problem: string, cause?: unknown) {
    super(`${GEOIP_DATABASE_VARIABLE}=${file}: ${problem}`, { code: 'geo_database_invalid', retriable: false, cause });
    this.name = 'GeoDatabaseError';
    this.file = file;
  }
}

/** A loaded MaxMind database: its reader and what documents say about it. */
export interface MaxMindDatabase {
  readonly reader: Reader<CityResponse>;
  readonly info: GeoDatabaseInfo;
}

/** Database types whose records have the City/Country layout `mapCityRecord` reads. */
const LOCATING_TYPE = /(City|Country|Enterprise)/;
/** Decoded records kept per loaded file: the busiest networks repeat, and decoding allocates. */
const CACHE_RECORDS = 10_000;

function isCoordinate(value: unknown, limit: number): value is number {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= limit;
}

/** A bounded cache for the reader's decoder; cleared whole when full, which is cheap and enough. */
function boundedCache(max: number): { get(key: string | number): unknown; set(key: string | number, value: unknown): void } {
  const entries = new Map<string | number, unknown>();
  return {
    get: (key) => entries.get(key),
    set(key, value) {
      if (entries.size >= max) entries.clear();
      entries.set(key, value);
    },
  };
}

/**
 * Reads and checks a MaxMind DB file. Checked beyond what the reader does itself (it reads only
 * the metadata when it opens a file): the format version, the tree's size against the file's,
 * the database type, and a lookup of each address family, so a truncated or foreign file is
 * refused here rather than by the first event that walks into its broken part.
 * @throws GeoDatabaseError naming the variable, the file and what is wrong with it
 */
export async function readMaxMindDatabase(file: string): Promise<MaxMindDatabase> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new GeoDatabaseError(file, `cannot read the file (${errorMessage(error)})`, error);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new GeoDatabaseError(file, 'is gzip-compressed: MaxMind ships GeoLite2-City as a .tar.gz; unpack it and point at the .mmdb inside');
  }
  let reader: Reader<CityResponse>;
  try {
    reader = new Reader<CityResponse>(bytes, { cache: boundedCache(CACHE_RECORDS) });
  } catch (error) {
    throw new GeoDatabaseError(file, `is not a MaxMind DB file (${errorMessage(error)})`, error);
  }
  const { metadata } = reader;
  const problem =
    typeof metadata.databaseType !== 'string' || metadata.binaryFormatMajorVersion !== 2
      ? 'is not a MaxMind DB file (no readable metadata of format version 2)'
      : !(metadata.nodeCount > 0) || metadata.searchTreeSize + 16 > bytes.length
        ? `is truncated or corrupt: its search tree needs ${metadata.searchTreeSize} bytes, the file has ${bytes.length}`
        : !LOCATING_TYPE.test(metadata.databaseType)
          ? `is a ${metadata.databaseType} database, which locates nothing; use a City database (GeoLite2-City, GeoIP2-City)`
          : undefined;
  if (problem !== undefined) throw new GeoDatabaseError(file, problem);
  try {
    reader.get('1.1.1.1');
    if (metadata.ipVersion === 6) reader.get('2001:4860:4860::8888');
  } catch (error) {
    throw new GeoDatabaseError(file, `is corrupt: a lookup failed (${errorMessage(error)})`, error);
  }
  const build = metadata.buildEpoch;
  return { reader, info: { name: metadata.databaseType, ...(Number.isNaN(build.getTime()) || build.getTime() === 0 ? {} : { build }) } };
}

/**
 * Maps a MaxMind City (or Country) record to what enrichment indexes, in the shape geoip-lite's
 * answers have. A record without a city is country-only: MaxMind then gives the country's
 * default point with a radius of hundreds of kilometres, kept only with that radius, since a
 * country's centre without one would pass for a precise place; region and city stay unset.
 */
export function mapCityRecord(record: CityResponse, database?: GeoDatabaseInfo): GeoResult | undefined {
  const geo: GeoDocument = {};
  const country = record.country?.iso_code;
  if (country) geo.country_iso_code = country;
  const { location } = record;
  if (location?.time_zone) geo.timezone = location.time_zone;
  // The reader's types say every city has an English name; the data is what a file holds.
  const names = record.city?.names;
  const city = names ? ((names.en as string | undefined) ?? Object.values(names).find((name): name is string => typeof name === 'string' && name.length > 0)) : undefined;
  const radius = location?.accuracy_radius;
  const accuracyKm = typeof radius === 'number' && Number.isFinite(radius) && radius > 0 ? radius : undefined;
  const point = location && isCoordinate(location.latitude, 90) && isCoordinate(location.longitude, 180) ? { lat: location.latitude, lon: location.longitude } : undefined;
  if (city) {
    geo.city_name = city;
    const subdivision = record.subdivisions?.[0]?.iso_code;
    if (subdivision && country) geo.region_iso_code = `${country}-${subdivision}`;
    if (point) geo.location = point;
  } else if (point && accuracyKm !== undefined) {
    geo.location = point;
  }
  if (Object.keys(geo).length === 0) return undefined;
  return { geo, ...(geo.location && accuracyKm !== undefined ? { accuracyKm } : {}), ...(database ? { database } : {}) };
}

/** Options of {@link openMaxMind}. */
export interface MaxMindOptions {
  logger?: Logger;
  /** Reload when the file changes. @defaultValue true */
  watch?: boolean;
  /** How long the file must be quiet before it is read again. @defaultValue 1000 */
  debounceMs?: number;
}

/**
 * Opens a MaxMind GeoLite2/GeoIP2 City `.mmdb` and, unless told not to, reloads it when it
 * changes. The directory is watched rather than the file: `geoipupdate` and most deploys replace
 * the file by renaming a new one over it, after which a watch on the old file sees nothing more.
 * A reload reads and checks the whole new file first and then swaps it in with one assignment,
 * so a lookup sees the old database or the new one, never a mix; a file that fails the checks
 * (half written, wrong type, removed) is logged and the database in force stays.
 * @throws GeoDatabaseError when the file can't be used at start
 */
export async function openMaxMind(file: string, options: MaxMindOptions = {}): Promise<GeoDatabase> {
  let current = await readMaxMindDatabase(file);
  const stats: GeoReloadStats = { reloaded: 0, refused: 0 };
  const log = options.logger;
  log?.info({ file, database: current.info.name, build: current.info.build?.toISOString() }, 'geo database opened');

  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  // Reloads run one after another: a change while one is reading waits for it and reads again.
  let reloading: Promise<void> = Promise.resolve();
  const reload = async (): Promise<void> => {
    try {
      const next = await readMaxMindDatabase(file);
      if (closed) return;
      current = next;
      stats.reloaded += 1;
      log?.info({ file, database: next.info.name, build: next.info.build?.toISOString() }, 'geo database reloaded');
    } catch (error) {
      if (closed) return;
      stats.refused += 1;
      log?.error({ err: error, file, database: current.info.name, build: current.info.build?.toISOString() }, 'geo database file refused; the database in force stays');
    }
  };
  if (options.watch ?? true) {
    const name = basename(file);
    watcher = watch(dirname(file), (_event, changed) => {
      // Some platforms don't say which file changed; then any change in the folder counts.
      if (changed !== null && changed !== name) return;
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        reloading = reloading.then(reload);
      }, options.debounceMs ?? 1000);
    });
    watcher.on('error', (error) => log?.error({ err: error, file }, 'cannot watch the geo database file any more; the database in force stays until a restart'));
  }

  return {
    lookup(ip) {
      const { reader, info } = current;
      try {
        const record = reader.get(unmappedIpv4(ip));
        return record === null ? undefined : mapCityRecord(record, info);
      } catch {
        // The checks at load walked the tree; an address the reader can't parse is unlocated,
        // never a thrown error that would stall the partition.
        return undefined;
      }
    },
    info: () => ({ ...current.info, origin: file }),
    stats: () => ({ ...stats }),
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      watcher?.close();
      watcher = undefined;
    },
  };
}
