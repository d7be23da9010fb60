/** Node's `http` server (and Express): a few lines of accessors around the fetch handler. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FetchHandler } from "../core/handler.js";

/** A `(req, res)` listener for `http.createServer` or Express (mount it with no body parser in front). */
export function toNodeListener(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("error", () => {
      res.statusCode = 400;
      res.end();
    });
    req.on("end", () => {
      void (async () => {
        try {
          const headers = new Headers();
          for (const [k, v] of Object.entries(req.headers)) {
            if (Array.isArray(v)) for (const x of v) headers.append(k, x);
            else if (v !== undefined) headers.set(k, v);
          }
          const method = req.method ?? "GET";
          const host = req.headers.host ?? "localhost";
          const init: RequestInit = { method, headers };
          if (method !== "GET" && method !== "HEAD") init.body = Buffer.concat(chunks);
          const response = await handler(new Request(`http://${host}${req.url ?? "/"}`, init));
          res.statusCode = response.status;
          response.headers.forEach((v, k) => res.setHeader(k, v));
          res.end(Buffer.from(await response.arrayBuffer()));
        } catch (err) {
          res.statusCode = 500;
          res.end(String(err));
        }
      })();
    });
  };
}

