/**
 * Rule and correlation state in Redis: the one key builder, the Lua script registry (lua/), and
 * the one round-trip helper every Redis call of the detectors goes through.
 */
export * from './keys';
export * from './scripts';
export * from './round-trip';
