import { isIPv4, isIPv6 } from 'node:net';
import { boundedMemo } from '../platform';
import { canonicalIp, type VigilEvent } from '../schemas';
import type { Correlated } from './correlation';
import { identityOf, type Identity } from './trust';

/** Where an event was, as enrichment located it (or the producer reported it). */
export interface InputGeo {
  lat?: number;
  lon?: number;
  accuracyKm?: number;
  country?: string;
  city?: string;
  /**
   * How precise the point is: `city` is a place (a city-level answer, or the producer's own
   * position); `country` is only the country's default point of a geo database (no city, or a
   * known default point), which is where nobody was: it never enters a travel computation.
   */
  precision?: 'city' | 'country';
}

/**
 * What rules see: a validated event plus what enrichment added. Filters address it by dotted
 * paths into the event (`policy.outcome`, `actor.userId`, `client.ip`) and into `geo.*`
 * (`geo.country`), `ipScope`, and the derived `identity` and `ipNetwork`.
 */
export interface DetectionInput {
  event: VigilEvent;
  geo?: InputGeo;
  ipScope?: 'public' | 'private' | 'reserved';
  /** What correlation found: the request's policy decisions, the session's device (see correlation.ts). */
  correlated?: Correlated;
  /**
   * What the event proves about its user (the trust model, trust.ts). Filters read it as
   * `identity`; when absent it is derived from the event and `correlated`.
   */
  identity?: Identity;
  /** Rules this event made fire earlier in the same evaluation (see the `detectedBy` filter). */
  detectedBy?: ReadonlySet<string>;
}

/** Reads the value at a dotted path: built once per path, called per event. */
export type PathReader = (input: DetectionInput) => unknown;

/** A reader for a dotted path (`actor.userId`, `geo.country`, `correlated.device.knownDevices`). */
export function compilePath(path: string): PathReader {
  const [root = '', ...rest] = path.split('.');
  const top: PathReader =
    root === 'geo'
      ? (input) => input.geo
      : root === 'ipScope'
        ? (input) => input.ipScope
        : root === 'identity'
          ? (input) => inputIdentity(input)
        : root === 'ipNetwork'
          ? (input) => inputIpNetwork(input)
        : root === 'correlated'
          ? (input) => input.correlated
          : (input) => (input.event as unknown as Record<string, unknown>)[root];
  if (rest.length === 0) return top;
  return (input) => {
    let current = top(input);
    for (const part of rest) {
      if (typeof current !== 'object' || current === null) return undefined;
      current = (current as Record<string, unknown>)[part];
    }
    return current;
  };
}

const READERS = new Map<string, PathReader>();

/** The value at a dotted path, or undefined. */
export function fieldValue(input: DetectionInput, path: string): unknown {
  // Called per event, per rule: each path is compiled once. Paths come from rule files, so the
  // cache stays small.
  let read = READERS.get(path);
  if (read === undefined) {
    read = compilePath(path);
    READERS.set(path, read);
  }
  return read(input);
}

/** A field value as text when it is a scalar; objects and arrays can't be a key or a counted value. */
export function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** What an event proves about its user: as set, else derived (trust.ts). */
export function inputIdentity(input: DetectionInput): Identity {
  return input.identity ?? identityOf(input.event, input.correlated);
}

/** The IP an event came from: the client's, else the device's. */
export function inputIp(input: DetectionInput): string | undefined {
  return input.event.client.ip ?? (input.event.family === 'device' ? input.event.device.ip : undefined);
}

/**
 * The network an address stands for when counting attackers: an IPv4 address itself, an IPv6
 * address's /64 (`2001:db8:7:1::/64`). A host or a home gets a whole /64 from its provider, so an
 * attacker can try from a fresh IPv6 address each time without leaving it; a rule grouped by
 * `ipNetwork` sees one source where `client.ip` sees a new one per try. An IPv4-mapped IPv6
 * address is its IPv4 address. Undefined for text that is no IP address.
 */
export function ipNetworkOf(ip: string): string | undefined {
  let address: string;
  try {
    address = canonicalIp(ip);
  } catch {
    return undefined;
  }
  if (isIPv4(address)) return address;
  const groups = ipv6Groups(address);
  return groups === undefined ? undefined : `${canonicalIp(`${groups.slice(0, 4).map((group) => group.toString(16)).join(':')}::`)}/64`;
}

/** The eight 16-bit groups of an IPv6 address (hex groups only: no dotted IPv4 tail), or undefined. */
export function ipv6Groups(ip: string): number[] | undefined {
  if (!isIPv6(ip)) return undefined;
  const [head = '', tail] = ip.toLowerCase().split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Networks of the addresses seen last: rules ask for the same few addresses over and over. */
const IP_NETWORKS_KEPT = 10_000;
const networkOf = boundedMemo(IP_NETWORKS_KEPT, ipNetworkOf);

/** The network of the IP an event came from ({@link ipNetworkOf}); undefined without one. */
export function inputIpNetwork(input: DetectionInput): string | undefined {
  const ip = inputIp(input);
  return ip === undefined ? undefined : networkOf(ip);
}
