import { identityOf, type Correlated, type DetectionInput, type InputGeo } from '../detectors';
import type { VigilEvent } from '../schemas';
import { geoPrecision, type Enrichment } from './enrich';

/** What the detectors see of an enriched event (and what correlation found, if anything). */
export function toDetectionInput(event: VigilEvent, enrichment: Enrichment, correlated?: Correlated): DetectionInput {
  // Built field by field: this runs for every event, and optional fields stay absent, not undefined.
  const input: DetectionInput = { event };
  if (enrichment.ipScope) input.ipScope = enrichment.ipScope;
  const geo = enrichment.geo;
  if (geo) {
    const seen: InputGeo = {};
    if (geo.location) {
      seen.lat = geo.location.lat;
      seen.lon = geo.location.lon;
    }
    if (enrichment.accuracyKm !== undefined) seen.accuracyKm = enrichment.accuracyKm;
    if (geo.country_iso_code) seen.country = geo.country_iso_code;
    if (geo.city_name) seen.city = geo.city_name;
    const precision = geoPrecision(enrichment);
    if (precision !== undefined) seen.precision = precision;
    input.geo = seen;
  }
  if (correlated) input.correlated = correlated;
  input.identity = identityOf(event, correlated);
  return input;
}
