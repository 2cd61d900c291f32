// Type-checked by scripts/check-sdk-package.sh against the installed tarball's .d.ts: a
// TypeScript service sees the SDK's types, and the contract catches a wrong value at compile time.
import { Kafka } from 'kafkajs';
import { createEmitter, invocationMiddleware, ValidationError, type EmitInput, type EmitterStats, type SdkLogger, type VigilEvent } from '@vigil/sdk';

const logger: SdkLogger = { warn: () => undefined, child: () => logger };
const emitter = createEmitter({ kafka: new Kafka({ brokers: ['127.0.0.1:1'] }), source: { service: 'consumer', kind: 'service' }, logger });

const input: EmitInput<'policy'> = {
  policy: { kind: 'authn', name: 'verify-api-key', outcome: 'fail', group: 'payments', resource: { api: 'payments-v2', method: 'POST', path: '/payments/123' } },
};
const { id, accepted }: { id: string; accepted: boolean } = emitter.policy(input);
// @ts-expect-error: the contract allows only 'pass' or 'fail'
emitter.policy({ ...input, policy: { ...input.policy, outcome: 'denied' } });

const stats: EmitterStats = emitter.stats();
const middleware = invocationMiddleware(emitter, { api: 'payments-v2', trustProxy: 1 });
const onDrop = (event: VigilEvent): string => event.family;
const isValidation = (error: unknown): boolean => error instanceof ValidationError && error.issues.length > 0;

export { id, accepted, stats, middleware, onDrop, isValidation };
