import { contractMethod, splitUri } from './common';
import { clientIp, identifierText, integerIn, isoTime, labels, objectOf, parseJson, pathText, present, userAgentText } from './fields';
import { recordEvents, type PolicySignal } from './record-events';
import type { AdapterResult, AdapterSettings, GatewayAdapter } from './types';

/**
 * WSO2 API Manager 4.x analytics events, as the ELK reporter (`[apim.analytics] type = "elk"`)
 * logs them to `repository/logs/apim_metrics.log` and a file shipper carries them to Kafka:
 *
 * `... apimMetrics: apim:response, properties :{"apiName":"PizzaShackAPI",...}`
 *
 * A message may be the bare line, a Filebeat or Fluent Bit JSON envelope holding it in `message`
 * (or `log`), a JSON array of either, or several of either one per line. Facts from
 * `wso2/apim-analytics-publisher` (`reporter/elk/ELKCounterMetric.java`, `ELKMetricEventBuilder.java`,
 * `GenericInputValidator.java`) and `wso2/carbon-apimgt` (`FaultCategory`, `FaultSubCategories`).
 *
 * A fault event is thinner than a response: `ELKMetricEventBuilder.buildEvent` keeps only the keys
 * of `elkFaultEventSchema` (GenericInputValidator.java), which has no apiMethod, userIp,
 * userAgentHeader, apiContext or apiResourceTemplate. The gateway's data provider puts apiContext
 * and userName into the nested `properties` object, and a custom analytics data provider can add
 * more there (WSO2's "Publishing Custom Analytics Events Data"); so every field is read from the
 * top level first, then from `properties`.
 */

const FORMAT = 'wso2';

/** `apimMetrics: <event name>, properties :<json>`, the one shape ELKCounterMetric logs. */
const METRIC_LINE = /apimMetrics:\s*([^,\s]+)\s*,\s*properties\s*:\s*(\{.*\})\s*$/;

/** A line's text and where it came from: the envelope's host names the instance. */
interface Line {
  text: string;
  instance?: string;
}

type Outcome = { line: Line } | { error: string };

/** Every line in a message, in order: one record each. */
function linesOf(value: Uint8Array): Outcome[] {
  const text = new TextDecoder().decode(value).trim();
  if (text === '') return [];
  const whole = text.startsWith('{') || text.startsWith('[') ? parseJson(text) : undefined;
  if (whole !== undefined) {
    return (Array.isArray(whole.value) ? (whole.value as unknown[]) : [whole.value]).map(lineFrom);
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      if (!line.startsWith('{')) return { line: { text: line } };
      const parsed = parseJson(line);
      return parsed === undefined ? { error: 'a line starts with "{" but is not JSON' } : lineFrom(parsed.value);
    });
}

/**
 * What WSO2 writes where it knows no user or application. Kept as an id, every unauthenticated
 * failure would count against one "user" called anonymous and fire the per-user rules.
 */
const PLACEHOLDERS = new Set(['anonymous', 'unknown', 'n/a', 'null']);

function known(value: unknown): string | undefined {
  const text = identifierText(value);
  return text !== undefined && !PLACEHOLDERS.has(text.toLowerCase()) ? text : undefined;
}

/** A bare line (a JSON string), or a shipper's envelope: Filebeat's `message`, Fluent Bit's `log`. */
function lineFrom(item: unknown): Outcome {
  if (typeof item === 'string') return { line: { text: item } };
  const envelope = objectOf(item);
  if (envelope === undefined) return { error: 'expected a log line or a JSON object holding one in "message" or "log"' };
  const text = typeof envelope.message === 'string' ? envelope.message : typeof envelope.log === 'string' ? envelope.log : undefined;
  if (text === undefined) return { error: 'a JSON envelope without a "message" or "log" text field' };
  const instance = identifierText(objectOf(envelope.host)?.name) ?? identifierText(objectOf(envelope.agent)?.hostname) ?? identifierText(envelope.hostname);
  return { line: { text, ...(instance !== undefined ? { instance } : {}) } };
}

/**
 * What each fault category proves, from `FaultCategory` and `FaultSubCategories`: the gateway
 * itself classified the failure, so none of these is a status heuristic. `BLOCKED` (a deny
 * policy on an IP, user, application or API) and the GraphQL query-shape limits are not request
 * rates, so they are `custom`, not `rate_limit`: a storm of them must not look like a flood.
 */
