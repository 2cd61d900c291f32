/**
 * VIGIL_ADAPT_DERIVED_POLICIES across the six formats: a policy event resting on the HTTP status
 * alone (`derived: status`) is built for the kinds the setting names (`all` by default) and
 * dropped, and counted, for the others; proven policy events and invocations never change. A
 * service behind the gateway that reports its own outcomes through the SDK is otherwise heard twice.
 */
import { adapterOf, adapterSettingsOf } from '../../app';
import type { AdapterResult, DroppedDerived } from '../../ingest';
import { loadConfig } from '../../platform';
import type { VigilEventInput } from '../../schemas';
import { REFUSALS, apisixEntry, kongRecord } from '../../scripts/gateway-records';
import { expectContract } from '../support/adapter-events';
import { envoyOtelAttributes, istioRecord, ordersCall, otlpLogsMessage, tykErrorResponse, tykRecord, wso2Fault, wso2Line, wso2Response } from '../support/gateway-records';

const ENV = { VIGIL_ADAPT_SERVICE: 'edge', VIGIL_ADAPT_GROUPS: '{"default":"edge"}' };

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const lines = (records: readonly unknown[]): Buffer => Buffer.from(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
const otlpLog = (requestId: string, overrides: Record<string, string>) => ({
  time: 1_772_359_200_000,
  resource: { 'service.instance.id': 'envoy-a' },
  attributes: envoyOtelAttributes({ 'http.request.header.x-request-id': requestId, ...overrides }),
});

/** Per format: the raw messages, and the kinds of the derived and of the proven policy events they hold, in order. */
const cases: [format: string, messages: Buffer[], derived: string[], proven: string[]][] = [
  [
    'kong',
    [
      json([
        kongRecord(ordersCall({ requestId: 'k-401', status: 401 })),
        kongRecord(ordersCall({ requestId: 'k-401-key', status: 401, responseHeaders: REFUSALS.kongKeyAuth })),
        kongRecord(ordersCall({ requestId: 'k-403', status: 403, consumer: 'partner-acme' })),
        kongRecord(ordersCall({ requestId: 'k-429', status: 429 })),
        kongRecord(ordersCall({ requestId: 'k-403-anon', status: 403 })),
      ]),
    ],
    ['authn', 'authz', 'rate_limit', 'custom'],
    ['authn', 'authn'],
  ],
  [
    'apisix',
    [
      json([
        apisixEntry(ordersCall({ requestId: 'a-401', status: 401 })),
        apisixEntry(ordersCall({ requestId: 'a-401-key', status: 401, responseHeaders: REFUSALS.apisixKeyAuth })),
        apisixEntry(ordersCall({ requestId: 'a-403', status: 403, consumer: 'jack' })),
        apisixEntry(ordersCall({ requestId: 'a-429', status: 429 })),
        apisixEntry(ordersCall({ requestId: 'a-403-anon', status: 403 })),
      ]),
    ],
    ['authn', 'authz', 'rate_limit', 'custom'],
    ['authn', 'authn'],
  ],
  [
    'envoy',
    [
      lines([
        istioRecord({ request_id: 'e-401', response_code: '401' }),
        istioRecord({ request_id: 'e-429-rl', response_code: '429', response_flags: 'RL', response_code_details: 'request_rate_limited' }),
        istioRecord({ request_id: 'e-403', response_code: '403' }),
        istioRecord({ request_id: 'e-429', response_code: '429' }),
      ]),
    ],
    ['authn', 'authz', 'rate_limit'],
    ['rate_limit'],
  ],
  [
    'otlp',
    [
      otlpLogsMessage(
        [
          otlpLog('o-403', { 'http.response.status_code': '403' }),
          otlpLog('o-429-rl', { 'http.response.status_code': '429', 'envoy.response_flags': 'RL', 'envoy.response_code_details': 'request_rate_limited' }),
          otlpLog('o-401', { 'http.response.status_code': '401' }),
        ],
        'otlp_json',
      ),
    ],
    ['authz', 'authn'],
    ['rate_limit'],
  ],
  [
    'tyk',
    [
      json(tykRecord({ response_code: 401, raw_response: '' })),
      json(tykRecord({ response_code: 401, api_key: '', alias: '', raw_response: tykErrorResponse('401 Unauthorized', 'Authorization field missing') })),
      json(tykRecord({ response_code: 403, raw_response: '' })),
      json(tykRecord({ response_code: 429, raw_response: '' })),
    ],
    ['authn', 'authz', 'rate_limit'],
    ['authn'],
  ],
  // WSO2's fault events prove their category: nothing to drop, nothing changes.
  [
    'wso2',
    [
      Buffer.from(wso2Line('apim:response', wso2Response())),
      Buffer.from(wso2Line('apim:faulty', wso2Fault({ errorType: 'THROTTLED', errorMessage: 'API_LEVEL_LIMIT_EXCEEDED', errorCode: 900800, proxyResponseCode: 429 }))),
    ],
    [],
    ['rate_limit'],
  ],
];

/** Every message of a case through the adapter `vigil adapt` would build from this environment, results joined. */
function translate(format: string, messages: readonly Buffer[], derivedPolicies?: string): AdapterResult {
  const config = loadConfig(derivedPolicies === undefined ? ENV : { ...ENV, VIGIL_ADAPT_DERIVED_POLICIES: derivedPolicies });
  const adapter = adapterOf(config, format);
  if (adapter === undefined) throw new Error(`no ${format} adapter`);
  const joined: AdapterResult = { events: [], rejected: [], skipped: [], droppedDerived: [] };
  for (const message of messages) {
    const result = adapter.translate(message, adapterSettingsOf(config));
    joined.events.push(...result.events);
    joined.rejected.push(...result.rejected);
    joined.skipped.push(...result.skipped);
    joined.droppedDerived.push(...result.droppedDerived);
  }
  expect(joined.rejected).toEqual([]);
  expectContract(joined.events);
  return joined;
}

const isDerived = (event: VigilEventInput): boolean => event.labels?.derived !== undefined;
const kindsOf = (events: readonly VigilEventInput[]): string[] => events.map((event) => (event.family === 'policy' ? event.policy.kind : event.family));
const droppedKinds = (dropped: readonly DroppedDerived[]): string[] => dropped.map((entry) => entry.kind);

describe('VIGIL_ADAPT_DERIVED_POLICIES in every adapter', () => {
  it.each(cases)('%s: all (the default) builds the derived policy events, labelled derived: status, and drops none', (format, messages, derived, proven) => {
    const all = translate(format, messages);
    expect(kindsOf(all.events.filter(isDerived))).toEqual(derived);
    for (const event of all.events.filter(isDerived)) expect(event).toMatchObject({ family: 'policy', labels: { derived: 'status', adapter: format } });
    expect(kindsOf(all.events.filter((event) => event.family === 'policy' && !isDerived(event)))).toEqual(proven);
    expect(all.droppedDerived).toEqual([]);
    expect(translate(format, messages, 'all')).toEqual(all);
  });

  it.each(cases)('%s: none drops every derived policy event and counts it; proven policy events and invocations stay as they were', (format, messages, derived) => {
    const all = translate(format, messages);
    const none = translate(format, messages, 'none');
    expect(none.events).toEqual(all.events.filter((event) => !isDerived(event)));
    expect(droppedKinds(none.droppedDerived)).toEqual(derived);
    expect(none.skipped).toEqual(all.skipped);
  });

  it.each(cases.filter(([, , derived]) => derived.length > 1))('%s: a list of kinds builds the derived events of those kinds only', (format, messages, derived) => {
    const all = translate(format, messages);
    const [kept, ...left] = derived as [string, ...string[]];
    const some = translate(format, messages, ` ${kept} ,json_threat`);
    expect(some.events).toEqual(all.events.filter((event) => !isDerived(event) || (event.family === 'policy' && event.policy.kind === kept)));
    expect(droppedKinds(some.droppedDerived)).toEqual(left);
  });
});
