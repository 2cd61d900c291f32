import { z } from 'zod';

/** Schema versions this build of Vigil reads. A message with another version is dead-lettered. */
export const SUPPORTED_SCHEMA_VERSIONS = [1] as const;
/** The version the SDK writes. */
export const CURRENT_SCHEMA_VERSION = 1;

/** The three event families, one Kafka topic each. */
export const FAMILIES = ['policy', 'invocation', 'device'] as const;
export type Family = (typeof FAMILIES)[number];

/**
 * Control characters: C0 (U+0000–U+001F), DEL and C1 (U+007F–U+009F). No field of the contract
 * has a use for them, and each is a hazard downstream: a NUL cuts C strings and some log
 * shippers, CR/LF forge lines in logs and notifications, and identifiers become Redis keys
 * and Elasticsearch terms that an analyst could not type. The pattern is written with escapes
 * so the exported JSON Schema carries it as an ECMA-262 `pattern` other validators read.
 */
const CONTROL_CHARACTERS = 'U+0000–U+001F, U+007F–U+009F';
const noControlCharacters = new RegExp(String.raw`^[^\u0000-\u001F\u007F-\u009F]*$`);
/** The same, but a horizontal tab is allowed (HTTP header values may hold one). */
const noControlCharactersButTab = new RegExp(String.raw`^[^\u0000-\u0008\u000A-\u001F\u007F-\u009F]*$`);

/**
 * Text of at most `max` characters with no control character: identifiers, names, paths,
 * routes, reasons, labels. Refused with a message that the field's path precedes.
 *
 * A text over its length is refused for that alone (`abort`): the checks after it would scan
 * every character of a string that may be hundreds of times the limit, and under hostile
 * traffic that scan cost more than validating the good events (docs/hostile-input.md).
 */
export function plainText(max: number): z.ZodString {
  return z.string().max(max, { abort: true }).regex(noControlCharacters, `must not contain control characters (${CONTROL_CHARACTERS})`);
}

/**
 * A User-Agent as a gateway copies it from the request: RFC 9110 lets a field value hold
 * spaces and horizontal tabs but never CR, LF or NUL, so the tab is the one control kept.
 */
export const userAgentText = z
  .string()
  .max(1024, { abort: true })
  .regex(noControlCharactersButTab, `must not contain control characters other than a tab (${CONTROL_CHARACTERS})`);

const identifier = plainText(256).min(1);

/**
 * One address in one spelling: IPv6 as RFC 5952 writes it (lower case, zeros compressed) and an
 * IPv4-mapped IPv6 address (`::ffff:203.0.113.9`, `::ffff:cb00:7109`) as the IPv4 address it is.
 * Every per-IP key, list and document compares text, so four spellings of one address were four
 * attackers to the per-IP rules, and `::ffff:` an evasion of each. IPv4 is already one spelling
 * (the contract refuses leading zeros).
 */
export function canonicalIp(address: string): string {
  if (!address.includes(':')) return address;
  const host = new URL(`http://[${address}]`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped === null) return host;
  const high = Number.parseInt(mapped[1] ?? '0', 16);
  const low = Number.parseInt(mapped[2] ?? '0', 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

const MAPPED_DOTTED_IPV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/**
 * The IPv4 address in `::ffff:a.b.c.d` (an IPv4 client seen through a dual-stack socket), or the
 * text as it is: the cheap form of {@link canonicalIp}'s mapping, for text that may not have come
 * through the contract (a lookup's argument, a value a rule filter compares).
 */
export function unmappedIpv4(ip: string): string {
  return MAPPED_DOTTED_IPV4.exec(ip)?.[1] ?? ip;
}

/** IPv4 or IPv6, as text; put in its one spelling ({@link canonicalIp}). */
export const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: 'Invalid IP address' }).transform(canonicalIp);

/** Fields every event carries, whatever its family. */
export const envelopeShape = {
  /** Producer-assigned unique id: the dedup key and the Elasticsearch document id. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$/, 'expected 8-128 characters of letters, digits, ".", "_", ":" or "-"'),
  schemaVersion: z.literal(CURRENT_SCHEMA_VERSION),
  /** When it happened (event time), RFC 3339 with a zone offset. */
  time: z.iso.datetime({ offset: true }),
  source: z.strictObject({
    /** The service or gateway that observed the event, e.g. `edge-gateway-eu`. */
    service: identifier,
    kind: z.enum(['gateway', 'service']),
    instance: identifier.optional(),
    environment: identifier.optional(),
  }),
  correlation: z
    .strictObject({
      requestId: identifier.optional(),
      traceId: identifier.optional(),
      sessionId: identifier.optional(),
    })
    .default({}),
  actor: z
    .strictObject({
      userId: identifier.optional(),
      /** The API client or app calling (API key owner, OAuth client id). */
      consumerId: identifier.optional(),
      tenantId: identifier.optional(),
    })
    .default({}),
  client: z
    .strictObject({
      ip: ipAddress.optional(),
      userAgent: userAgentText.optional(),
      deviceId: identifier.optional(),
    })
    .default({}),
  /** Free-form producer tags (region, release, run id), indexed as keywords. */
  labels: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), plainText(256)).optional(),
};

/** The resource a request addressed. */
export const resourceSchema = z.strictObject({
  /** API name or id, e.g. `payments-v2`. */
  api: identifier,
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']),
  /**
   * The concrete path, without query string, as it came on the wire: RFC 3986 allows no raw
   * control character in a URI, so a `%00` stays percent-encoded and a raw NUL is refused.
   */
  path: plainText(2048).startsWith('/'),
});
