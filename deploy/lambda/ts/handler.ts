/**
 * An example Baton handler on AWS Lambda behind a function URL
 * (deploy/lambda/template.yaml builds it with esbuild). The endpoint's
 * signing secret comes from BATON_SIGNING_SECRET, the API's URL (for
 * heartbeats) from BATON_SERVER_URL; test/handler.test.ts
 * pushes real Baton tasks through it as function URL events.
 */
import { createHandler, toLambdaHandler } from "@baton/sdk";
import * as activities from "./activities.js";
import * as workflows from "./workflows.js";

const signingSecret = process.env["BATON_SIGNING_SECRET"];
if (!signingSecret) throw new Error("BATON_SIGNING_SECRET is not set (the endpoint's whsec_… secret)");

// The API, for activity heartbeats and async completion (optional).
const serverUrl = process.env["BATON_SERVER_URL"] || undefined;

export const handler = toLambdaHandler(createHandler({ workflows, activities, signingSecret, serverUrl }));
