/**
 * Records per second through an adapter's `translate` (decode, interpret, build contract events;
 * no I/O), for OTLP logs in both encodings and Envoy JSON lines. Each is printed as a ratio
 * against a baseline measured in the same run on the same records: JSON.parse of the JSON bytes
 * (for otlp_proto, of the otlp_json encoding of the same records), the least any consumer of
 * these messages must do. For otlp_proto, the generated protobuf decode alone is shown too.
 *
 *   npx tsx bench/adapters-translate.bench.ts [-- --records N --batch N --rounds N]
 */
import { performance } from 'node:perf_hooks';
import { groupMap, type AdapterSettings, type GatewayAdapter } from '../ingest/adapters';
import { envoyAdapter } from '../ingest/adapters/envoy';
import { otlpAdapter } from '../ingest/adapters/otlp';
import { decodeOtlp } from '../ingest/adapters/otlp-decode';
import { envoyOtelAttributes, istioRecord, otlpLogsMessage, type LogInput } from '../test/support/gateway-records';
import { positiveInteger } from './arguments';

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const RECORDS = positiveInteger(argument('--records'), 20_000, '--records');
const BATCH = positiveInteger(argument('--batch'), 100, '--batch');
const ROUNDS = positiveInteger(argument('--rounds'), 5, '--rounds');

const settings: AdapterSettings = { service: 'bench-edge', kind: 'gateway', groups: groupMap({ default: 'bench' }) };
const T0 = Date.parse('2026-03-01T00:00:00Z');

/** One in ten a policy outcome (UAEX, RL, jwt failure), the rest successes, as on a busy edge. */
function outcome(index: number): { status: string; flags: string; details: string } {
  switch (index % 30) {
    case 3:
      return { status: '403', flags: 'UAEX', details: 'ext_authz_denied' };
    case 13:
      return { status: '429', flags: 'RL', details: 'local_rate_limited' };
    case 23:
      return { status: '401', flags: '-', details: 'jwt_authn_access_denied{Jwt_is_expired}' };
    default:
      return { status: '200', flags: '-', details: 'via_upstream' };
  }
}

const batches = Array.from({ length: Math.ceil(RECORDS / BATCH) }, (_, batch) => Array.from({ length: BATCH }, (_unused, offset) => batch * BATCH + offset));

const otlpInputs = batches.map((indexes) =>
  indexes.map((index): LogInput => {
    const { status, flags, details } = outcome(index);
    return {
      time: T0 + index,
      resource: { 'service.name': 'edge-envoy', 'service.instance.id': `envoy-${index % 4}` },
      attributes: envoyOtelAttributes({
        'http.request.header.x-request-id': `req-${index}`,
        'http.response.status_code': status,
        'envoy.response_flags': flags,
        'envoy.response_code_details': details,
        'client.address': `203.0.113.${index % 250}`,
      }),
    };
  }),
);
const otlpJson = otlpInputs.map((inputs) => otlpLogsMessage(inputs, 'otlp_json'));
const otlpProto = otlpInputs.map((inputs) => otlpLogsMessage(inputs, 'otlp_proto'));
const envoyLines = batches.map((indexes) =>
  Buffer.from(
    indexes
      .map((index) => {
        const { status, flags, details } = outcome(index);
        return JSON.stringify(istioRecord({ request_id: `req-${index}`, response_code: status, response_flags: flags, response_code_details: details, start_time: new Date(T0 + index).toISOString() }));
      })
      .join('\n'),
  ),
);
const envoyText = envoyLines.map((message) => message.toString('utf8'));

function best(run: () => number): { millis: number; events: number } {
  let millis = Infinity;
  let events = 0;
  for (let round = 0; round < ROUNDS; round += 1) {
    const started = performance.now();
    events = run();
    millis = Math.min(millis, performance.now() - started);
  }
  return { millis, events };
}

const translateAll = (adapter: GatewayAdapter, messages: readonly Buffer[]) => (): number => {
  let events = 0;
  for (const message of messages) events += adapter.translate(message, settings).events.length;
  return events;
};
const parseJson = (messages: readonly Buffer[]) => (): number => {
  let parsed = 0;
  for (const message of messages) parsed += JSON.parse(message.toString('utf8')) === null ? 0 : 1;
  return parsed;
};
const parseLines = (): number => {
  let parsed = 0;
  for (const text of envoyText) for (const line of text.split('\n')) parsed += JSON.parse(line) === null ? 0 : 1;
  return parsed;
};
const decodeProto = (): number => {
  let items = 0;
  for (const message of otlpProto) items += decodeOtlp(message, 'logs').items.length;
  return items;
};

const records = batches.length * BATCH;
const perSecond = (millis: number): string => `${Math.round((records / millis) * 1000).toLocaleString('en-US')}`.padStart(10);

console.log(`adapters translate: ${records} records in messages of ${BATCH}, best of ${ROUNDS} rounds, each case alternating with its baseline; ratio = time / JSON.parse of the same records' JSON bytes\n`);
console.log('case'.padEnd(46) + 'records/s'.padStart(10) + '   ratio   events');
const rows: [string, () => number, () => number][] = [
  ['otlp_json   translate', translateAll(otlpAdapter, otlpJson), parseJson(otlpJson)],
  ['otlp_proto  protobuf decode only (generated code)', decodeProto, parseJson(otlpJson)],
  ['otlp_proto  translate', translateAll(otlpAdapter, otlpProto), parseJson(otlpJson)],
  ['envoy       translate (NDJSON lines)', translateAll(envoyAdapter, envoyLines), parseLines],
];
/** Baseline and case alternate round by round, so a neighbour's load on the shared machine hits both alike. */
function paired(run: () => number, baselineRun: () => number): { measured: { millis: number; events: number }; baseline: { millis: number } } {
  const measured = { millis: Infinity, events: 0 };
  const baseline = { millis: Infinity };
  for (let round = 0; round < ROUNDS; round += 1) {
    let started = performance.now();
    baselineRun();
    baseline.millis = Math.min(baseline.millis, performance.now() - started);
    started = performance.now();
    measured.events = run();
    measured.millis = Math.min(measured.millis, performance.now() - started);
  }
  return { measured, baseline };
}

for (const [name, run, baselineRun] of rows) {
  const { measured, baseline } = paired(run, baselineRun);
  console.log(`${name.padEnd(46)}${perSecond(measured.millis)}   ${(measured.millis / baseline.millis).toFixed(2).padStart(5)}x   ${measured.events}`);
}
console.log(`\n${'JSON.parse baseline (otlp_json bytes)'.padEnd(46)}${perSecond(best(parseJson(otlpJson)).millis)}`);
console.log(`${'JSON.parse baseline (envoy lines)'.padEnd(46)}${perSecond(best(parseLines).millis)}`);
