import type { Correlated } from '../detectors';
import type { EventDocument } from '../schemas';

/** The correlated fields as indexed with the event (`vigil.correlation.*`). */
export function correlationDocument(correlated: Correlated | undefined): EventDocument['vigil']['correlation'] {
  if (correlated === undefined) return undefined;
  // Members assigned in the order the former conditional spreads wrote them (the document's
  // JSON keeps its bytes), without a throwaway object per member.
  const document: NonNullable<EventDocument['vigil']['correlation']> = {};
  const { request, device } = correlated;
  if (request) {
    document.policies = request.policies;
    document.failed_policies = request.failedPolicies;
  }
  if (device) {
    if (device.deviceId) document.device_id = device.deviceId;
    if (device.deviceAgeMs !== undefined) document.device_age_ms = device.deviceAgeMs;
    if (device.country) document.country = device.country;
    document.known_devices = device.knownDevices;
    document.from_session = device.fromSession;
  }
  return document;
}
