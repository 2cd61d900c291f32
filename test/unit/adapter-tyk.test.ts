import { eventId, groupMap, secretFingerprint, type AdapterSettings } from '../../ingest/adapters';
import { tykAdapter } from '../../ingest/adapters/tyk';
import { TYK_KEY as KEY, tykErrorResponse as errorResponse, tykRecord as tyk } from '../support/gateway-records';
import { expectContract } from '../support/adapter-events';

/**
 * Fixtures built from the record Tyk Pump's kafka pump writes (`pumps/kafka.go`: one JSON object
 * per message) and the error bodies Tyk's gateway returns (`gateway/handler_error.go`,
 * `mw_auth_key.go`).
 */

const settings: AdapterSettings = {
  service: 'tyk-edge',
  kind: 'gateway',
  groups: groupMap({ apis: { 'Payments API': 'payments' }, tags: { internal: 'internal' } }),
};

function bytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** The id the adapter gives a record's event: Tyk has no request id, so a hash of the record's facts. */
function idOf(record: Record<string, unknown>, suffix: 'inv' | 'authn' | 'authz' | 'rate_limit'): string {
  const fallback = JSON.stringify([
    record.timestamp,
    record.ip_address,
    record.method,
    record.raw_path,
    record.path,
    record.api_id,
    record.response_code,
    record.request_time_ms,
    record.content_length,
    record.host,
    typeof record.api_key === 'string' && record.api_key !== '' ? secretFingerprint(record.api_key) : '',
    '',
  ]);
  return eventId('tyk', undefined, fallback, suffix);
}

