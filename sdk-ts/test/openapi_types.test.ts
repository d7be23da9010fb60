/**
 * The SDK's wire types follow openapi/openapi.yaml: src/generated/openapi.ts
 * is what scripts/openapi_types.ts makes from the spec, and the SDK builds
 * and reads its bodies with those types (so `tsc` fails where it no longer
 * fits the spec).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";
import { OUTPUT, generate, generateFromRepo } from "../scripts/openapi_types.js";
import type { HistoryEvent, WorkflowTaskRequest } from "../src/common.js";
import type * as wire from "../src/generated/openapi.js";

test("src/generated/openapi.ts is up to date with openapi/openapi.yaml (npm run gen:openapi)", () => {
  assert.equal(readFileSync(OUTPUT, "utf8"), generateFromRepo(), "the spec changed: run `npm run gen:openapi` and fix what tsc reports");
});

test("the SDK's tolerant readers accept every body the spec describes", () => {
  // Compile-time: these assignments fail `tsc` if the SDK's types drift from the spec's.
  const event = (e: wire.Event): HistoryEvent => e;
  const task = (t: wire.WorkflowTaskRequest): WorkflowTaskRequest => t;
  assert.equal(typeof event, "function");
  assert.equal(typeof task, "function");
});

test("the generator maps the schema keywords the spec uses, and refuses others", () => {
  const spec = parse(`
components:
  schemas:
    Answer:
      description: Exactly one of two.
      type: object
      additionalProperties: false
      properties:
        result: {description: any JSON}
        failure: {$ref: '#/components/schemas/Failure'}
        identity: {type: string}
      oneOf:
        - required: [result]
        - required: [failure]
    Failure:
      type: object
      required: [message]
      properties:
        message: {type: string}
        kind: {type: string, enum: [a, b]}
        tags: {type: array, items: {type: string}}
        version: {type: [integer, 'null']}
        labels: {type: object, additionalProperties: {type: string}}
    Either: {oneOf: [{$ref: '#/components/schemas/Failure'}, {type: string, const: none}]}
`);
  assert.equal(
    generate(spec).split("*/\n/* eslint-disable */\n\n")[1],
    `/** Exactly one of two. */
export type Answer = {
  /** any JSON */
  result: unknown;
  identity?: string;
} | {
  failure: Failure;
  identity?: string;
};

export type Failure = {
  message: string;
  kind?: "a" | "b";
  tags?: string[];
  version?: number | null;
  labels?: {
    [key: string]: string;
  };
};

export type Either = Failure | "none";
`,
  );
  assert.throws(() => generate({ components: { schemas: { X: { type: "string", not: { const: "" } } } } }), /unsupported schema keyword not/);
});
