import type { AUTH_CONTEXTS } from '../../schemas';
import { contractMethod, secretFingerprint, splitUri } from './common';
import { clientIp, identifierText, integerIn, isoTime, labels, objectOf, parseJson, pathText, present, stringsOf, userAgentText } from './fields';
import { recordEvents } from './record-events';
import type { AdapterResult, AdapterSettings, GatewayAdapter } from './types';

/**
 * Tyk Pump's `kafka` pump: one analytics record per message (`TykTechnologies/tyk-pump:pumps/kafka.go`):
 * `timestamp`, `method`, `path`, `raw_path`, `response_code`, `alias`, `api_key`, `api_version`,
 * `api_name`, `api_id`, `org_id`, `oauth_id`, `raw_request`, `request_time_ms`, `raw_response`,
 * `ip_address`, `host`, `content_length`, `user_agent`, newer pumps `tags`, and the pump's static
 * `meta_data` keys. An array of records is taken too (a replay tool may batch them).
 *
 * Secrets: `api_key` is the caller's token itself. It is never copied: the consumer id is the
 * key's alias or OAuth client when there is one, else `secretFingerprint(api_key)`, which still
 * groups one caller's requests but can't be used. `raw_request` and `raw_response` (base64
 * dumps with headers and bodies) are never copied either; the error body of a 401/403/429 is
 * read, in memory, only to learn which of Tyk's own errors the gateway returned.
 */

const FORMAT = 'tyk';

type AuthContext = (typeof AUTH_CONTEXTS)[number];

interface Proven {
  kind: 'authn' | 'authz' | 'rate_limit';
  name: string;
  reason: string;
  authContext?: AuthContext;
}

/**
 * The error texts Tyk's gateway writes itself, keyed in lower case (matched case-insensitively, as
 * Tyk's own spellings vary: "authorised"/"authorized", "Rate Limit Exceeded"). A body carrying one
 * proves the gateway, not the upstream, refused. Sources (TykTechnologies/tyk): the `Msg*`
 * constants of `gateway/handler_error.go`, `initAuthKeyErrors` in `gateway/mw_auth_key.go`,
 * `initOauth2KeyExistsErrors` in `gateway/mw_oauth2_key_exists.go`, `gateway/mw_jwt.go`, `handleQuotaFailure` in
 * `gateway/mw_rate_limiting.go` (403 "Quota exceeded"), and the 429s of
 * `BaseMiddleware.handleRateLimitFailure`: "Rate Limit Exceeded" (`mw_rate_limiting.go`) and
 * "API Rate Limit Exceeded" (`mw_api_rate_limit.go`).
 *
 * "Access to this API has been disallowed" is not here: Tyk writes it for two different refusals
 * ({@link accessDisallowed}).
 */
const TYK_ERRORS: Readonly<Record<string, Proven>> = {
  'authorization field missing': { kind: 'authn', name: 'tyk-auth', reason: 'credentials_missing' },
  'key not authorised': { kind: 'authn', name: 'tyk-auth', reason: 'key_not_authorised' },
  // mw_jwt.go's answer to a token that fails validation, spelt with a z.
  'key not authorized': { kind: 'authn', name: 'tyk-auth', reason: 'key_not_authorised', authContext: 'jwt' },
  'key not authorised. oauth client access was revoked': { kind: 'authn', name: 'tyk-auth', reason: 'oauth_client_revoked', authContext: 'oauth2' },
  'key not authorized: unexpected signing method': { kind: 'authn', name: 'tyk-auth', reason: 'unexpected_signing_method', authContext: 'jwt' },
  'bearer token malformed': { kind: 'authn', name: 'tyk-auth', reason: 'bearer_token_malformed' },
  'client certificate required': { kind: 'authn', name: 'tyk-auth', reason: 'client_certificate_required', authContext: 'mtls' },
  'certificate has expired': { kind: 'authn', name: 'tyk-auth', reason: 'certificate_expired', authContext: 'mtls' },
  'rate limit exceeded': { kind: 'rate_limit', name: 'tyk-rate-limit', reason: 'rate_limit_exceeded' },
  'api rate limit exceeded': { kind: 'rate_limit', name: 'tyk-rate-limit', reason: 'rate_limit_exceeded' },
  'quota exceeded': { kind: 'rate_limit', name: 'tyk-quota', reason: 'quota_exceeded' },
};

const ACCESS_DISALLOWED = 'access to this api has been disallowed';

