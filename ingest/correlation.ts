import type { Correlated } from '../detectors';
import type { EventDocument } from '../schemas';

/** The correlated fields as indexed with the event (`vigil.correlation.*`). */
export function correlationDocument(correlated: Correlated | undefined): EventDocument['vigil']['correlation'] {
  if (correlated === undefined) return undefined;
  return {
    ...(correlated.request ? { policies: correlated.request.policies, failed_policies: correlated.request.failedPolicies } : {}),
    ...(correlated.device
      ? {
          ...(correlated.device.deviceId ? { device_id: correlated.device.deviceId } : {}),
          ...(correlated.device.deviceAgeMs === undefined ? {} : { device_age_ms: correlated.device.deviceAgeMs }),
          ...(correlated.device.country ? { country: correlated.device.country } : {}),
          known_devices: correlated.device.knownDevices,
          from_session: correlated.device.fromSession,
        }
      : {}),
  };
}
