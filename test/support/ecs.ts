/**
 * ECS as the oracle: checks Vigil's index mappings and documents against ECS's own field
 * definitions (`EcsFlat` of the `@elastic/ecs` package: type, multi-fields, allowed values and
 * the event types each category allows). Used by test/unit/ecs-conformance.test.ts and by
 * scripts/ecs-docs.ts, which writes the ECS table of docs/events.md.
 */
import { EcsFlat, EcsVersion } from '@elastic/ecs';
import { isRecord } from './mapping';

/** What the checks read of one ECS field definition. */
export interface EcsField {
  flat_name: string;
  type: string;
  short: string;
  level: string;
  normalize: readonly string[];
  multi_fields?: readonly { name: string; type: string }[];
  allowed_values?: readonly { name: string; expected_event_types?: readonly string[] }[];
}

/** ECS's fields by flat name. */
export const ECS: Readonly<Record<string, EcsField>> = EcsFlat;
export const ECS_PACKAGE_VERSION: string = EcsVersion;

/** Namespaces that are Vigil's or Kibana's, not ECS's: the ECS check leaves them out. */
export const NOT_ECS = /^(vigil|labels|kibana)(\.|$)/;

/**
 * ECS types that the core server lacks, with the core type that stands in for each (the same
 * family: a data view shows them as one type). The integ-test distribution has no
 * mapper-extras (match_only_text) and no x-pack wildcard.
 */
const STAND_INS: Readonly<Record<string, readonly string[]>> = {
  match_only_text: ['text'],
  wildcard: ['keyword'],
  constant_keyword: ['keyword'],
};

/** Whether a mapping type fits an ECS type. */
export function fitsEcsType(ecsType: string, type: string): boolean {
  return ecsType === type || (STAND_INS[ecsType] ?? []).includes(type);
}

/** One leaf of a mapping: its path, type and multi-fields. */
export interface MappedField {
  path: string;
  type: string;
  multiFields: Record<string, string>;
}

/** The leaves of a mapping's `properties` (an object with properties is walked, not listed). */
export function mappedFields(properties: Record<string, unknown>, prefix = ''): MappedField[] {
  return Object.entries(properties).flatMap(([name, body]): MappedField[] => {
    if (!isRecord(body)) return [];
    const path = `${prefix}${name}`;
    if (isRecord(body.properties)) return mappedFields(body.properties, `${path}.`);
    const multiFields: Record<string, string> = {};
    if (isRecord(body.fields)) for (const [sub, mapping] of Object.entries(body.fields)) if (isRecord(mapping)) multiFields[sub] = String(mapping.type);
    return [{ path, type: typeof body.type === 'string' ? body.type : 'object', multiFields }];
  });
}

/**
 * Why a mapping's fields outside `vigil.*`, `labels.*` and `kibana.*` are not ECS: a field ECS
 * doesn't define, a type that doesn't fit ECS's, or a multi-field ECS doesn't define with that
 * name and a fitting type. Empty when all conform.
 */
export function ecsMappingProblems(properties: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const field of mappedFields(properties)) {
    if (NOT_ECS.test(field.path)) continue;
    const ecs = ECS[field.path];
    if (!ecs) {
      problems.push(`${field.path}: not an ECS field`);
      continue;
    }
    if (!fitsEcsType(ecs.type, field.type)) problems.push(`${field.path}: ${field.type}, ECS says ${ecs.type}`);
    for (const [name, type] of Object.entries(field.multiFields)) {
      const declared = ecs.multi_fields?.find((multi) => multi.name === name);
      if (!declared) problems.push(`${field.path}.${name}: ECS defines no such multi-field`);
      else if (!fitsEcsType(declared.type, type)) problems.push(`${field.path}.${name}: ${type}, ECS says ${declared.type}`);
    }
  }
  return problems;
}

/** The leaf paths of a document (arrays of objects are walked into, as Elasticsearch does). */
export function documentPaths(document: unknown, prefix = ''): string[] {
  if (Array.isArray(document)) return [...new Set(document.flatMap((item) => documentPaths(item, prefix)))];
  if (!isRecord(document)) return prefix === '' ? [] : [prefix.slice(0, -1)];
  // A geo_point is an object in JSON but one field.
  if (prefix !== '' && ECS[prefix.slice(0, -1)]?.type === 'geo_point') return [prefix.slice(0, -1)];
  return Object.entries(document).flatMap(([name, value]) => documentPaths(value, `${prefix}${name}.`));
}

