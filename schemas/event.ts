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
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`);
}

/** The JSON Schema (draft 2020-12) of each family, for producers in other languages. */
export function exportJsonSchemas(): Record<Family | 'event', Record<string, unknown>> {
  const render = (schema: z.ZodType, title: string): Record<string, unknown> => ({
    $id: `https://vigil.dev/schemas/v1/${title}.schema.json`,
    title,
    ...(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>),
  });
  return {
    policy: render(policyEventSchema, 'policy'),
    invocation: render(invocationEventSchema, 'invocation'),
    device: render(deviceEventSchema, 'device'),
    event: render(eventSchema, 'event'),
  };
}
