/**
 * `vigil adapt` on the real stack for the envoy, otlp (JSON and protobuf), wso2 and tyk formats:
 * each format's records go to a raw topic as the gateway (or the Collector, or a file shipper)
 * writes them; the adapt consumer translates them; the real pipeline indexes the events and runs
 * the default rules. Each block checks the documents, their policy outcomes, a rule the format
 * carries firing from its records alone, and that producing the records again adds no document.
 * Kong and APISIX have their own file (adapt-kong.test.ts), with the endpoint flood.
 */
import type { Message } from 'kafkajs';
import type { AnyValue } from '@opentelemetry/api-logs';
import { describeAdaptOnStack, type PolicyOutcome } from '../support/adapt-stack';
import { collectorJson, envoyOtelAttributes, istioRecord, otlpLogsMessage, tykErrorResponse, tykRecord, wso2Fault, wso2Line, wso2Response, type LogInput, type OtlpEncoding } from '../support/gateway-records';

jest.setTimeout(180_000);

/** The IP of each block's policy-outcome records, the brute forcer's and the flooding consumer's. */
const OUTCOMES_IP = '198.51.100.10';
const BRUTE_IP = '203.0.113.66';
const STORM_IP = '192.0.2.77';

const ago = (seconds: number): number => Date.now() - seconds * 1000;
const iso = (seconds: number): string => new Date(ago(seconds)).toISOString();
/** A request id unique to a block, a record kind and a number, UUID-shaped as gateways write them. */
const requestId = (tag: number, n: number): string => `${tag.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const fail = (kind: string, name: string, reason?: string): PolicyOutcome => ({ kind, name, outcome: 'fail', ...(reason !== undefined ? { reason } : {}), eventOutcome: 'failure' });
/** `size` records per message, newline-separated as a file shipper batches log lines. */
const lines = (records: readonly string[], size: number, key: string): Message[] => {
  const messages: Message[] = [];
  for (let start = 0; start < records.length; start += size) messages.push({ key, value: records.slice(start, start + size).join('\n') });
  return messages;
};
const adaptEnv = (service: string, groups: object): Record<string, string> => ({ VIGIL_ADAPT_SERVICE: service, VIGIL_ADAPT_ENVIRONMENT: 'test', VIGIL_ADAPT_GROUPS: JSON.stringify(groups) });

describeAdaptOnStack('vigil adapt --format envoy (Istio JSON access log) on the real stack', () => {
  const envoy = (n: number, seconds: number, overrides: Record<string, string>): string =>
    JSON.stringify(istioRecord({ start_time: iso(seconds), request_id: requestId(0xe1, n), downstream_remote_address: `${OUTCOMES_IP}:51234`, ...overrides }));
  const outcomes = [
    envoy(1, 90, {}),
    envoy(2, 89, { response_code: '401', response_code_details: 'jwt_authn_access_denied{Jwt_is_expired}' }),
    envoy(3, 88, { response_code: '403', response_flags: 'UAEX', response_code_details: 'ext_authz_denied' }),
    envoy(4, 87, { response_code: '429', response_flags: 'RL', response_code_details: 'request_rate_limited' }),
  ];
  // 25 jwt_authn denials from one IP within two minutes: over authn-failures-per-ip's 20 in 5m.
  const bruteForce = Array.from({ length: 25 }, (_, n) =>
    envoy(100 + n, 150 - n * 4, { route_name: 'login-route', method: 'POST', path: '/accounts/login', response_code: '401', response_code_details: 'jwt_authn_access_denied{Jwt_verification_fails}', downstream_remote_address: `${BRUTE_IP}:40000` }),
  );
  return {
    format: 'envoy',
    env: adaptEnv('edge-envoy-it', { routes: { 'orders-route': 'orders', 'login-route': 'accounts' }, default: 'public' }),
    messages: [...lines(outcomes, 1, 'envoy-1'), ...lines(bruteForce, 5, 'envoy-1')],
    events: 4 + 3 + 25 * 2,
    outcomesIp: OUTCOMES_IP,
    outcomes: [fail('authn', 'jwt-authn', 'Jwt_is_expired'), fail('authz', 'ext-authz', 'ext_authz_denied'), fail('rate_limit', 'envoy-ratelimit', 'request_rate_limited')],
    rules: [['authn-failures-per-ip', 'client.ip', BRUTE_IP]],
  };
});

for (const encoding of ['otlp_json', 'otlp_proto'] as const satisfies readonly OtlpEncoding[]) {
  describeAdaptOnStack(`vigil adapt --format otlp (${encoding}, Envoy's OpenTelemetry access logger) on the real stack`, () => {
    const tag = encoding === 'otlp_json' ? 0x01 : 0x02;
    const resource = { 'service.name': 'edge-envoy', 'service.instance.id': `envoy-${encoding}` };
    const log = (n: number, seconds: number, overrides: Record<string, AnyValue>): LogInput => ({
      time: ago(seconds),
      resource,
      attributes: envoyOtelAttributes({ 'http.request.header.x-request-id': requestId(tag, n), 'client.address': OUTCOMES_IP, ...overrides }),
    });
    const message = (inputs: readonly LogInput[]): Message => {
      const bytes = otlpLogsMessage(inputs, encoding);
      // The Collector's JSON spells int64s as strings; its protobuf is what the SDK serialises.
      return { key: 'collector-1', value: encoding === 'otlp_json' ? collectorJson(bytes) : bytes };
    };
    const outcomes = [
      // A verified JWT subject on Envoy's own record proves a jwt-authn pass.
      log(1, 90, { 'enduser.id': 'alice' }),
      log(2, 89, { 'http.response.status_code': '401', 'envoy.response_code_details': 'jwt_authn_access_denied{Jwt_is_expired}' }),
      log(3, 88, { 'http.response.status_code': '403', 'envoy.response_code_details': 'rbac_access_denied_matched_policy[deny-guests]' }),
      log(4, 87, { 'http.response.status_code': '429', 'envoy.response_flags': 'RL', 'envoy.response_code_details': 'local_rate_limited', 'vigil.consumer.id': 'partner-acme' }),
    ];
    // 60 rate-limit refusals of one consumer in 30 s, 20 log records per Collector message: over
    // rate-limit-storm-per-consumer's 50 in 1m.
    const storm = Array.from({ length: 60 }, (_, n) =>
      log(100 + n, 45 - n * 0.5, { 'client.address': STORM_IP, 'url.path': '/catalog', 'envoy.route_name': 'catalog', 'http.response.status_code': '429', 'envoy.response_flags': 'RL', 'envoy.response_code_details': 'request_rate_limited', 'vigil.consumer.id': 'partner-flood' }),
    );
    return {
      format: 'otlp',
      env: adaptEnv('edge-otel-it', { routes: { accounts: 'accounts', catalog: 'public' }, default: 'public' }),
      messages: [message(outcomes), message(storm.slice(0, 20)), message(storm.slice(20, 40)), message(storm.slice(40))],
      events: 4 + 4 + 60 * 2,
      outcomesIp: OUTCOMES_IP,
      outcomes: [
        { kind: 'authn', name: 'jwt-authn', outcome: 'pass', eventOutcome: 'success' },
        fail('authn', 'jwt-authn', 'Jwt_is_expired'),
        fail('authz', 'rbac:deny-guests', 'rbac_access_denied'),
        fail('rate_limit', 'local-ratelimit', 'local_rate_limited'),
      ],
      rules: [['rate-limit-storm-per-consumer', 'actor.consumerId', 'partner-flood']],
    };
  });
}

