/**
 * `@baton/sdk`: serve Temporal-shaped workflows and activities to a Baton
 * server as one fetch-API handler.
 */
export { type BatonHandler, createHandler, type FetchHandler, type HandlerOptions, type HandlerStats, SDK_NAME, SDK_VERSION } from "./core/handler.js";
export { toNodeListener } from "./adapters/node.js";
export { toLambdaHandler, type LambdaContext, type LambdaHttpEvent, type LambdaHttpResult } from "./adapters/lambda.js";
export { sign, verify, decodeSecret } from "./core/signing.js";
export { withSchema, type JsonSchema, type SchemaOptions, type WorkflowSchemaOptions } from "./core/schema.js";
