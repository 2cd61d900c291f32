import type { Logger } from '../platform';
import type { GeoDatabase } from './enrich';
import { geoipLiteInfo, openGeoipLite } from './geoip-lite';
import { openMaxMind } from './maxmind';

/**
 * Opens the geo database enrichment uses: the MaxMind `.mmdb` an operator keeps current, watched
 * for changes, when `file` (VIGIL_GEOIP_DATABASE) is set; else the geoip-lite data bundled with
 * Vigil, which never changes while it runs. Called by the composition root at start, never at
 * import (geoip-lite's data files are opened and indexed, about 12 MB).
 * @throws GeoDatabaseError when the file can't be used
 */
export async function openGeoDatabase(file: string | undefined, options: { logger?: Logger; watch?: boolean; debounceMs?: number } = {}): Promise<GeoDatabase> {
  if (file !== undefined) return openMaxMind(file, options);
  const lookup = await openGeoipLite();
  const info = geoipLiteInfo();
  options.logger?.info({ database: info.name, version: info.version, build: info.build?.toISOString() }, 'geo database opened (bundled with geoip-lite; set VIGIL_GEOIP_DATABASE for a current one)');
  return {
    lookup,
    info: () => ({ ...info, origin: `${info.name}@${info.version}` }),
    stats: () => ({ reloaded: 0, refused: 0 }),
    close: () => undefined,
  };
}
