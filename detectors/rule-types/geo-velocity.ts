import { isIPv4 } from 'node:net';
import type { BlockList } from 'node:net';
import type { DetectionInput } from '../input';
import { inputIdentity, inputIp, ipv6Groups } from '../input';
import { mayWriteHistory } from '../trust';
import { keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import { inCidrList } from '../filter';
import { stateKey } from '../state';
import { eventTime, isoTime, none, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { unmappedIpv4 } from '../../schemas';
import { attributed, base, grouped } from '../rule-schema';
import { cidrRangesSchema } from '../filter';
import { durationSchema } from '../duration';
import { cidrList } from '../filter';
import type { StatefulRuleType } from '../rule-type';

export const geoVelocityRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  ...attributed,
  type: z.literal('geo_velocity'),
  /** Faster than this between two located events is impossible travel. @defaultValue 900 (a jet) */
  maxSpeedKmh: z.number().positive().default(900),
  /** Nearer than this (after subtracting both accuracies) never fires. @defaultValue 300 */
  minDistanceKm: z.number().min(0).default(300),
  /** How long locations are kept, and so how far apart in event time two can be compared. @defaultValue 24h */
  horizon: durationSchema.default(86_400_000),
  /** Addresses (VPN egress, corporate proxies) that never take part in a detection. */
  allowlistCidrs: cidrRangesSchema.default([]),
});

/** A geo_velocity rule, as validated. */
export type GeoVelocityRule = z.infer<typeof geoVelocityRuleSchema>;

/**
 * Located events kept per key (the newest in event time, within the horizon): enough for events
 * arriving minutes out of order to find their neighbours, bounded so a busy key costs little.
 */
export const MAX_LOCATIONS_PER_KEY = 128;

/** A located event, as kept in Redis and shown as evidence. */
export interface Location {
  lat: number;
  lon: number;
  accuracyKm?: number;
  country?: string;
  city?: string;
  ip?: string;
  time: string;
  eventId: string;
}

/** The located events of the key next to this one in event time (among those that arrived before it). */
export interface GeoState {
  previous?: Location;
  next?: Location;
}

/** What locationAdd-2.lua replies: `[previous JSON | null, next JSON | null]`. */
export function parseGeoState(reply: unknown): GeoState {
  const [previous, next] = Array.isArray(reply) ? (reply as unknown[]) : [];
  const state: GeoState = {};
  if (typeof previous === 'string') state.previous = JSON.parse(previous) as Location;
  if (typeof next === 'string') state.next = JSON.parse(next) as Location;
  return state;
}

const EARTH_RADIUS_KM = 6371;

