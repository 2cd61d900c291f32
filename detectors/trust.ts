/**
 * The trust model: what an event proves about who sent it. Rules that build a user's history or
 * location (first-seen values, travel, the sequences that start from them) take only events that
 * prove the user; a failed login's user id is whatever the caller typed, and counts against the
 * IP and the consumer, never into that user's history. Flood rules count a crowd as signed in
 * only when it proved it. Filters read it as the field `identity`.
 */
import type { VigilEvent } from '../schemas';
import type { Correlated } from './correlation';

/**
 * What an event proves about its user:
 * - `proven`: a passed authentication; a device event (the service reports its own session); an
 *   authorization decision on a request whose authentication (if seen) passed and whose
 *   `authContext` is not `none`; a rate limit or threat decision on a request whose
 *   authentication was seen to pass for that same user (a client may send its own request id
 *   with many requests: a pass by its own account must not prove a name it types elsewhere);
 *   an invocation by a user that the gateway answered with neither 401 nor 407 and whose request
 *   failed no authentication.
 * - `claimed`: a user id is present but nothing proves it (a failed authentication, or a request
 *   refused as unauthenticated): attacker-controlled.
 * - `anonymous`: no user id at all.
 */
export type Identity = 'proven' | 'claimed' | 'anonymous';

/** The identity levels, for filters (`{ field: identity, equals: proven }`). */
export const IDENTITIES: readonly Identity[] = ['proven', 'claimed', 'anonymous'];

/** What `event` proves about its user, given what correlation saw of its request. */
export function identityOf(event: VigilEvent, correlated?: Correlated): Identity {
  if (event.actor.userId === undefined) return 'anonymous';
  const authn = correlated?.request?.policies.authn;
  switch (event.family) {
    case 'device':
      return 'proven';
    case 'policy':
      if (event.policy.kind === 'authn') return event.policy.outcome === 'pass' ? 'proven' : 'claimed';
      // The gateway saying the request carried no authentication proves nobody, whatever it names.
      if (authn === 'fail' || event.policy.authContext === 'none') return 'claimed';
      // An authorization decision is made on an authenticated principal. A rate limit or a threat
      // check may come before authentication (a login's per-username limiter names whatever was
      // typed): it proves the user only when the request's authentication was seen to pass. It
      // counted as proven before, and a spray's rejections moved the victim's location. The pass
      // must name this user: request ids are often the client's own X-Request-Id, and a client
      // signed in as itself could otherwise send its spray under the id of its own sign-in.
      if (event.policy.kind === 'authz') return 'proven';
      return authn === 'pass' && correlated?.request?.authnUser === event.actor.userId ? 'proven' : 'claimed';
    case 'invocation': {
      const status = event.invocation.status;
      if (status === 401 || status === 407 || authn === 'fail') return 'claimed';
      return 'proven';
    }
  }
}

/** Fields whose value names a user: state kept per one of them is that user's history. */
export const USER_FIELDS: readonly string[] = ['actor.userId'];

/**
 * What evidence a history or location rule (new_value, geo_velocity) takes: `proven` (the
 * default) lets only events that prove their user write a user's history or location; `any`
 * takes every event, as rules did before the trust model.
 */
export type Evidence = 'proven' | 'any';

/**
 * Whether an event may write the state a rule keeps per `groupBy`: always when the key names no
 * user (an IP's or a consumer's history takes every attempt), else only when the rule takes any
 * evidence or the event proves its user. A claimed user id is what the caller typed.
 */
export function mayWriteHistory(identity: Identity, groupBy: readonly string[], evidence: Evidence): boolean {
  if (evidence === 'any' || identity === 'proven') return true;
  return !groupBy.some((field) => USER_FIELDS.includes(field));
}

/** Fields whose value is an IP: a rule keyed on one judged that address, which many people may share. */
export const IP_FIELDS: readonly string[] = ['client.ip'];

/** Rule types whose completing event is the finding itself (the one event, a sequence's final step), not one event of a count. */
const NAMING_TYPES: readonly string[] = ['match', 'sequence'];

/**
 * The entities a detection names besides its key (its `entities`), for the alerter's incident
 * linking: the user the completing event proves, when the rule keys on an IP and not on a user,
 * and the rule is a match or a sequence whose completing event is its last piece of evidence (a
 * sequence completed by a late earlier step names nobody). A threshold's completing event is
 * whichever one tipped the count (on a shared NAT, any of its users), and a claimed user is what
 * the caller typed: neither names anyone. Undefined when it names nobody.
 */
export function namedEntities(
  ruleType: string,
  key: Readonly<Record<string, string>>,
  completing: { identity: Identity; userId?: string; eventId: string },
  eventIds: readonly string[],
): Record<string, string> | undefined {
  if (!NAMING_TYPES.includes(ruleType) || completing.identity !== 'proven' || completing.userId === undefined) return undefined;
  const fields = Object.keys(key);
  if (!fields.some((field) => IP_FIELDS.includes(field)) || fields.some((field) => USER_FIELDS.includes(field))) return undefined;
  if (eventIds[eventIds.length - 1] !== completing.eventId) return undefined;
  return { 'actor.userId': completing.userId };
}