// A service behind the mesh that reports its own outcomes through the SDK: the policy events its
// own 401, 403 and 429 would make here (derived from the status) are left out and counted; what
// Envoy proves still arrives and still fires the rules.
describeAdaptOnStack('vigil adapt --format envoy with VIGIL_ADAPT_DERIVED_POLICIES=none on the real stack', () => {
  const envoy = (n: number, seconds: number, overrides: Record<string, string>): string =>
    JSON.stringify(istioRecord({ start_time: iso(seconds), request_id: requestId(0xe5, n), downstream_remote_address: `${OUTCOMES_IP}:51234`, ...overrides }));
  const outcomes = [
    envoy(1, 90, { response_code: '401' }),
    envoy(2, 89, { response_code: '403' }),
    envoy(3, 88, { response_code: '429' }),
    envoy(4, 87, { response_code: '401', response_code_details: 'jwt_authn_access_denied{Jwt_is_expired}' }),
  ];
  const bruteForce = Array.from({ length: 25 }, (_, n) =>
    envoy(100 + n, 150 - n * 4, { route_name: 'login-route', method: 'POST', path: '/accounts/login', response_code: '401', response_code_details: 'jwt_authn_access_denied{Jwt_verification_fails}', downstream_remote_address: `${BRUTE_IP}:40000` }),
  );
  return {
    format: 'envoy',
    env: { ...adaptEnv('edge-envoy-it', { routes: { 'orders-route': 'orders', 'login-route': 'accounts' }, default: 'public' }), VIGIL_ADAPT_DERIVED_POLICIES: 'none' },
    messages: [...lines(outcomes, 1, 'envoy-1'), ...lines(bruteForce, 5, 'envoy-1')],
    events: 4 + 1 + 25 * 2,
    derivedDropped: { authn: 1, authz: 1, rate_limit: 1 },
    outcomesIp: OUTCOMES_IP,
    outcomes: [fail('authn', 'jwt-authn', 'Jwt_is_expired')],
    rules: [['authn-failures-per-ip', 'client.ip', BRUTE_IP]],
  };
});

