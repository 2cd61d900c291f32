/** Two projects: unit (no network) and integration (the real stack from scripts/stack.sh). */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
      slowTestThreshold: 60,
    },
  ],
  collectCoverageFrom: ['platform/**/*.ts', 'schemas/**/*.ts', 'ingest/**/*.ts', '!**/index.ts'],
  coverageThreshold: { global: { lines: 70, branches: 60 } },
  testTimeout: 120000,
};
