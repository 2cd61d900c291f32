/**
 * The exported JSON Schemas are what producers in other languages validate with: they must compile
 * in a strict draft 2020-12 validator (Ajv with `strict: true` refuses unknown keywords and
 * formats), and the examples in docs/events.md must pass them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { exportJsonSchemas, FAMILIES, policyEventSchema } from '../../schemas';

const ROOT = join(__dirname, '..', '..');

function strictValidator(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

/** The Kafka message values shown in docs/events.md: every ```json block after "Kafka message value". */
function documentedEvents(): { family: string; value: Record<string, unknown> }[] {
  const text = readFileSync(join(ROOT, 'docs', 'events.md'), 'utf8');
  const blocks = [...text.matchAll(/Kafka message value[^\n]*\n+```json\n([\s\S]*?)\n```/g)];
  return blocks.map((block) => {
    const value = JSON.parse(block[1] ?? '') as Record<string, unknown>;
    return { family: String(value.family), value };
  });
}

describe('exported JSON Schemas (draft 2020-12)', () => {
  const schemas = exportJsonSchemas();

  it.each(Object.keys(schemas))('%s compiles in a strict draft 2020-12 validator', (name) => {
    const ajv = strictValidator();
    expect(() => ajv.compile(schemas[name as keyof typeof schemas])).not.toThrow();
  });

  it('uses only formats draft 2020-12 defines', () => {
    const formats = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (typeof node === 'object' && node !== null) {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'format' && typeof value === 'string') formats.add(value);
          walk(value);
        }
      }
    };
    walk(schemas);
    expect([...formats].sort()).toEqual(['date-time', 'ipv4', 'ipv6']);
  });

  it('takes the IP addresses the contract takes, and refuses the others, with or without format checks (IPv4-mapped IPv6 included)', () => {
    const example = documentedEvents().find((entry) => entry.family === 'policy');
    expect(example).toBeDefined();
    const addresses = [
      '81.2.69.142', '::ffff:81.2.69.142', '::1', '::', '1::', '2001:db8::1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '1:2:3:4:5:6:1.2.3.4', '::1.2.3.4',
      '64:ff9b::192.0.2.33', '::ffff:0:1.2.3.4', 'fe80::1:2:3:4', '2001:DB8:0:0:8:800:200C:417A',
      '12345::1', '1:2:3:4:5:6:7:8:9', ':::', '1::2::3', '::ffff:256.1.1.1', '::ffff:1.2.3', '1:2:3:4:5:6:7:1.2.3.4', '::ffff:01.2.3.4', 'fe80::1%eth0', '1.2.3.4.5', 'localhost',
    ];
    const withFormats = strictValidator().compile(schemas.policy);
    const patternsOnly = new Ajv2020({ strict: true, validateFormats: false }).addFormat('date-time', true).addFormat('ipv4', true).addFormat('ipv6', true).compile(schemas.policy);
    const verdicts = addresses.map((ip) => {
      const value = { ...structuredClone(example?.value ?? {}), client: { ip } };
      return { ip, zod: policyEventSchema.safeParse(value).success, formats: withFormats(value), patterns: patternsOnly(value) };
    });
    expect(verdicts.filter(({ zod }) => zod)).toHaveLength(14);
    expect(verdicts.filter(({ zod, formats, patterns }) => zod !== formats || zod !== patterns)).toEqual([]);
  });

  it('keeps the rule a removed format stood for: a path must start with "/"', () => {
    const ajv = strictValidator();
    const validate = ajv.compile(schemas.policy);
    const example = documentedEvents().find((entry) => entry.family === 'policy');
    expect(example).toBeDefined();
    const value = structuredClone(example?.value ?? {}) as { policy: { resource: { path: string } } };
    expect(validate(value)).toBe(true);
    value.policy.resource.path = 'v2/payments/8812';
    expect(validate(value)).toBe(false);
    expect(JSON.stringify(validate.errors)).toContain('pattern');
  });

  // JSON Schema counts a string's length in code points. zod 3's max counted UTF-16 units, and
  // then what a producer in another language validated, Vigil would refuse; zod 4.6 counts code
  // points too. This holds the two together whatever the library does next.
  it('agrees with the contract on lengths counted in code points: emoji, combining marks, a lone surrogate', () => {
    const example = documentedEvents().find((entry) => entry.family === 'policy');
    expect(example).toBeDefined();
    const validate = strictValidator().compile(schemas.policy);
    const paths = [
      `/${'😀'.repeat(2047)}`, // 2,048 code points, 4,095 UTF-16 units: within
      `/${'😀'.repeat(2048)}`, // 2,049 code points: over
      `/${'e\u0301'.repeat(2047)}`, // a combining mark is a code point of its own: 4,095, over
      `/${'a'.repeat(2046)}\ud800`, // a lone surrogate is one code point: 2,048, within
      `/${'a'.repeat(2047)}`,
      `/${'a'.repeat(2048)}`,
    ];
    const verdicts = paths.map((path) => {
      const value = structuredClone(example?.value ?? {}) as { policy: { resource: { path: string } } };
      value.policy.resource.path = path;
      return { zod: policyEventSchema.safeParse(value).success, jsonSchema: validate(value) };
    });
    expect(verdicts.map(({ zod }) => zod)).toEqual([true, false, false, true, true, false]);
    expect(verdicts.filter(({ zod, jsonSchema }) => zod !== jsonSchema)).toEqual([]);
    const over = structuredClone(example?.value ?? {}) as { policy: { resource: { path: string } } };
    over.policy.resource.path = `/${'😀'.repeat(2048)}`;
    expect(policyEventSchema.safeParse(over).error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toEqual(['policy.resource.path: Too big: expected string to have <=2048 characters']);
  });

  it('accepts every example event of docs/events.md, by its family and as an event', () => {
    const examples = documentedEvents();
    // One example of each family at least, so the check cannot pass on nothing.
    expect(new Set(examples.map((entry) => entry.family))).toEqual(new Set(FAMILIES));
    const ajv = strictValidator();
    const byFamily = Object.fromEntries(FAMILIES.map((family) => [family, ajv.compile(schemas[family])]));
    const anyEvent = ajv.compile(schemas.event);
    for (const { family, value } of examples) {
      const validate = byFamily[family];
      expect({ family, ok: validate?.(value), errors: validate?.errors ?? null }).toEqual({ family, ok: true, errors: null });
      expect({ family, ok: anyEvent(value), errors: anyEvent.errors ?? null }).toEqual({ family, ok: true, errors: null });
    }
  });
});