/**
 * Tyk answers "Access to this API has been disallowed" both for a key it did not find or found
 * invalid (403, and 401 on a certificate mismatch: `initAuthKeyErrors` in `gateway/mw_auth_key.go`)
 * and for a valid key without rights to this API or version (403, `gateway/mw_access_rights.go`).
 * The record tells them apart only by the session: a found key has one, and the error record
 * takes the alias, OAuth client and policy tags from it (`gateway/handler_error.go`).
 */
function accessDisallowed(status: number, keyAccepted: boolean): Proven {
  return status === 403 && keyAccepted
    ? { kind: 'authz', name: 'tyk-access-rights', reason: 'api_access_disallowed' }
    : { kind: 'authn', name: 'tyk-auth', reason: 'key_not_found_or_invalid' };
}

/**
 * What a status alone suggests, labelled `derived: status`. Tyk answers a missing or rejected
 * credential 401, and an unknown or invalid key 403 (`gateway/mw_auth_key.go`); but a 403 is also
 * its answer to an exhausted quota and to a key without rights to the API, so a 403 is an
 * authentication failure only when a key was presented and Tyk found none (no session), and
 * otherwise an authorization failure.
 */
function byStatus(status: number, keyPresented: boolean, keyAccepted: boolean): Proven | undefined {
  if (status === 401) return { kind: 'authn', name: 'http-401', reason: 'unauthorized' };
  if (status === 429) return { kind: 'rate_limit', name: 'http-429', reason: 'too_many_requests' };
  if (status !== 403) return undefined;
  return keyPresented && !keyAccepted ? { kind: 'authn', name: 'http-403', reason: 'forbidden' } : { kind: 'authz', name: 'http-403', reason: 'forbidden' };
}

/**
 * Whether the record shows a session, i.e. a key Tyk found: the error record copies the alias, the
 * OAuth client and `pol-<policy id>` / `dev-<developer id>` tags from the session only
 * (`getSessionTags` in `gateway/handler_success.go`). A found key with none of them (no alias, no
 * policy, no developer) looks like an unknown one.
 */
function keyAcceptedBy(fields: Record<string, unknown>): boolean {
  if (identifierText(fields.alias) !== undefined || identifierText(fields.oauth_id) !== undefined) return true;
  return stringsOf(fields.tags).some((tag) => tag.startsWith('pol-') || tag.startsWith('dev-'));
}

/** Reads at most this much of `raw_response`: Tyk's error bodies are a few dozen bytes. */
const RAW_RESPONSE_MAX_CHARS = 16_384;

/** The `error` text of Tyk's JSON error body inside a base64 `raw_response`, if there is one. */
function tykErrorOf(rawResponse: unknown): string | undefined {
  if (typeof rawResponse !== 'string' || rawResponse === '') return undefined;
  const dump = Buffer.from(rawResponse.slice(0, RAW_RESPONSE_MAX_CHARS), 'base64').toString('utf8');
  const headerEnd = dump.indexOf('\r\n\r\n');
  const body = headerEnd >= 0 ? dump.slice(headerEnd + 4) : dump;
  const start = body.indexOf('{');
  const end = body.lastIndexOf('}');
  if (start < 0 || end < start) return undefined;
  const parsed = parseJson(body.slice(start, end + 1));
  const error = parsed === undefined ? undefined : objectOf(parsed.value)?.error;
  return typeof error === 'string' ? error.trim() : undefined;
}

function recordsOf(value: Uint8Array): { records: unknown[] } | { error: string } {
  const parsed = parseJson(new TextDecoder().decode(value));
  if (parsed === undefined) return { error: 'not JSON' };
  if (Array.isArray(parsed.value)) return { records: parsed.value as unknown[] };
  return { records: [parsed.value] };
}

