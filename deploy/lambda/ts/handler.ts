/**
 * An example Baton handler on AWS Lambda behind a function URL
 * (deploy/lambda/template.yaml builds it with esbuild). The endpoint's
 * signing secret comes from BATON_SIGNING_SECRET; test/handler.test.ts
 * pushes real Baton tasks through it as function URL events.
 */
import { createHandler, toLambdaHandler } from "@baton/sdk";
import * as activities from "./activities.js";
import * as workflows from "./workflows.js";

const signingSecret = process.env["BATON_SIGNING_SECRET"];
if (!signingSecret) throw new Error("BATON_SIGNING_SECRET is not set (the endpoint's whsec_… secret)");

export const handler = toLambdaHandler(createHandler({ workflows, activities, signingSecret }));