describeAdaptOnStack('vigil adapt --format wso2 (apim_metrics.log lines from the ELK reporter) on the real stack', () => {
  const record = (n: number, seconds: number, overrides: Record<string, unknown>): Record<string, unknown> => ({
    correlationId: requestId(0x50, n),
    requestTimestamp: iso(seconds),
    userIp: OUTCOMES_IP,
    ...overrides,
  });
  // Fault events as the ELK reporter logs them carry no method or IP; these come from a custom
  // analytics data provider that adds apiMethod and userIp to `properties` (docs/gateways/wso2.md).
  const faultRecord = (n: number, seconds: number, overrides: Record<string, unknown>, ip = OUTCOMES_IP): Record<string, unknown> =>
    wso2Fault({ correlationId: requestId(0x50, n), requestTimestamp: iso(seconds), ...overrides }, { apiMethod: 'POST', userIp: ip });
  const outcomes = [
    wso2Line('apim:response', wso2Response(record(1, 90, {}))),
    wso2Line('apim:faulty', faultRecord(2, 89, {})),
    wso2Line('apim:faulty', faultRecord(3, 88, { errorMessage: 'AUTHORIZATION_FAILURE', errorCode: 900910, proxyResponseCode: 403, applicationId: 'app-acme' })),
    wso2Line('apim:faulty', faultRecord(4, 87, { errorType: 'THROTTLED', errorMessage: 'API_LEVEL_LIMIT_EXCEEDED', errorCode: 900800, proxyResponseCode: 429, applicationId: 'app-acme' })),
  ];
  // 25 AUTHENTICATION_FAILURE faults from one IP in two minutes.
  const bruteForce = Array.from({ length: 25 }, (_, n) => wso2Line('apim:faulty', faultRecord(100 + n, 150 - n * 4, {}, BRUTE_IP)));
  return {
    format: 'wso2',
    env: adaptEnv('apim-gw-it', { apis: { PizzaShackAPI: 'food' } }),
    messages: [...lines(outcomes, 1, 'apim-gw-1'), ...lines(bruteForce, 5, 'apim-gw-1')],
    events: 4 + 3 + 25 * 2,
    outcomesIp: OUTCOMES_IP,
    outcomes: [fail('authn', 'AUTHENTICATION_FAILURE', '900901'), fail('authz', 'AUTHORIZATION_FAILURE', '900910'), fail('rate_limit', 'API_LEVEL_LIMIT_EXCEEDED', '900800')],
    rules: [['authn-failures-per-ip', 'client.ip', BRUTE_IP]],
  };
});

describeAdaptOnStack("vigil adapt --format tyk (Tyk Pump's kafka pump) on the real stack", () => {
  // Tyk logs no request id: the adapter hashes the record's facts, so each record differs in time.
  const record = (seconds: number, overrides: Record<string, unknown>): Message => ({
    key: 'tyk-gw-1',
    value: JSON.stringify(tykRecord({ timestamp: iso(seconds), ip_address: OUTCOMES_IP, ...overrides })),
  });
  const outcomes = [
    record(90, {}),
    record(89, { response_code: 401, api_key: '', alias: '', raw_response: tykErrorResponse('401 Unauthorized', 'Authorization field missing') }),
    record(88, { response_code: 429, raw_response: tykErrorResponse('429 Too Many Requests', 'Rate Limit Exceeded') }),
    record(87, { response_code: 403, raw_response: tykErrorResponse('403 Forbidden', 'Quota exceeded') }),
  ];
  // 60 rate-limit refusals of one keyed consumer in 30 s.
  const storm = Array.from({ length: 60 }, (_, n) =>
    record(45 - n * 0.5, { ip_address: STORM_IP, alias: 'partner-flood', response_code: 429, raw_response: tykErrorResponse('429 Too Many Requests', 'Rate Limit Exceeded') }),
  );
  return {
    format: 'tyk',
    env: adaptEnv('tyk-edge-it', { apis: { 'Payments API': 'payments' } }),
    messages: [...outcomes, ...storm],
    events: 4 + 3 + 60 * 2,
    outcomesIp: OUTCOMES_IP,
    outcomes: [fail('authn', 'tyk-auth', 'credentials_missing'), fail('rate_limit', 'tyk-quota', 'quota_exceeded'), fail('rate_limit', 'tyk-rate-limit', 'rate_limit_exceeded')],
    rules: [['rate-limit-storm-per-consumer', 'actor.consumerId', 'partner-flood']],
  };
});
