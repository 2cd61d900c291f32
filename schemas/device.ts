import { z } from 'zod';
import { envelopeShape, ipAddress, plainText, userAgentText } from './envelope';

/** Location a producer already knows (from a mobile OS, say), with its accuracy. */
export const producerGeoSchema = z.strictObject({
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
  /** Radius of uncertainty, in kilometres. */
  accuracyKm: z.number().min(0).max(20_000).optional(),
  country: z.string().regex(/^[A-Z]{2}$/, 'expected an ISO 3166-1 alpha-2 code').optional(),
  city: plainText(256).optional(),
});

/** A device and location seen for a user or a session. */
export const deviceEventSchema = z.strictObject({
  ...envelopeShape,
  family: z.literal('device'),
  device: z
    .strictObject({
      /** A stable device id from the app, when it has one. */
      deviceId: plainText(256).min(1).optional(),
      /** A derived fingerprint (browser or SDK), when there is no stable id. */
      fingerprint: plainText(512).min(1).optional(),
      type: z.enum(['mobile', 'desktop', 'tablet', 'server', 'iot', 'unknown']),
      os: plainText(256).optional(),
      userAgent: userAgentText.optional(),
      ip: ipAddress.optional(),
      action: z.enum(['login', 'logout', 'session', 'transaction', 'registration', 'password_change', 'other']),
      geo: producerGeoSchema.optional(),
    })
    .refine((device) => device.deviceId !== undefined || device.fingerprint !== undefined, {
      message: 'either deviceId or fingerprint is required',
      path: ['deviceId'],
    }),
});

export type DeviceEvent = z.infer<typeof deviceEventSchema>;
