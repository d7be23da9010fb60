/**
 * Dev-time generator of `src/generated/openapi.ts`: one TypeScript type per
 * schema of `openapi/openapi.yaml` (the REST bodies, the push bodies, the
 * events and the commands). The SDK builds and reads its wire bodies with
 * these types, so a spec change that the SDK does not follow fails `tsc`;
 * `test/openapi_types.test.ts` fails when the committed file is not what
 * this script makes from the spec.
 *
 *     npm run gen:openapi
 *
 * Only the subset of JSON Schema the spec uses is understood: `$ref`,
 * `const`, `enum`, `type` (also as a list), `properties` / `required` /
 * `additionalProperties`, `items`, `oneOf` (of schemas, or of `required`
 * alternatives of one object), `allOf`. Anything else throws, so the
 * generator never silently loosens a type.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

type Schema = Record<string, unknown>;

/** Keywords that only document or constrain values; they do not change the TypeScript type. */
const ANNOTATIONS = new Set([
  "description",
  "title",
  "examples",
  "example",
  "default",
  "format",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "uniqueItems",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "pattern",
  "discriminator",
  "deprecated",
  "readOnly",
  "writeOnly",
]);
const UNDERSTOOD = new Set([...ANNOTATIONS, "$ref", "const", "enum", "type", "properties", "required", "additionalProperties", "items", "oneOf", "anyOf", "allOf"]);

function refName(ref: string): string {
  const prefix = "#/components/schemas/";
  if (!ref.startsWith(prefix)) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(prefix.length);
}

function propKey(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

function indent(text: string, by: string): string {
  return text
    .split("\n")
    .map((l) => (l === "" ? l : by + l))
    .join("\n");
}

/** The first paragraph of a description, as a JSDoc comment. */
function doc(schema: Schema, by = ""): string {
  const d = schema.description;
  if (typeof d !== "string" || d.trim() === "") return "";
  if (d.trim().startsWith("|")) return ""; // a table: read it in the spec
  const para = d.trim().split(/\n\s*\n/)[0]!.replace(/\s+/g, " ").replace(/\*\//g, "*\\/");
  return `${by}/** ${para} */\n`;
}

function union(parts: string[]): string {
  const uniq = [...new Set(parts)];
  return uniq.length === 1 ? uniq[0]! : uniq.join(" | ");
}

function primitive(t: string, schema: Schema): string {
  switch (t) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const items = schema.items as Schema | undefined;
      if (items === undefined) return "unknown[]";
      const inner = typeOf(items);
      return /^[A-Za-z0-9_]+$/.test(inner) ? `${inner}[]` : `Array<${inner}>`;
    }
    case "object":
      return objectType(schema, []);
    default:
      throw new Error(`unsupported type ${t}`);
  }
}

/** The members of an object schema; `alsoRequired` makes more of them required (a oneOf alternative). */
function objectType(schema: Schema, alsoRequired: string[], omit: Set<string> = new Set()): string {
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  const required = new Set([...((schema.required as string[] | undefined) ?? []), ...alsoRequired]);
  const lines: string[] = [];
  for (const [name, prop] of Object.entries(props)) {
    if (omit.has(name)) continue;
    lines.push(`${doc(prop)}${propKey(name)}${required.has(name) ? "" : "?"}: ${typeOf(prop)};`);
  }
  const extra = schema.additionalProperties;
  if (extra !== undefined && extra !== false && extra !== true) lines.push(`[key: string]: ${typeOf(extra as Schema)};`);
  else if (Object.keys(props).length === 0) return "Record<string, unknown>";
  return `{\n${indent(lines.join("\n"), "  ")}\n}`;
}

/** `oneOf: [{required: [a]}, {required: [b]}]` on an object: one member of each alternative, and none of the others'. */
function requiredAlternatives(schema: Schema, alternatives: Schema[]): string {
  const all = alternatives.map((a) => (a.required as string[]) ?? []);
  return union(
    all.map((req) => {
      const others = new Set(all.flat().filter((n) => !req.includes(n)));
      return objectType(schema, req, others);
    }),
  );
}

function typeOf(schema: Schema): string {
  for (const k of Object.keys(schema)) if (!UNDERSTOOD.has(k)) throw new Error(`unsupported schema keyword ${k}`);
  if (typeof schema.$ref === "string") return refName(schema.$ref);
  if ("const" in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return union(schema.enum.map((v) => JSON.stringify(v)));
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives !== undefined) {
    if (alternatives.every((a) => Object.keys(a).length === 1 && Array.isArray(a.required))) return requiredAlternatives(schema, alternatives);
    if (schema.properties !== undefined) throw new Error("oneOf of schemas next to properties");
    return union(alternatives.map(typeOf));
  }
  if (Array.isArray(schema.allOf)) return (schema.allOf as Schema[]).map(typeOf).join(" & ");
  const t = schema.type;
  if (Array.isArray(t)) return union(t.map((x) => primitive(String(x), schema)));
  if (typeof t === "string") return primitive(t, schema);
  if (schema.properties !== undefined) return objectType(schema, []);
  return "unknown"; // no constraint: any JSON value (Payload)
}

/** The generated module for a parsed spec. */
export function generate(spec: unknown): string {
  const schemas = ((spec as { components?: { schemas?: Record<string, Schema> } }).components?.schemas ?? {}) as Record<string, Schema>;
  const out: string[] = [
    "/**",
    " * The wire types of openapi/openapi.yaml, one per schema.",
    " *",
    " * GENERATED by scripts/openapi_types.ts: do not edit; run `npm run gen:openapi`.",
    " */",
    "/* eslint-disable */",
    "",
  ];
  for (const [name, schema] of Object.entries(schemas)) {
    const ty = typeOf(schema);
    const d = doc(schema);
    // Type aliases rather than interfaces: object literal types are assignable
    // to `Record<string, unknown>`, which the SDK's tolerant readers take.
    out.push(`${d}export type ${name} = ${ty};\n`);
  }
  return out.join("\n");
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The SDK's root (this file runs from dist/scripts/). */
export const SDK_ROOT = path.resolve(here, "..", "..");
export const SPEC = path.resolve(SDK_ROOT, "..", "openapi", "openapi.yaml");
export const OUTPUT = path.join(SDK_ROOT, "src", "generated", "openapi.ts");

/** The generated module for the repository's spec. */
export function generateFromRepo(): string {
  return generate(parse(readFileSync(SPEC, "utf8")));
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(OUTPUT, generateFromRepo());
  console.log(`wrote ${path.relative(process.cwd(), OUTPUT)}`);
}
