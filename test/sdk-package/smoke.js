// Run by scripts/check-sdk-package.sh inside an empty folder where only the packed @vigil/sdk is
// installed: what a service would do first. Needs no Kafka (nothing is ever sent). Plain
// JavaScript on purpose: this is the package as a JavaScript service sees it.
'use strict';
const assert = require('node:assert/strict');
const { join, sep } = require('node:path');

const before = new Set(Object.keys(require.cache));
const sdk = require('@vigil/sdk');
// Importing loads the SDK and zod, nothing else: kafkajs only once a producer is needed.
const loaded = Object.keys(require.cache).filter((file) => !before.has(file));
const foreign = loaded.filter((file) => ![join('node_modules', '@vigil', 'sdk') + sep, join('node_modules', 'zod') + sep].some((folder) => file.includes(folder)));
assert.deepEqual(foreign, [], 'importing @vigil/sdk loaded modules besides the SDK and zod');

const { createEmitter, invocationMiddleware, ValidationError, VigilError, familySchemas } = sdk;
for (const [name, value] of Object.entries({ createEmitter, invocationMiddleware, ValidationError, VigilError })) {
  assert.equal(typeof value, 'function', `@vigil/sdk exports ${name}`);
}
assert.deepEqual(Object.keys(familySchemas), ['policy', 'invocation', 'device']);

const { Kafka, logLevel } = require('kafkajs');
// A broker address nothing listens on: the linger is long and nothing is flushed, so no
// connection is ever tried.
const kafka = new Kafka({ brokers: ['127.0.0.1:1'], clientId: 'sdk-package-check', logLevel: logLevel.NOTHING });
const drops = [];
const emitter = createEmitter({ kafka, source: { service: 'sdk-package-check', kind: 'service' }, lingerMs: 60_000, onDrop: (event) => drops.push(event) });

const input = () => ({
  actor: { userId: 'user-1', consumerId: 'app-1' },
  client: { ip: '81.2.69.142' },
  policy: {
    kind: 'authn',
    name: 'verify-api-key',
    outcome: 'fail',
    reason: 'invalid_credentials',
    group: 'payments',
    resource: { api: 'payments-v2', method: 'POST', path: '/payments/123' },
  },
});

const result = emitter.policy(input());
assert.equal(result.accepted, true, 'a valid event is accepted');
assert.match(result.id, /^[0-9a-f-]{36}$/, 'the emitter gives the event a UUID');

const bad = input();
bad.client.ip = '999.1.1.1';
bad.policy.outcome = 'denied';
assert.throws(
  () => emitter.policy(bad),
  (error) => {
    assert.ok(error instanceof ValidationError, `expected a ValidationError, got ${error}`);
    assert.ok(error instanceof VigilError);
    assert.equal(error.code, 'event_invalid');
    assert.equal(error.retriable, false);
    assert.ok(error.issues.some((issue) => issue.startsWith('client.ip:')), `issues name client.ip: ${error.issues}`);
    assert.ok(error.issues.some((issue) => issue.startsWith('policy.outcome:')), `issues name policy.outcome: ${error.issues}`);
    return true;
  },
);
const { bufferedBytes, ...counts } = emitter.stats();
assert.deepEqual(counts, { accepted: 1, delivered: 0, dropped: 0, sendFailures: 0, buffered: 1 });
assert.ok(bufferedBytes > 300, `the buffer counts the message's bytes: ${bufferedBytes}`);
assert.deepEqual(drops, []);

// The JSON Schema of each family ships with the package, for producers in other languages.
for (const name of ['event', 'policy', 'invocation', 'device']) {
  const schema = require(`@vigil/sdk/json/${name}.schema.json`);
  assert.equal(typeof schema, 'object', `@vigil/sdk/json/${name}.schema.json`);
}

console.log('[sdk-package] smoke test OK: imported, one event accepted, a bad one refused naming client.ip and policy.outcome');