function policyKindOf(errorType: string, subCategory: string | undefined): Exclude<PolicySignal['kind'], 'json_threat' | 'xml_threat'> | undefined {
  if (errorType === 'AUTH') {
    return subCategory === 'AUTHORIZATION_FAILURE' || subCategory === 'SUBSCRIPTION_VALIDATION_FAILURE' ? 'authz' : 'authn';
  }
  if (errorType === 'THROTTLED') {
    return subCategory === 'BLOCKED' || subCategory === 'QUERY_TOO_DEEP' || subCategory === 'QUERY_TOO_COMPLEX' ? 'custom' : 'rate_limit';
  }
  return undefined;
}

/**
 * The contract needs `resource.method`, and a stock fault event has none. Such a fault gets this
 * placeholder, labelled `method: unrecorded`, rather than being lost: a refused login or a
 * throttled call is the event the rules most need. GET, because the one rule that reads the
 * method counts writes (POST, PUT, PATCH, DELETE) and must not be fed a write that may not
 * have happened.
 */
const UNRECORDED_METHOD = 'GET';

/** `https://host:port/path` → `host:port`: the upstream service, not one of its URLs. */
function upstreamOf(destination: unknown): string | undefined {
  const text = present(destination);
  if (text === undefined) return undefined;
  const url = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(text);
  return identifierText(url ? url[1] : text);
}

/** `/pizzashack/1.0.0` + `/order/{orderId}` → `/pizzashack/1.0.0/order/{orderId}`. */
function joinPath(context: string | undefined, template: string | undefined): string | undefined {
  if (context === undefined) return template;
  if (template === undefined || template === '/' || template === '/*') return context;
  return `${context.replace(/\/+$/, '')}/${template.replace(/^\/+/, '')}`;
}

