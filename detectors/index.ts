/**
 * Detectors: rules as data, the engine that runs them over event batches with state in Redis
 * (Lua scripts, one round trip per batch), and the detection documents they produce.
 */
export * from './field-paths';
export * from './duration';
export * from './input';
export * from './trust';
export * from './correlation';
export * from './filter';
export * from './lists';
export * from './rule-schema';
export * from './rule-type';
export * from './rule-registry';
export * from './rule-loader';
export * from './coverage';
export * from './state';
export * from './evaluation';
export * from './describe';
export * from './engine';
export * from './detection-document';
export * from './rule-types/match';
export * from './rule-types/threshold';
export * from './rule-types/cardinality';
export * from './rule-types/sequence';
export * from './rule-types/new-value';
export * from './rule-types/geo-velocity';
export * from './rule-types/surge';
export * from './alerting';
export * from './default-rules';
