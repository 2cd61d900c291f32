/**
 * The `wso2` and `tyk` adapters' translate, per record, without I/O: records per second on one
 * core, and the ratio against a baseline measured in the same run on the same bytes (JSON.parse
 * + JSON.stringify, the least any consumer of the raw topic must do). Absolute times on a shared
 * machine move; the ratio is what to compare.
 *
 *   npx tsx bench/wso2-tyk-adapters.bench.ts
 */
import { performance } from 'node:perf_hooks';
import { groupMap, type AdapterSettings, type GatewayAdapter } from '../ingest/adapters';
import { tykAdapter } from '../ingest/adapters/tyk';
import { wso2Adapter } from '../ingest/adapters/wso2';

const RECORDS = 20_000;
const ROUNDS = 5;
const settings: AdapterSettings = { service: 'bench-gw', kind: 'gateway', groups: groupMap({ default: 'bench' }) };

/** One in ten requests refused: auth failures and throttling, as a busy edge sees them. */
function wso2Messages(): Uint8Array[] {
  return Array.from({ length: RECORDS }, (_, index) => {
    const common = {
      apiName: 'PizzaShackAPI',
      apiVersion: '1.0.0',
      apiId: '6b7b6d3e-1d2a-4c1f-9d6c-2f0a1b2c3d4e',
      apiMethod: index % 3 === 0 ? 'POST' : 'GET',
      apiContext: '/pizzashack/1.0.0',
      correlationId: `c0ffee00-0000-4000-8000-${index.toString(16).padStart(12, '0')}`,
      keyType: 'PRODUCTION',
      requestTimestamp: new Date(1_795_000_000_000 + index).toISOString(),
      userIp: `203.0.113.${index % 250}`,
      applicationId: `app-${index % 40}`,
      userName: `user-${index % 500}@carbon.super`,
      userAgent: 'Chrome',
      platform: 'Mac OS X',
    };
    const fault = index % 10 === 0;
    const properties = fault
      ? { ...common, errorType: index % 20 === 0 ? 'AUTH' : 'THROTTLED', errorMessage: index % 20 === 0 ? 'AUTHENTICATION_FAILURE' : 'API_LEVEL_LIMIT_EXCEEDED', errorCode: 900901, proxyResponseCode: 401, targetResponseCode: 0 }
      : { ...common, apiResourceTemplate: '/order/{orderId}', proxyResponseCode: 200, targetResponseCode: 200, responseLatency: 40, backendLatency: 30, destination: 'https://backend.internal:9443/api/' };
    const line = `[2026-11-27 10:00:00,812]  INFO - ELKCounterMetric apimMetrics: ${fault ? 'apim:faulty' : 'apim:response'}, properties :${JSON.stringify(properties)}`;
    // As Filebeat ships it: the line in an envelope.
    return new TextEncoder().encode(JSON.stringify({ '@timestamp': common.requestTimestamp, message: line, host: { name: 'apim-gw-1' } }));
  });
}

function tykMessages(): Uint8Array[] {
  const denied = Buffer.from('HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{"error": "Access to this API has been disallowed"}').toString('base64');
  return Array.from({ length: RECORDS }, (_, index) => {
    const status = index % 10 === 0 ? 403 : index % 10 === 1 ? 429 : 200;
    return new TextEncoder().encode(
      JSON.stringify({
        timestamp: new Date(1_795_000_000_000 + index).toISOString(),
        method: 'GET',
        path: '/payments/{id}',
        raw_path: `/payments/${index}`,
        response_code: status,
        alias: `app-${index % 40}`,
        api_key: `key-${index % 40}-5e9d9544a1dcd60001d0ed20a6ab7765`,
        api_version: 'Default',
        api_name: 'Payments API',
        api_id: '727dad853a8a45f64ab981154d1ffdad',
        org_id: '5e9d9544a1dcd60001d0ed20',
        oauth_id: '',
        raw_request: '',
        request_time_ms: status === 200 ? 42 : 0,
        raw_response: status === 403 ? denied : '',
        ip_address: `203.0.113.${index % 250}`,
        host: 'payments.internal:8080',
        content_length: 0,
        user_agent: 'okhttp/4.12',
        tags: [],
      }),
    );
  });
}

function best(run: () => void): number {
  let fastest = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now();
    run();
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

function measure(adapter: GatewayAdapter, messages: readonly Uint8Array[]): void {
  const decoder = new TextDecoder();
  let events = 0;
  const baseline = best(() => {
    for (const message of messages) JSON.stringify(JSON.parse(decoder.decode(message)));
  });
  const translate = best(() => {
    events = 0;
    for (const message of messages) events += adapter.translate(message, settings).events.length;
  });
  const perSecond = Math.round((messages.length / translate) * 1000);
  console.log(
    `${adapter.format.padEnd(5)} ${messages.length} records → ${events} events: ${translate.toFixed(0)} ms, ${perSecond.toLocaleString('en')} records/s on one core; ` +
      `baseline (parse + stringify) ${baseline.toFixed(0)} ms; ratio ${(translate / baseline).toFixed(2)}×`,
  );
}

measure(wso2Adapter, wso2Messages());
measure(tykAdapter, tykMessages());
