import { alertMappings, detectionMappings, eventMappings, pipelineMappings } from '../../schemas';
import type { ViewName } from './model';

/** A mapping as the templates write it: properties, a type, multi-fields. */
interface MappingNode {
  type?: string;
  properties?: Record<string, MappingNode>;
  fields?: Record<string, MappingNode>;
}

/** The template mappings behind each data view: the one source of field names and types. */
export interface ViewMappings {
  events: { properties: object };
  detections: { properties: object };
  alerts: { properties: object };
  pipeline: { properties: object };
}

/** Vigil's own templates (schemas/). */
export const TEMPLATE_MAPPINGS: ViewMappings = { events: eventMappings, detections: detectionMappings, alerts: alertMappings, pipeline: pipelineMappings };

/** Types a Lens bucket or metric can aggregate on (doc values); `text` and `object` can't. */
export const AGGREGATABLE_TYPES: ReadonlySet<string> = new Set(['keyword', 'long', 'integer', 'short', 'byte', 'float', 'double', 'scaled_float', 'date', 'ip', 'boolean', 'geo_point']);

/** Every leaf field of a mapping (multi-fields as `field.sub`), with its type. */
export function leafFields(mappings: { properties: object }): Map<string, string> {
  const fields = new Map<string, string>();
  const walk = (properties: Record<string, MappingNode>, prefix: string): void => {
    for (const [name, node] of Object.entries(properties)) {
      const path = `${prefix}${name}`;
      if (node.properties) walk(node.properties, `${path}.`);
      if (node.type !== undefined && node.type !== 'object') fields.set(path, node.type);
      for (const [sub, multi] of Object.entries(node.fields ?? {})) if (multi.type !== undefined) fields.set(`${path}.${sub}`, multi.type);
    }
  };
  walk(mappings.properties as Record<string, MappingNode>, '');
  return fields;
}

/** The type of a field in a data view's template, or undefined when the template has no such field. */
export function fieldType(view: ViewName, field: string, mappings: ViewMappings = TEMPLATE_MAPPINGS): string | undefined {
  return leafFields(mappings[view]).get(field);
}

/** Lens's data type of a field type. */
export function lensDataType(type: string | undefined): 'string' | 'number' | 'date' | 'ip' | 'boolean' | 'geo_point' {
  switch (type) {
    case 'long':
    case 'integer':
    case 'short':
    case 'byte':
    case 'float':
    case 'double':
    case 'scaled_float':
      return 'number';
    case 'date':
      return 'date';
    case 'ip':
      return 'ip';
    case 'boolean':
      return 'boolean';
    case 'geo_point':
      return 'geo_point';
    default:
      return 'string';
  }
}