const valuesOf = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/**
 * Why a document's categorization is not what ECS allows: `event.kind`, `event.category`,
 * `event.type` and `event.outcome` values outside ECS's allowed values, and category–type
 * pairs ECS doesn't list (every type must be expected by every category of the document).
 */
export function ecsCategorizationProblems(document: Record<string, unknown>): string[] {
  const event = isRecord(document.event) ? document.event : {};
  const problems: string[] = [];
  for (const name of ['kind', 'category', 'type', 'outcome'] as const) {
    const allowed = ECS[`event.${name}`]?.allowed_values?.map((value) => value.name) ?? [];
    for (const value of valuesOf(event[name])) if (!allowed.includes(String(value))) problems.push(`event.${name}: ${String(value)} is not an ECS value`);
  }
  if (event.kind === 'signal') problems.push('event.kind: signal is reserved for alerts of Kibana\'s alerting framework');
  const categories = ECS['event.category']?.allowed_values ?? [];
  for (const category of valuesOf(event.category)) {
    const expected = categories.find((value) => value.name === category)?.expected_event_types ?? [];
    for (const type of valuesOf(event.type)) {
      if (!expected.includes(String(type))) problems.push(`event.category ${String(category)} with event.type ${String(type)}: ECS expects ${expected.join('/')}`);
    }
  }
  return problems;
}

/** The markers around the generated table in docs/events.md. */
export const ECS_TABLE_START = '<!-- ecs-fields:start (generated by npm run ecs:docs from @elastic/ecs; do not edit) -->';
export const ECS_TABLE_END = '<!-- ecs-fields:end -->';

/**
 * The table of every ECS field in Vigil's templates (outside `vigil.*`, `labels.*`, `kibana.*`,
 * plus `labels` itself), with ECS's level, type and one-line definition, Vigil's type and the
 * indices that hold it.
 */
export function renderEcsFieldTable(templates: Readonly<Record<string, { properties: object }>>): string {
  const fields = new Map<string, { types: Set<string>; indices: string[] }>();
  for (const [index, mappings] of Object.entries(templates)) {
    const walked = mappedFields(mappings.properties as Record<string, unknown>);
    for (const field of walked) {
      const path = field.path === 'labels' ? 'labels' : field.path;
      if (path !== 'labels' && NOT_ECS.test(path)) continue;
      const entry = fields.get(path) ?? { types: new Set<string>(), indices: [] };
      const multi = Object.entries(field.multiFields).map(([name, type]) => `, \`.${name}\` ${type}`);
      entry.types.add(path === 'labels' ? 'keyword (each key)' : `${field.type}${multi.join('')}`);
      entry.indices.push(index);
      fields.set(path, entry);
    }
  }
  const cell = (text: string): string => text.replaceAll('\n', ' ').replaceAll('|', '\\|').trim();
  const rows = [...fields.keys()].sort().map((path) => {
    const ecs = ECS[path];
    const entry = fields.get(path);
    return `| \`${path}\` | ${ecs ? `${ecs.level}, ${ecs.type}` : 'not ECS'} | ${[...(entry?.types ?? [])].join(' / ')} | ${entry?.indices.join(', ') ?? ''} | ${cell(ecs?.short ?? '')} |`;
  });
  return [
    ECS_TABLE_START,
    `ECS ${ECS_PACKAGE_VERSION}, ${fields.size} fields.`,
    '',
    '| field | ECS level, type | Vigil maps it as | in | ECS definition |',
    '|---|---|---|---|---|',
    ...rows,
    ECS_TABLE_END,
  ].join('\n');
}

/** `markdown` with the text between the ECS table markers replaced by `table`. */
export function replaceEcsFieldTable(markdown: string, table: string): string {
  const start = markdown.indexOf(ECS_TABLE_START);
  const end = markdown.indexOf(ECS_TABLE_END);
  if (start < 0 || end < start) throw new Error('docs/events.md has no ECS table markers');
  return `${markdown.slice(0, start)}${table}${markdown.slice(end + ECS_TABLE_END.length)}`;
}
