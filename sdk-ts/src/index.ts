/**
 * `@baton/sdk`: serve Temporal-shaped workflows and activities to a Baton
 * server as one fetch-API handler.
 */
export { createHandler, type FetchHandler, type HandlerOptions, SDK_NAME, SDK_VERSION } from "./handler.js";
export { toNodeListener, toLambdaHandler, type LambdaHttpEvent, type LambdaHttpResult } from "./adapters.js";
export { sign, verify, decodeSecret } from "./signing.js";
