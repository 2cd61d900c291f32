import type { Detection, VigilEvent } from '../schemas';

/**
 * The endpoint an event hit, as a detection's `scope`: an invocation's API and route template,
 * a policy event's API and path (a policy event knows no route template; for a route without
 * ids, such as a login, the two are the same). Undefined for an event that names no endpoint.
 * The alerter matches it against an open endpoint incident that explains the detection.
 */
export function detectionScope(event: VigilEvent): Detection['scope'] {
  if (event.family === 'invocation') return { api: event.invocation.resource.api, route: event.invocation.route };
  if (event.family === 'policy') return { api: event.policy.resource.api, route: event.policy.resource.path };
  return undefined;
}