describe('tyk adapter', () => {
  it('turns a success into one invocation: the key alias as consumer, the tracked path as route, no secret anywhere', () => {
    const record = tyk();
    const result = tykAdapter.translate(bytes(record), settings);
    expect(result).toEqual({
      events: [
        {
          id: idOf(record, 'inv'),
          schemaVersion: 1,
          family: 'invocation',
          time: '2026-11-27T10:00:00.812Z',
          source: { service: 'tyk-edge', kind: 'gateway' },
          correlation: {},
          actor: { consumerId: 'mobile-app' },
          client: { ip: '203.0.113.7', userAgent: 'okhttp/4.12' },
          labels: { adapter: 'tyk', api_id: '727dad853a8a45f64ab981154d1ffdad', api_version: 'Default', org_id: '5e9d9544a1dcd60001d0ed20', host: 'payments.internal:8080' },
          invocation: {
            resource: { api: 'Payments API', method: 'POST', path: '/payments/123' },
            route: '/payments/{id}',
            status: 200,
            latencyMs: 42,
            bytesIn: 12,
            group: 'payments',
          },
        },
      ],
      rejected: [],
      skipped: [],
      droppedDerived: [],
    });
    const text = JSON.stringify(result);
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(String(record.raw_request));
    expect(text).not.toContain('amount');
    expectContract(result.events);
  });

  it('names a caller without alias or OAuth client by the fingerprint of its key, never the key', () => {
    const result = tykAdapter.translate(bytes(tyk({ alias: '' })), settings);
    expect(result.events[0]?.actor).toEqual({ consumerId: secretFingerprint(KEY) });
    expect(JSON.stringify(result)).not.toContain(KEY);
  });

  it('takes the OAuth client as consumer and authContext when there is one', () => {
    const record = tyk({ oauth_id: 'client-42', response_code: 403, raw_response: errorResponse('403 Forbidden', 'Key not authorised') });
    const result = tykAdapter.translate(bytes(record), settings);
    expect(result.events[1]).toMatchObject({ actor: { consumerId: 'client-42' }, policy: { kind: 'authn', reason: 'key_not_authorised', authContext: 'oauth2' } });
    expectContract(result.events);
  });

  it('proves a 401 from Tyk\'s own "Authorization field missing" body: authn fail, not labelled derived', () => {
    const record = tyk({ response_code: 401, api_key: '', alias: '', request_time_ms: 0, raw_response: errorResponse('401 Unauthorized', 'Authorization field missing') });
    const result = tykAdapter.translate(bytes(record), settings);
    expect(result.events.map((event) => event.id)).toEqual([idOf(record, 'inv'), idOf(record, 'authn')]);
    expect(result.events[1]).toEqual({
      id: idOf(record, 'authn'),
      schemaVersion: 1,
      family: 'policy',
      time: '2026-11-27T10:00:00.812Z',
      source: { service: 'tyk-edge', kind: 'gateway' },
      correlation: {},
      actor: {},
      client: { ip: '203.0.113.7', userAgent: 'okhttp/4.12' },
      labels: { adapter: 'tyk', api_id: '727dad853a8a45f64ab981154d1ffdad', api_version: 'Default', org_id: '5e9d9544a1dcd60001d0ed20', host: 'payments.internal:8080' },
      policy: {
        kind: 'authn',
        name: 'tyk-auth',
        outcome: 'fail',
        reason: 'credentials_missing',
        group: 'payments',
        resource: { api: 'Payments API', method: 'POST', path: '/payments/123' },
      },
    });
    expectContract(result.events);
  });

  // Tyk answers an unknown or invalid key and a valid key without rights to the API with the same
  // 403 "Access to this API has been disallowed" (gateway/mw_auth_key.go initAuthKeyErrors,
  // gateway/mw_access_rights.go). Only a key Tyk found has a session, and only a session puts an
  // alias, an OAuth client or pol-/dev- tags into the record (gateway/handler_error.go).
  it('proves a 403 "Access to this API has been disallowed" for a key Tyk did not find as an authn failure', () => {
    const result = tykAdapter.translate(bytes(tyk({ alias: '', tags: [], response_code: 403, raw_response: errorResponse('403 Forbidden', 'Access to this API has been disallowed') })), settings);
    expect(result.events[1]).toMatchObject({ family: 'policy', policy: { kind: 'authn', name: 'tyk-auth', outcome: 'fail', reason: 'key_not_found_or_invalid' } });
    expect(result.events[1]?.labels?.derived).toBeUndefined();
  });

  it.each([
    ['an alias', { alias: 'mobile-app' }],
    ['a policy tag', { alias: '', tags: ['pol-gold'] }],
  ])('proves a 403 "Access to this API has been disallowed" for a key with a session (%s) as an authz failure, not authn', (_what, session) => {
    const record = tyk({ ...session, response_code: 403, raw_response: errorResponse('403 Forbidden', 'Access to this API has been disallowed') });
    const result = tykAdapter.translate(bytes(record), settings);
    expect(result.events.map((event) => event.id)).toEqual([idOf(record, 'inv'), idOf(record, 'authz')]);
    expect(result.events[1]).toMatchObject({ policy: { kind: 'authz', name: 'tyk-access-rights', outcome: 'fail', reason: 'api_access_disallowed' } });
    expect(result.events[1]?.labels?.derived).toBeUndefined();
    expectContract(result.events);
  });

  it.each([
    [401, {}, 'authn', 'http-401', 'unauthorized'],
    [403, { alias: '', tags: [] }, 'authn', 'http-403', 'forbidden'],
    [429, {}, 'rate_limit', 'http-429', 'too_many_requests'],
  ] as const)('derives %d without a Tyk error body from the status alone, labelled derived: status', (status, more, kind, name, reason) => {
    const record = tyk({ ...more, response_code: status, raw_response: '' });
    const result = tykAdapter.translate(bytes(record), settings);
    expect(result.events.map((event) => event.id)).toEqual([idOf(record, 'inv'), idOf(record, kind)]);
    expect(result.events[1]).toMatchObject({ labels: { adapter: 'tyk', derived: 'status' }, policy: { kind, name, outcome: 'fail', reason } });
    expectContract(result.events);
  });

  // Tyk's default records no raw_response: a bare 403 for a key Tyk accepted is a quota, access
  // rights or policy refusal, never a failed authentication.
  it.each([
    ['a key with an alias', { alias: 'mobile-app' }],
    ['a key with a policy tag', { alias: '', tags: ['pol-gold'] }],
    ['an OAuth client', { alias: '', oauth_id: 'client-42' }],
    ['no key at all', { alias: '', api_key: '', tags: [] }],
  ])('derives a bare 403 from %s as an authz failure, not authn', (_what, more) => {
    const record = tyk({ ...more, response_code: 403, raw_response: '' });
    const result = tykAdapter.translate(bytes(record), settings);
    expect(result.events.map((event) => event.id)).toEqual([idOf(record, 'inv'), idOf(record, 'authz')]);
    expect(result.events[1]).toMatchObject({ labels: { derived: 'status' }, policy: { kind: 'authz', name: 'http-403', outcome: 'fail', reason: 'forbidden' } });
    expectContract(result.events);
  });

  it('keeps the status derivation when the body is the upstream\'s, not one of Tyk\'s errors', () => {
    const result = tykAdapter.translate(bytes(tyk({ alias: '', tags: [], response_code: 403, raw_response: errorResponse('403 Forbidden', 'account frozen') })), settings);
    expect(result.events[1]).toMatchObject({ labels: { derived: 'status' }, policy: { kind: 'authn', name: 'http-403' } });
  });

  // gateway/mw_rate_limiting.go and mw_api_rate_limit.go write these through
  // BaseMiddleware.handleRateLimitFailure (a 429); the quota answer is a 403.
  it.each(['Rate Limit Exceeded', 'API Rate Limit Exceeded'])('proves a 429 from Tyk\'s "%s"', (text) => {
    const limited = tykAdapter.translate(bytes(tyk({ response_code: 429, raw_response: errorResponse('429 Too Many Requests', text) })), settings);
    expect(limited.events[1]).toMatchObject({ policy: { kind: 'rate_limit', name: 'tyk-rate-limit', reason: 'rate_limit_exceeded' } });
    expect(limited.events[1]?.labels?.derived).toBeUndefined();
  });

  it('proves a 403 "Key not authorized" (mw_jwt.go, spelt with a z) as a JWT authn failure', () => {
    const result = tykAdapter.translate(bytes(tyk({ alias: '', tags: [], response_code: 403, raw_response: errorResponse('403 Forbidden', 'Key not authorized') })), settings);
    expect(result.events[1]).toMatchObject({ policy: { kind: 'authn', name: 'tyk-auth', reason: 'key_not_authorised', authContext: 'jwt' } });
    expect(result.events[1]?.labels?.derived).toBeUndefined();
  });

  it('proves a quota from "Quota exceeded" (a 403) as a rate limit, whatever the session', () => {
    const quota = tykAdapter.translate(bytes(tyk({ response_code: 403, raw_response: errorResponse('403 Forbidden', 'Quota exceeded') })), settings);
    expect(quota.events[1]).toMatchObject({ policy: { kind: 'rate_limit', name: 'tyk-quota', reason: 'quota_exceeded' } });
    expect(quota.events[1]?.labels?.derived).toBeUndefined();
  });

  it('takes the path without its query, and the wire path as route when Tyk tracked none', () => {
    const result = tykAdapter.translate(bytes(tyk({ raw_path: '/payments/123?expand=all', path: '/payments/123?expand=all' })), settings);
    expect(result.events[0]).toMatchObject({ invocation: { resource: { path: '/payments/123' }, route: '/payments/123' } });
  });

  it('skips a method outside the contract and refuses a record with no method', () => {
    const result = tykAdapter.translate(bytes([tyk({ method: 'PROPFIND' }), tyk({ method: '' })]), settings);
    expect(result.events).toEqual([]);
    expect(result.skipped).toEqual([{ reason: 'method_unsupported', record: 0 }]);
    expect(result.rejected).toEqual([{ reason: 'adapter_unmapped', record: 1, message: 'record 1: no method' }]);
  });

  it('resolves a group by tag, and dead-letters a record nothing maps, naming what it looked up', () => {
    const byTag = tykAdapter.translate(bytes(tyk({ api_name: 'Ledger', tags: ['internal'] })), settings);
    expect(byTag.events[0]).toMatchObject({ invocation: { group: 'internal' } });
    const unmapped = tykAdapter.translate(bytes(tyk({ api_name: 'Ledger', api_id: 'abc', tags: ['x'] })), settings);
    expect(unmapped.rejected).toEqual([
      { reason: 'adapter_unmapped', record: 0, message: 'record 0: no group for route "/payments/{id}", service (api_id) "abc", api (api_name) "Ledger", tags ["x"] and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS' },
    ]);
  });

  it('gives a redelivered record the same ids and another record other ids', () => {
    const first = tykAdapter.translate(bytes(tyk()), settings);
    const again = tykAdapter.translate(bytes(tyk()), settings);
    const later = tykAdapter.translate(bytes(tyk({ timestamp: '2026-11-27T10:00:00.812345679Z' })), settings);
    expect(again.events.map((event) => event.id)).toEqual(first.events.map((event) => event.id));
    expect(later.events[0]?.id).not.toBe(first.events[0]?.id);
  });

  it('refuses a message that is not JSON, or not an object', () => {
    expect(tykAdapter.translate(new TextEncoder().encode('timestamp=1'), settings).rejected).toEqual([
      { reason: 'adapter_unparseable', record: 0, message: 'record 0: not JSON: expected a Tyk analytics record' },
    ]);
    expect(tykAdapter.translate(bytes(['x']), settings).rejected).toEqual([
      { reason: 'adapter_unparseable', record: 0, message: 'record 0: expected a Tyk analytics record (a JSON object)' },
    ]);
  });

  it('refuses a record missing what every event needs, naming the field, and keeps the others in the message', () => {
    const result = tykAdapter.translate(
      bytes([tyk({ raw_path: '', path: '' }), tyk({ timestamp: 'yesterday' }), tyk({ response_code: 0 }), tyk({ api_name: '', api_id: '' }), tyk()]),
      settings,
    );
    expect(result.rejected).toEqual([
      { reason: 'adapter_unmapped', record: 0, message: 'record 0: no path starting with "/" in raw_path or path' },
      { reason: 'adapter_unmapped', record: 1, message: 'record 1: no usable timestamp' },
      { reason: 'adapter_unmapped', record: 2, message: 'record 2: no response_code between 100 and 599' },
      { reason: 'adapter_unmapped', record: 3, message: 'record 3: names no API (api_name, api_id)' },
    ]);
    expect(result.events).toHaveLength(1);
  });

  it('leaves out an IP or User-Agent the contract would refuse, and an empty placeholder, rather than lose the record', () => {
    const result = tykAdapter.translate(bytes(tyk({ ip_address: '-', user_agent: 'bad\r\nagent', alias: '-' })), settings);
    expect(result.events[0]?.client).toEqual({});
    expect(result.events[0]?.actor).toEqual({ consumerId: secretFingerprint(KEY) });
    expectContract(result.events);
  });

  it('takes the instance from the pump\'s meta_data "instance" key', () => {
    const result = tykAdapter.translate(bytes(tyk({ instance: 'tyk-gw-2' })), settings);
    expect(result.events[0]?.source).toEqual({ service: 'tyk-edge', kind: 'gateway', instance: 'tyk-gw-2' });
  });
});