function translateRecord(line: Line, record: number, settings: AdapterSettings, result: AdapterResult): void {
  const match = METRIC_LINE.exec(line.text);
  if (!match) {
    result.rejected.push({ reason: 'adapter_unparseable', record, message: `record ${record}: not an apim_metrics.log event (expected "apimMetrics: <event>, properties :{...}")` });
    return;
  }
  const name = match[1] ?? '';
  const parsed = parseJson(match[2] ?? '');
  const fields = parsed === undefined ? undefined : objectOf(parsed.value);
  if (fields === undefined) {
    result.rejected.push({ reason: 'adapter_unparseable', record, message: `record ${record}: the properties of ${name} are not a JSON object` });
    return;
  }
  if (name !== 'apim:response' && name !== 'apim:faulty') {
    result.skipped.push({ reason: 'event_unsupported', record });
    return;
  }
  const fault = name === 'apim:faulty';
  // A field at the top level, else in `properties` (see the module comment).
  const properties = objectOf(fields.properties) ?? {};
  const field = (key: string): string | undefined => present(fields[key]) ?? present(properties[key]);

  // A response event always carries apiMethod; a fault event carries it only where a custom data
  // provider adds it to `properties`, and otherwise gets the labelled placeholder.
  const rawMethod = field('apiMethod');
  if (rawMethod === undefined && !fault) {
    result.rejected.push({
      reason: 'adapter_unmapped',
      record,
      message: `record ${record}: ${name} has no apiMethod (neither at the top level nor in properties), and an invocation needs the request's method`,
    });
    return;
  }
  const method = rawMethod === undefined ? UNRECORDED_METHOD : contractMethod(rawMethod);
  if (method === undefined) {
    result.skipped.push({ reason: 'method_unsupported', record });
    return;
  }

  // The ELK events carry no concrete path: the API's context and the matched resource template
  // are the closest the record comes, so both path and route are the template (faults name no
  // template, so they stop at the context).
  const context = field('apiContext');
  const template = field('apiResourceTemplate');
  const joined = joinPath(context, template);
  const split = joined === undefined ? undefined : splitUri(joined);
  const path = pathText(split?.path);
  if (path === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: ${name} has no usable apiContext (top level or properties) or apiResourceTemplate to build the path from` });
    return;
  }

  const apiName = identifierText(fields.apiName);
  const apiVersion = identifierText(fields.apiVersion);
  const api = identifierText(apiName !== undefined && apiVersion !== undefined ? `${apiName}:${apiVersion}` : (apiName ?? fields.apiId));
  if (api === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: ${name} names no API (apiName, apiId)` });
    return;
  }

  const time = isoTime(fields.requestTimestamp);
  if (time === undefined) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: ${name} has no usable requestTimestamp` });
    return;
  }
  const status = integerIn(fields.proxyResponseCode, 100, 599);
  if (status === undefined && !fault) {
    result.rejected.push({ reason: 'adapter_unmapped', record, message: `record ${record}: apim:response has no proxyResponseCode between 100 and 599` });
    return;
  }

  const requestId = identifierText(fields.correlationId);
  const rawIp = field('userIp');
  const ip = clientIp(rawIp);
  const userAgent = userAgentText(field('userAgentHeader'));
  const consumerId = known(fields.applicationId);
  const userId = known(field('userName'));
  const errorType = present(fields.errorType);
  const subCategory = present(fields.errorMessage);
  const errorCode = integerIn(fields.errorCode, 0, Number.MAX_SAFE_INTEGER);
  const upstreamService = upstreamOf(fields.destination);
  const kind = fault && errorType !== undefined ? policyKindOf(errorType, subCategory) : undefined;
  const built = recordEvents(
    FORMAT,
    {
      ...(requestId !== undefined ? { requestId } : {}),
      // The shipper's host name (line.instance) tells apart lines without a correlation id, but
      // it is not the line's own: with one, a replay through another shipper must keep the ids.
      recordKey: JSON.stringify([name, fields.requestTimestamp, rawIp, fields.apiId, rawMethod, context, template, fields.applicationId, fields.proxyResponseCode, fields.errorCode, requestId === undefined ? line.instance : undefined]),
      time,
      timeIsStart: true,
      method,
      path,
      // The ELK events carry no concrete path: the template stands for both.
      route: path,
      ...(status !== undefined ? { status } : {}),
      latencyMs: integerIn(fields.responseLatency, 0, 3_600_000) ?? 0,
      api,
      ...(upstreamService !== undefined ? { upstreamService } : {}),
      ...(line.instance !== undefined ? { instance: line.instance } : {}),
      ...(userId !== undefined ? { userId } : {}),
      ...(consumerId !== undefined ? { consumerId } : {}),
      ...(ip !== undefined ? { clientIp: ip } : {}),
      ...(userAgent !== undefined ? { userAgent } : {}),
      groupKeys: { route: path, service: context, api: apiName },
      groupFields: { service: 'apiContext', api: 'apiName' },
      labels: labels({
        wso2_event: fault ? 'fault' : 'response',
        key_type: present(fields.keyType),
        api_id: present(fields.apiId),
        application_name: present(fields.applicationName),
        // The ELK builder swaps the raw User-Agent for its parsed browser family and platform.
        browser: present(fields.userAgent),
        platform: present(fields.platform),
        error_type: errorType,
        error_sub_category: subCategory,
        error_code: errorCode !== undefined ? String(errorCode) : undefined,
        target_status: present(fields.targetResponseCode),
        // resource.method is the placeholder, not the request's.
        method: rawMethod === undefined ? 'unrecorded' : undefined,
      }),
      // The gateway itself classified the fault, so none of these is a status heuristic.
      policies:
        kind !== undefined && errorType !== undefined
          ? [{ kind, name: identifierText(subCategory) ?? errorType, outcome: 'fail', ...(errorCode !== undefined ? { reason: String(errorCode) } : {}) }]
          : [],
    },
    record,
    settings,
    result,
  );
  // A fault without a status still proves its policy outcome; only the invocation is lost.
  if (built && status === undefined) result.skipped.push({ reason: 'status_missing', record });
}

/** The `wso2` format: WSO2 API-M 4.x ELK-reporter analytics lines (`apim:response`, `apim:faulty`). */
export const wso2Adapter: GatewayAdapter = {
  format: FORMAT,
  description: 'WSO2 API Manager 4.x analytics events from apim_metrics.log (ELK reporter), bare or in a Filebeat/Fluent Bit envelope',
  translate(value, settings) {
    const result: AdapterResult = { events: [], rejected: [], skipped: [], droppedDerived: [] };
    linesOf(value).forEach((outcome, record) => {
      if ('error' in outcome) {
        result.rejected.push({ reason: 'adapter_unparseable', record, message: `record ${record}: ${outcome.error}` });
        return;
      }
      translateRecord(outcome.line, record, settings, result);
    });
    return result;
  },
};
