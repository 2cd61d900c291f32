// Type-checked by scripts/check-sdk-package.sh (node10 and node16 resolution, resolveJsonModule)
// against the installed tarball: a service that validates with the published JSON Schema
// imports it by its package path.
import policySchema from '@vigil/sdk/json/policy.schema.json';

const title: string = policySchema.title;
const draft: string = policySchema.$schema;

export const used: unknown[] = [title, draft];
