/** Two projects: unit (no network) and integration (the real stack from scripts/stack.sh). */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] };
// Compiled output (npm run build) holds copies of the sources; jest must not resolve into it.
const modulePathIgnorePatterns = ['<rootDir>/dist/', '<rootDir>/ingest/sdk/dist/'];
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform,
      modulePathIgnorePatterns,
      testEnvironment: 'node',
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      modulePathIgnorePatterns,
      testEnvironment: 'node',
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
      slowTestThreshold: 60,
    },
  ],
  // The unit floor covers what unit tests can reach without a network. The Kafka/Elasticsearch
  // adapters (consumer, bulk indexer, topic and template set-up) are proven by test/integration,
  // as are the Redis-bound detectors (the engine, the correlator, the alerter's Kafka loop).
  collectCoverageFrom: [
    'platform/**/*.ts',
    'schemas/**/*.ts',
    'ingest/**/*.ts',
    'detectors/**/*.ts',
    '!**/index.ts',
    '!**/dist/**',
    '!ingest/ingest.consumer.ts',
    '!ingest/bulk-indexer.ts',
    '!ingest/infrastructure.ts',
    '!detectors/engine.ts',
    '!detectors/correlation.ts',
    '!detectors/alerting/alerter.ts',
  ],
  coverageThreshold: { global: { lines: 70, branches: 60 } },
  testTimeout: 120000,
};