function translateRecord(item: unknown, record: number, settings: AdapterSettings, result: AdapterResult): void {
  const fields = objectOf(item);
  if (fields === undefined) {
    result.rejected.push({ reason: 'adapter_unparseable', record, message: `record ${record}: expected a Tyk analytics record (a JSON object)` });
    return;
  }
  const rawMethod = present(fields.method);
  if (rawMethod === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: no method` });
    return;
  }
  const method = contractMethod(rawMethod);
  if (method === undefined) {
    result.skipped.push({ reason: 'method_unsupported', record });
    return;
  }
  // raw_path is the path as requested; path is the tracked endpoint when track_endpoints names
  // one (a template), else the same path.
  const wire = splitUri(present(fields.raw_path) ?? present(fields.path) ?? '');
  const path = pathText(wire?.path);
  if (path === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: no path starting with "/" in raw_path or path` });
    return;
  }
  const tracked = pathText(splitUri(present(fields.path) ?? '')?.path);
  const route = tracked ?? path;

  const apiName = identifierText(fields.api_name);
  const apiId = identifierText(fields.api_id);
  const api = apiName ?? apiId;
  if (api === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: names no API (api_name, api_id)` });
    return;
  }
  const status = integerIn(fields.response_code, 100, 599);
  if (status === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: no response_code between 100 and 599` });
    return;
  }
  const time = isoTime(fields.timestamp);
  if (time === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: no usable timestamp` });
    return;
  }

  const apiKey = present(fields.api_key);
  const keyFingerprint = apiKey !== undefined ? secretFingerprint(apiKey) : undefined;
  const oauthId = identifierText(fields.oauth_id);
  const consumerId = oauthId ?? identifierText(fields.alias) ?? keyFingerprint;
  const ip = clientIp(fields.ip_address);
  const userAgent = userAgentText(fields.user_agent);
  const instance = identifierText(fields.instance);
  const bytesIn = integerIn(fields.content_length, 0, Number.MAX_SAFE_INTEGER);

  // The error body of a 401/403/429 proves which of Tyk's own checks refused; the status alone only suggests it.
  const keyAccepted = keyAcceptedBy(fields);
  const suggested = byStatus(status, apiKey !== undefined, keyAccepted);
  const error = suggested === undefined ? undefined : tykErrorOf(fields.raw_response)?.toLowerCase();
  const proven = error === undefined ? undefined : error === ACCESS_DISALLOWED ? accessDisallowed(status, keyAccepted) : TYK_ERRORS[error];
  const outcome = proven ?? suggested;
  const authContext = outcome?.authContext ?? (oauthId !== undefined ? 'oauth2' : undefined);

  recordEvents(
    FORMAT,
    {
      // Tyk records no request id: the record's own facts name it, the key by its fingerprint only.
      // The timestamp has nanoseconds, so two requests rarely share all of these.
      recordKey: JSON.stringify([fields.timestamp, fields.ip_address, rawMethod, fields.raw_path, fields.path, apiId, status, fields.request_time_ms, fields.content_length, fields.host, keyFingerprint ?? '', instance ?? settings.instance ?? '']),
      time,
      method,
      path,
      route,
      status,
      // Records from Tyk's error path carry 0: the request never reached an upstream.
      latencyMs: integerIn(fields.request_time_ms, 0, 3_600_000) ?? 0,
      ...(bytesIn !== undefined ? { bytesIn } : {}),
      api,
      ...(instance !== undefined ? { instance } : {}),
      ...(consumerId !== undefined ? { consumerId } : {}),
      ...(ip !== undefined ? { clientIp: ip } : {}),
      ...(userAgent !== undefined ? { userAgent } : {}),
      groupKeys: { route, service: apiId, api: apiName, tags: stringsOf(fields.tags) },
      groupFields: { service: 'api_id', api: 'api_name' },
      labels: labels({ api_id: apiId, api_version: present(fields.api_version), org_id: present(fields.org_id), host: present(fields.host) }),
      policies:
        outcome === undefined
          ? []
          : [
              {
                kind: outcome.kind,
                name: outcome.name,
                outcome: 'fail',
                reason: outcome.reason,
                ...(authContext !== undefined ? { authContext } : {}),
                ...(proven === undefined ? { derived: 'status' as const } : {}),
              },
            ],
    },
    record,
    settings,
    result,
  );
}

/** The `tyk` format: Tyk Pump `kafka` pump analytics records. */
export const tykAdapter: GatewayAdapter = {
  format: FORMAT,
  description: 'Tyk Pump kafka pump analytics records (one JSON object per message); api_key is fingerprinted, never stored',
  translate(value, settings) {
    const result: AdapterResult = { events: [], rejected: [], skipped: [], droppedDerived: [] };
    const parsed = recordsOf(value);
    if ('error' in parsed) {
      result.rejected.push({ reason: 'adapter_unparseable', record: 0, message: `record 0: ${parsed.error}: expected a Tyk analytics record` });
      return result;
    }
    parsed.records.forEach((item, record) => translateRecord(item, record, settings, result));
    return result;
  },
};
