import { z } from 'zod';
import { envelopeShape, plainText, resourceSchema } from './envelope';

/** One API call, as the gateway or service that served it measured it. */
export const invocationEventSchema = z.strictObject({
  ...envelopeShape,
  family: z.literal('invocation'),
  invocation: z.strictObject({
    resource: resourceSchema,
    /** The route template, e.g. `/accounts/:id`: groups calls whose paths differ only by ids. */
    route: plainText(2048).startsWith('/'),
    status: z.number().int().min(100).max(599),
    latencyMs: z.number().min(0).max(3_600_000),
    /** Request body bytes, when the producer knows them: absent means unknown, not 0. */
    bytesIn: z.number().int().min(0).optional(),
    /** Response body bytes, when the producer knows them (a chunked response's may not be). */
    bytesOut: z.number().int().min(0).optional(),
    /** The upstream service the gateway routed to, when there is one. */
    upstreamService: plainText(256).min(1).optional(),
    group: plainText(256).min(1).optional(),
  }),
});

export type InvocationEvent = z.infer<typeof invocationEventSchema>;