/** Great-circle distance in km. */
export function haversineKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const radians = (degrees: number): number => (degrees * Math.PI) / 180;
  const dLat = radians(b.lat - a.lat);
  const dLon = radians(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(radians(a.lat)) * Math.cos(radians(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Same /24 (IPv4) or same /48 (IPv6): one network, whatever a geo database says. */
export function sameNetwork(a: string, b: string): boolean {
  const first = unmappedIpv4(a);
  const second = unmappedIpv4(b);
  if (isIPv4(first) && isIPv4(second)) return first.split('.').slice(0, 3).join('.') === second.split('.').slice(0, 3).join('.');
  const left = ipv6Groups(first);
  const right = ipv6Groups(second);
  return left !== undefined && right !== undefined && left.slice(0, 3).every((group, index) => group === right[index]);
}

/**
 * Where an event was, when it can take part: located at a place (not only in a country: a
 * country-only answer is the database's default point for the country, where nobody was), and not
 * from a private or reserved address. An input without `precision` (a caller that builds inputs
 * itself) counts as a place only when it names a city.
 */
export function locationOf(input: DetectionInput): Location | undefined {
  const { geo } = input;
  if (geo?.lat === undefined || geo.lon === undefined) return undefined;
  if ((geo.precision ?? (geo.city === undefined ? 'country' : 'city')) !== 'city') return undefined;
  if (input.ipScope !== undefined && input.ipScope !== 'public') return undefined;
  const ip = inputIp(input);
  // Optional fields are left out, not set to undefined: the location is stored as JSON.
  const location: Location = { lat: geo.lat, lon: geo.lon, time: isoTime(input.event.time), eventId: input.event.id };
  if (geo.accuracyKm !== undefined) location.accuracyKm = geo.accuracyKm;
  if (geo.country !== undefined) location.country = geo.country;
  if (geo.city !== undefined) location.city = geo.city;
  if (ip !== undefined) location.ip = ip;
  return location;
}

/** The locationAdd call for a located event. */
export function geoVelocityRequest(location: Location, rule: GeoVelocityRule, context: EvaluationContext & { prefix: string }): StateRequest {
  const time = eventTime(location.time);
  return {
    script: 'locationAdd',
    keys: [stateKey(context.prefix, rule.id, context.keyText, 'locations'), stateKey(context.prefix, rule.id, context.keyText, 'located')],
    args: [location.eventId, time, JSON.stringify(location), Math.min(context.now, time) - rule.horizon, rule.horizon, MAX_LOCATIONS_PER_KEY],
  };
}

/** The period a travel between two addresses is named by: one hour of the arrival's event time. */
export const TRAVEL_PERIOD_MS = 3_600_000;

const place = (location: Location): string =>
  [location.city, location.country].filter(Boolean).join(', ') || `${location.lat.toFixed(2)},${location.lon.toFixed(2)}`;

/**
 * One leg of travel, `from` before `to` in event time: a detection when its speed is impossible.
 * Distances shrink by both locations' accuracy radii first, so a coarse lookup can't fake a
 * flight; the same IP, the same /24, private ranges and allowlisted networks (VPN egress,
 * proxies) never fire. The detection's identity is the rule, the key, the address left, the
 * address reached (each event's IP, or the event itself when it has none) and the hour of event
 * time the arrival falls in: the travel between two addresses, whichever events of each place
 * are compared. A request's policy, invocation and device events at the arrival, read in any
 * order, and a backlog that compares the arrival with an older event of the place left, name the
 * same travel; a second trip between the same two addresses within that hour is the same one.
 */
export function evaluateTravel(from: Location, to: Location, rule: GeoVelocityRule, allowlist: BlockList, context: EvaluationContext): Evaluation {
  if (from.eventId === to.eventId) return none('same_event');
  if (from.ip !== undefined && to.ip !== undefined) {
    if (from.ip === to.ip) return none('same_ip');
    if (sameNetwork(from.ip, to.ip)) return none('same_network');
  }
  if (inCidrList(allowlist, from.ip) || inCidrList(allowlist, to.ip)) return none('allowlisted');
  const distanceKm = haversineKm(from, to);
  const certainKm = distanceKm - (from.accuracyKm ?? 0) - (to.accuracyKm ?? 0);
  if (certainKm < rule.minDistanceKm) return none('within_accuracy');
  const elapsedMs = Math.abs(Date.parse(to.time) - Date.parse(from.time));
  const speedKmh = elapsedMs === 0 ? Number.POSITIVE_INFINITY : certainKm / (elapsedMs / 3_600_000);
  if (speedKmh <= rule.maxSpeedKmh) return none('plausible_speed');
  const shownSpeed = Number.isFinite(speedKmh) ? Math.round(speedKmh) : 1e9;
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'impossible_travel',
      reason: `${keyPhrase(context.key)} was in ${place(from)} (${from.ip ?? 'no IP'}) and ${formatDuration(elapsedMs)} later in ${place(to)} (${to.ip ?? 'no IP'}): ${Math.round(distanceKm)} km apart, at least ${Math.round(certainKm)} km after location accuracy, ${Number.isFinite(speedKmh) ? `${shownSpeed} km/h` : 'at the same instant'}; limit ${rule.maxSpeedKmh} km/h.`,
      observedValue: shownSpeed,
      threshold: rule.maxSpeedKmh,
      eventIds: [from.eventId, to.eventId],
      geo: { from, to, distanceKm: Math.round(distanceKm * 10) / 10, speedKmh: shownSpeed },
      windowStart: Date.parse(from.time),
      windowEnd: Date.parse(to.time),
      time: Date.parse(to.time),
      identity: [rule.id, context.keyText, from.ip ?? from.eventId, to.ip ?? to.eventId, `hour-${Math.floor(Date.parse(to.time) / TRAVEL_PERIOD_MS)}`],
    },
  };
}

/**
 * geo_velocity (impossible travel): an event against its neighbours in event time, the located
 * event of its key just before it and the one just after it (among those that arrived before
 * it), so a late or replayed event neither fires against the future nor is missed.
 *
 * Fired once per travel, in any arrival order: when the event falls between two neighbours that
 * are themselves an impossible travel, that travel was reported when the later of the two
 * arrived (identified by its arrival, `next`). The leg to `next` is then that same travel, not
 * reported again; the leg from `previous` is a new travel only when the event is also far from
 * `next` (a third place), and otherwise the event is one more sign of the place already reported.
 * @returns the detections (none, one or two), or one `none` with the reason
 */
export function evaluateGeoVelocity(location: Location, state: GeoState, rule: GeoVelocityRule, allowlist: BlockList, context: EvaluationContext): Evaluation[] {
  const { previous, next } = state;
  if (previous === undefined && next === undefined) return [none('first_location')];
  const before = previous === undefined ? undefined : evaluateTravel(previous, location, rule, allowlist, context);
  const after = next === undefined ? undefined : evaluateTravel(location, next, rule, allowlist, context);
  const known = previous !== undefined && next !== undefined && evaluateTravel(previous, next, rule, allowlist, context).outcome === 'detected';
  const detections: Evaluation[] = [];
  if (before?.outcome === 'detected' && (!known || after?.outcome === 'detected')) detections.push(before);
  if (after?.outcome === 'detected' && !known) detections.push(after);
  if (detections.length > 0) return detections;
  if (known && (before?.outcome === 'detected' || after?.outcome === 'detected')) return [none('travel_already_reported')];
  return [(before ?? after) as Evaluation];
}

/**
 * geo_velocity, as a plug-in: its allowlist compiled once; one locationAdd item per located
 * event that the trust model lets write the key's locations.
 */
export const geoVelocityType: StatefulRuleType<GeoVelocityRule, BlockList, Location> = {
  type: 'geo_velocity',
  configSchema: geoVelocityRuleSchema,
  compile: (rule) => cidrList(rule.allowlistCidrs),
  plan(entries, { rule }, _batch, out) {
    for (const { input, context, order } of entries) {
      if (!mayWriteHistory(inputIdentity(input), rule.groupBy, rule.evidence)) continue;
      const location = locationOf(input);
      if (location !== undefined) out.push({ input, context, request: geoVelocityRequest(location, rule, context), extra: location, order });
    }
  },
  decide: (item, reply, { rule, extras }, context) => evaluateGeoVelocity(item.extra, parseGeoState(reply), rule, extras, context),
};
