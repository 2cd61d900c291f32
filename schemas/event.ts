import { z } from 'zod';
import { policyEventSchema } from './policy';
import { invocationEventSchema } from './invocation';
import { deviceEventSchema } from './device';
import type { Family } from './envelope';

/** Any Vigil event; `family` tells which. */
export const eventSchema = z.discriminatedUnion('family', [policyEventSchema, invocationEventSchema, deviceEventSchema]);

export type VigilEvent = z.infer<typeof eventSchema>;
/** What a producer writes: defaults (empty correlation, zero bytes) may be left out. */
export type VigilEventInput = z.input<typeof eventSchema>;
export type EventOf<F extends Family> = Extract<VigilEvent, { family: F }>;
export type EventInputOf<F extends Family> = Extract<VigilEventInput, { family: F }>;

/** The schema of each family, by name. */
export const familySchemas = {
  policy: policyEventSchema,
  invocation: invocationEventSchema,
  device: deviceEventSchema,
} as const;

/** One readable line per problem: `policy.outcome: Invalid option: expected one of "pass"|"fail"`. */
export function describeIssues(error: { readonly issues: readonly z.core.$ZodIssue[] }): string[] {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`);
}

// zod's own safeParse, but a failure's error is a plain $ZodError instead of a ZodError, which is
// an Error: building one captured a stack trace, and over the hostile bench's traffic that was 7–10 %
// of classifying a refused message (docs/hostile-input.md). The issues, their paths and messages are
// the same: both finalize them with the same function and the same error map.
const safeParseQuietly = z.core._safeParse(z.core.$ZodError);

/**
 * {@link eventSchema}'s verdict on a value: the event, or one readable line per problem (as
 * {@link describeIssues} words them), without building an Error for a refusal.
 */
export function checkEvent(value: unknown): { success: true; data: VigilEvent } | { success: false; problems: string[] } {
  const result = safeParseQuietly(eventSchema, value);
  return result.success ? { success: true, data: result.data } : { success: false, problems: describeIssues(result.error) };
}

/** The `format` values draft 2020-12 defines: a strict validator refuses any other. */
const STANDARD_FORMATS = new Set([
  'date-time', 'date', 'time', 'duration', 'email', 'idn-email', 'hostname', 'idn-hostname', 'ipv4', 'ipv6',
  'uri', 'uri-reference', 'iri', 'iri-reference', 'uuid', 'uri-template', 'json-pointer', 'relative-json-pointer', 'regex',
]);

/** IPv6 as RFC 3986 writes it (section 3.2.2), with the last 32 bits as hex or as an IPv4 address. */
export const IPV6_PATTERN = ((): string => {
  const h16 = '[0-9a-fA-F]{1,4}';
  const octet = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
  const ls32 = `(?:${h16}:${h16}|${octet}(?:\\.${octet}){3})`;
  const groups = (count: number): string => (count === 0 ? '' : `(?:${h16}:){${count}}`);
  const upTo = (count: number): string => (count < 0 ? '' : count === 0 ? `(?:${h16})?` : `(?:(?:${h16}:){0,${count}}${h16})?`);
  const forms = [
    `${groups(6)}${ls32}`,
    `::${groups(5)}${ls32}`,
    `${upTo(0)}::${groups(4)}${ls32}`,
    `${upTo(1)}::${groups(3)}${ls32}`,
    `${upTo(2)}::${groups(2)}${ls32}`,
    `${upTo(3)}::${h16}:${ls32}`,
    `${upTo(4)}::${ls32}`,
    `${upTo(5)}::${h16}`,
    `${upTo(6)}::`,
  ];
  return `^(?:${forms.join('|')})$`;
})();

/** Whether a rendered schema node (or one of its `allOf` parts) carries a `pattern`. */
function hasPattern(node: Record<string, unknown>): boolean {
  if (typeof node.pattern === 'string') return true;
  return Array.isArray(node.allOf) && node.allOf.some((part) => typeof part === 'object' && part !== null && typeof (part as Record<string, unknown>).pattern === 'string');
}

/**
 * Drops the `format` zod writes for string checks draft 2020-12 has no format for
 * (`starts_with`, `ends_with`, `includes`): zod expresses each as a `pattern` too, which standard
 * validators enforce, while a strict one refuses the unknown format. A non-standard format
 * without a pattern would lose a check: the export refuses it instead.
 */
function standardFormatsOnly(context: { jsonSchema: Record<string, unknown>; path: (string | number)[] }): void {
  const format = context.jsonSchema.format;
  // zod's own IPv6 pattern refuses the forms with an IPv4 tail its check accepts (`::ffff:1.2.3.4`,
  // Node's remoteAddress on a dual-stack socket): the exported pattern is RFC 3986's grammar.
  if (format === 'ipv6' && typeof context.jsonSchema.pattern === 'string') context.jsonSchema.pattern = IPV6_PATTERN;
  if (typeof format !== 'string' || STANDARD_FORMATS.has(format)) return;
  if (!hasPattern(context.jsonSchema)) throw new Error(`JSON Schema export: format "${format}" at ${context.path.join('.') || '(root)'} is not draft 2020-12 and has no pattern`);
  delete context.jsonSchema.format;
}

/** The JSON Schema (draft 2020-12) of each family, for producers in other languages. */
export function exportJsonSchemas(): Record<Family | 'event', Record<string, unknown>> {
  const render = (schema: z.ZodType, title: string): Record<string, unknown> => ({
    $id: `https://vigil.dev/schemas/v1/${title}.schema.json`,
    title,
    ...(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', override: standardFormatsOnly }) as Record<string, unknown>),
  });
  return {
    policy: render(policyEventSchema, 'policy'),
    invocation: render(invocationEventSchema, 'invocation'),
    device: render(deviceEventSchema, 'device'),
    event: render(eventSchema, 'event'),
  };
}
