import type { GatewayAdapter } from './types';
import { tykAdapter } from './tyk';
import { wso2Adapter } from './wso2';
import { envoyAdapter } from './envoy';
export { createEnvoyAdapter, type ClientIpSource } from './envoy';
import { otlpAdapter } from './otlp';
import { apisixAdapter } from './apisix';
import { kongAdapter } from './kong';

export * from './types';
export * from './common';
export * from './fields';
export * from './record-events';

/**
 * Every gateway format `vigil adapt --format` accepts, by name. A new format is one file in this
 * folder exporting a `GatewayAdapter`, and one line here.
 */
export const ADAPTERS: Readonly<Record<string, GatewayAdapter>> = Object.freeze({
  kong: kongAdapter,
  apisix: apisixAdapter,
  envoy: envoyAdapter,
  otlp: otlpAdapter,
  wso2: wso2Adapter,
  tyk: tykAdapter,
});

/** The adapter for a format, or `undefined` with the list of known ones left to the caller to name. */
export function adapterFor(format: string): GatewayAdapter | undefined {
  return Object.hasOwn(ADAPTERS, format) ? ADAPTERS[format] : undefined;
}
