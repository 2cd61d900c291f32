import { z } from 'zod';

/** Schema versions this build of Vigil reads. A message with another version is dead-lettered. */
export const SUPPORTED_SCHEMA_VERSIONS = [1] as const;
/** The version the SDK writes. */
export const CURRENT_SCHEMA_VERSION = 1;

/** The three event families, one Kafka topic each. */
export const FAMILIES = ['policy', 'invocation', 'device'] as const;
export type Family = (typeof FAMILIES)[number];

const identifier = z.string().min(1).max(256);

/** IPv4 or IPv6, as text. */
export const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: 'Invalid IP address' });

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
      userAgent: z.string().max(1024).optional(),
      deviceId: identifier.optional(),
    })
    .default({}),
  /** Free-form producer tags (region, release, run id), indexed as keywords. */
  labels: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), z.string().max(256)).optional(),
};

/** The resource a request addressed. */
export const resourceSchema = z.strictObject({
  /** API name or id, e.g. `payments-v2`. */
  api: identifier,
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']),
  /** The concrete path, without query string. */
  path: z.string().startsWith('/').max(2048),
});
