/**
 * Checks a document against an Elasticsearch mapping the way Elasticsearch would meet it, without
 * an Elasticsearch: every field must be mapped, with a value of its type. Used by the unit tests
 * of each index's document builder (detections, alerts).
 */
import { isIP } from 'node:net';

/** Whether a value is a plain JSON object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A dynamic template, its `path_match` as a regular expression. */
export interface MappingTemplate {
  name: string;
  pathMatch: RegExp;
  matchMappingType?: string;
  mapping: Record<string, unknown>;
}

/** What a mapping needs for the check: its properties and its dynamic templates. */
export interface CheckedMappings {
  dynamic_templates: readonly Record<string, Record<string, unknown>>[];
}

/** Whether a JSON value fits a mapping type, for the types Vigil's mappings use. */
const FITS: Record<string, (value: unknown) => boolean> = {
  keyword: (value) => typeof value === 'string',
  text: (value) => typeof value === 'string',
  date: (value) => typeof value === 'string' && !Number.isNaN(Date.parse(value)),
  long: (value) => Number.isInteger(value),
  float: (value) => typeof value === 'number' && Number.isFinite(value),
  boolean: (value) => typeof value === 'boolean',
  ip: (value) => typeof value === 'string' && isIP(value) !== 0,
  geo_point: (value) => isRecord(value) && typeof value.lat === 'number' && typeof value.lon === 'number' && Object.keys(value).length === 2,
};

function templatesOf(mappings: CheckedMappings): MappingTemplate[] {
  return mappings.dynamic_templates.flatMap((entry) =>
    Object.entries(entry).map(([name, body]) => {
      const pattern = String(body.path_match).split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
      const matchMappingType = body.match_mapping_type;
      return {
        name,
        pathMatch: new RegExp(`^${pattern}$`),
        ...(typeof matchMappingType === 'string' ? { matchMappingType } : {}),
        mapping: body.mapping as Record<string, unknown>,
      };
    }),
  );
}

/** A template that would map `path`, for a value of this JSON type ('string', 'object', ...). */
const templateFor = (path: string, jsonType: string, list: readonly MappingTemplate[]): MappingTemplate | undefined =>
  list.find((template) => template.pathMatch.test(path) && (template.matchMappingType === undefined || ['*', jsonType].includes(template.matchMappingType)));

/**
 * The problems of a document against a mapping, as Elasticsearch would meet them: dotted field
 * names under a dynamic object become objects, and a dynamic template whose path matches an
 * object (not only a leaf) maps that object (elastic/elasticsearch#32595).
 */
function walk(value: unknown, mapping: Record<string, unknown>, path: string, seen: Set<string>, list: readonly MappingTemplate[]): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => walk(item, mapping, path, seen, list));
  if (isRecord(mapping.properties)) {
    if (!isRecord(value)) return [`${path}: expected an object, got ${JSON.stringify(value)}`];
    const properties = mapping.properties;
    return Object.entries(value).flatMap(([name, child]) => {
      const childPath = path ? `${path}.${name}` : name;
      const childMapping = properties[name];
      if (!isRecord(childMapping)) return [`${childPath}: not in the mapping`];
      return walk(child, childMapping, childPath, seen, list);
    });
  }
  if (mapping.type === 'object') {
    if (mapping.dynamic !== true) return [`${path}: an object without properties that is not dynamic`];
    if (!isRecord(value)) return [`${path}: expected an object`];
    return Object.entries(value).flatMap(([name, child]) => dynamic(child, `${path}.${name}`, path, seen, list));
  }
  seen.add(path);
  const type = String(mapping.type);
  const fits = FITS[type];
  if (fits === undefined) return [`${path}: unknown mapping type ${type}`];
  return fits(value) ? [] : [`${path}: ${JSON.stringify(value)} does not fit a ${type}`];
}

/** A field under a dynamic object: each dotted level is an object, the last one the value. */
function dynamic(value: unknown, path: string, parent: string, seen: Set<string>, list: readonly MappingTemplate[]): string[] {
  const levels = path.slice(parent.length + 1).split('.');
  const problems: string[] = [];
  for (let depth = 1; depth < levels.length; depth++) {
    const objectPath = `${parent}.${levels.slice(0, depth).join('.')}`;
    const captured = templateFor(objectPath, 'object', list);
    if (captured && captured.mapping.type !== 'object') problems.push(`${objectPath}: an object, mapped as ${String(captured.mapping.type)} by ${captured.name}`);
  }
  if (typeof value !== 'string') return [...problems, `${path}: only text is expected under a dynamic object`];
  const template = templateFor(path, 'string', list);
  if (template === undefined) return [...problems, `${path}: no dynamic template maps it`];
  return [...problems, ...walk(value, template.mapping, path, seen, list)];
}

/** Every leaf field a mapping declares. */
function leaves(mapping: Record<string, unknown>, path: string): string[] {
  if (!isRecord(mapping.properties)) return mapping.type === 'object' ? [] : [path];
  return Object.entries(mapping.properties).flatMap(([name, child]) => (isRecord(child) ? leaves(child, path ? `${path}.${name}` : name) : []));
}

/** A checker of documents against one index's mappings. */
export interface MappingChecker {
  /** The mappings' dynamic templates. */
  templates: readonly MappingTemplate[];
  /**
   * The problems of a document (none: `[]`). Adds every leaf it checked to `seen`, so a test can
   * tell that its examples cover the mapping; `templates` replaces the mappings' own.
   */
  problems(document: unknown, seen?: Set<string>, templates?: readonly MappingTemplate[]): string[];
  /** Every leaf field the mappings declare. */
  leaves(): string[];
}

/** A checker for these mappings (`detectionMappings`, `alertMappings`, ...). */
export function mappingChecker(mappings: CheckedMappings): MappingChecker {
  const root = mappings as unknown as Record<string, unknown>;
  const templates = templatesOf(mappings);
  return {
    templates,
    problems: (document, seen = new Set(), list = templates) => walk(document, root, '', seen, list),
    leaves: () => leaves(root, ''),
  };
}
