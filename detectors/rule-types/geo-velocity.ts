import { isIPv4, isIPv6 } from 'node:net';
import type { BlockList } from 'node:net';
import type { DetectionInput } from '../input';
import { inputIp } from '../input';
import { keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import { inCidrList } from '../filter';
import { stateKey } from '../state';
import { eventTime, isoTime, none, renewalMs, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { base, grouped } from '../rule-schema';
import { cidrRangesSchema } from '../filter';
import { durationSchema } from '../duration';
import { cidrList } from '../filter';
import type { StatefulRuleType } from '../rule-type';

export const geoVelocityRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('geo_velocity'),
  /** Faster than this between two located events is impossible travel. @defaultValue 900 (a jet) */
  maxSpeedKmh: z.number().positive().default(900),
  /** Nearer than this (after subtracting both accuracies) never fires. @defaultValue 300 */
  minDistanceKm: z.number().min(0).default(300),
  /** How long the last location is kept. @defaultValue 24h */
  horizon: durationSchema.default(86_400_000),
  /** Addresses (VPN egress, corporate proxies) that never take part in a detection. */
  allowlistCidrs: cidrRangesSchema.default([]),
});

/** A geo_velocity rule, as validated. */
export type GeoVelocityRule = z.infer<typeof geoVelocityRuleSchema>;

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

export interface GeoState {
  previous?: Location;
}

export function parseGeoState(reply: unknown): GeoState {
  if (typeof reply !== 'string') return {};
  return { previous: JSON.parse(reply) as Location };
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

/** An IPv4-mapped IPv6 address as IPv4; anything else unchanged. */
function unmapped(ip: string): string {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip;
}

/** The eight 16-bit groups of an IPv6 address, or undefined. */
function ipv6Groups(ip: string): number[] | undefined {
  if (!isIPv6(ip)) return undefined;
  const [head = '', tail] = ip.toLowerCase().split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Same /24 (IPv4) or same /48 (IPv6): one network, whatever a geo database says. */
export function sameNetwork(a: string, b: string): boolean {
  const first = unmapped(a);
  const second = unmapped(b);
  if (isIPv4(first) && isIPv4(second)) return first.split('.').slice(0, 3).join('.') === second.split('.').slice(0, 3).join('.');
  const left = ipv6Groups(first);
  const right = ipv6Groups(second);
  return left !== undefined && right !== undefined && left.slice(0, 3).every((group, index) => group === right[index]);
}

/** Where an event was, when it can take part: located, and not from a private or reserved address. */
export function locationOf(input: DetectionInput): Location | undefined {
  const { geo } = input;
  if (geo?.lat === undefined || geo.lon === undefined) return undefined;
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

/** The lastLocation call for a located event. */
export function geoVelocityRequest(location: Location, rule: GeoVelocityRule, context: EvaluationContext & { prefix: string }): StateRequest {
  return {
    script: 'lastLocation',
    keys: [stateKey(context.prefix, rule.id, context.keyText, 'location')],
    args: [eventTime(location.time), JSON.stringify(location), rule.horizon, location.eventId, renewalMs(rule.horizon)],
  };
}

const place = (location: Location): string =>
  [location.city, location.country].filter(Boolean).join(', ') || `${location.lat.toFixed(2)},${location.lon.toFixed(2)}`;

/**
 * geo_velocity (impossible travel): the speed between consecutive located events of a key
 * exceeds the limit. Distances shrink by both locations' accuracy radii first, so a coarse
 * country-level lookup can't fake a flight; the same IP, the same /24, private ranges and
 * allowlisted networks (VPN egress, proxies) never fire.
 */
export function evaluateGeoVelocity(
  location: Location,
  state: GeoState,
  rule: GeoVelocityRule,
  allowlist: BlockList,
  context: EvaluationContext,
): Evaluation {
  const previous = state.previous;
  if (previous === undefined) return none('first_location');
  if (previous.eventId === location.eventId) return none('same_event');
  if (previous.ip !== undefined && location.ip !== undefined) {
    if (previous.ip === location.ip) return none('same_ip');
    if (sameNetwork(previous.ip, location.ip)) return none('same_network');
  }
  if (inCidrList(allowlist, previous.ip) || inCidrList(allowlist, location.ip)) return none('allowlisted');
  const distanceKm = haversineKm(previous, location);
  const certainKm = distanceKm - (previous.accuracyKm ?? 0) - (location.accuracyKm ?? 0);
  if (certainKm < rule.minDistanceKm) return none('within_accuracy');
  const elapsedMs = Math.abs(Date.parse(location.time) - Date.parse(previous.time));
  const speedKmh = elapsedMs === 0 ? Number.POSITIVE_INFINITY : certainKm / (elapsedMs / 3_600_000);
  if (speedKmh <= rule.maxSpeedKmh) return none('plausible_speed');
  const [from, to] = Date.parse(previous.time) <= Date.parse(location.time) ? [previous, location] : [location, previous];
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
      identity: [rule.id, context.keyText, from.eventId, to.eventId],
    },
  };
}

/** geo_velocity, as a plug-in: its allowlist compiled once; one lastLocation item per located event. */
export const geoVelocityType: StatefulRuleType<GeoVelocityRule, BlockList, Location> = {
  type: 'geo_velocity',
  configSchema: geoVelocityRuleSchema,
  compile: (rule) => cidrList(rule.allowlistCidrs),
  plan(entries, { rule }, _batch, out) {
    for (const { input, context, order } of entries) {
      const location = locationOf(input);
      if (location !== undefined) out.push({ input, context, request: geoVelocityRequest(location, rule, context), extra: location, order });
    }
  },
  decide: (item, reply, { rule, extras }, context) => evaluateGeoVelocity(item.extra, parseGeoState(reply), rule, extras, context),
};
