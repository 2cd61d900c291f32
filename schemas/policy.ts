import { z } from 'zod';
import { envelopeShape, plainText, resourceSchema } from './envelope';

/** The kinds of security policy a gateway or service enforces. */
export const POLICY_KINDS = ['authn', 'authz', 'rate_limit', 'json_threat', 'xml_threat', 'custom'] as const;

/** One of {@link POLICY_KINDS}. */
export type PolicyKind = (typeof POLICY_KINDS)[number];

/** How the caller authenticated, as the enforcing layer saw it. */
export const AUTH_CONTEXTS = ['none', 'basic', 'api_key', 'oauth2', 'jwt', 'mtls', '2fa'] as const;

/** The outcome of one security policy enforced on one request. */
export const policyEventSchema = z.strictObject({
  ...envelopeShape,
  family: z.literal('policy'),
  policy: z.strictObject({
    kind: z.enum(POLICY_KINDS),
    /** The policy's own name, e.g. `verify-api-key` or `json-threat-protection`. */
    name: plainText(256).min(1),
    outcome: z.enum(['pass', 'fail']),
    /**
     * Why it failed (or a note on a pass), e.g. `invalid_credentials`, `array_too_large`. One
     * line: it lands in notifications and logs, where a line break would forge another entry.
     */
    reason: plainText(1024).optional(),
    authContext: z.enum(AUTH_CONTEXTS).optional(),
    /** Scopes requested or required, e.g. `['payments:write']`. */
    scopes: z.array(plainText(256).min(1)).max(64).optional(),
    /** The API/policy group the resource belongs to; policies apply per group. */
    group: plainText(256).min(1),
    resource: resourceSchema,
  }),
});

export type PolicyEvent = z.infer<typeof policyEventSchema>;
