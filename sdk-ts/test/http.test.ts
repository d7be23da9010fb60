/**
 * The SDK's HTTP calls (src/core/http.ts) through both transports, against
 * real Node http servers on loopback: answers byte for byte, many calls at
 * once on kept-alive connections, a server that never answers, a port
 * nobody listens on, and a kept-alive connection the server drops.
 */
import assert from "node:assert/strict";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { Socket } from "node:net";
import { after, describe, test } from "node:test";
import { HttpCallError, TRANSPORT, type Transport, httpCallVia } from "../src/core/http.js";

async function serve(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ url: string; server: Server; connections: () => number }> {
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")));
  });
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a = server.address();
  if (typeof a !== "object" || a === null) throw new Error("no address");
  return { url: `http://127.0.0.1:${a.port}`, server, connections: () => connections };
}

/** The {@link HttpCallError} `call` rejects with (it must not answer). */
async function callError(call: Promise<unknown>): Promise<HttpCallError> {
  const err = await call.then(
    () => assert.fail("answered"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HttpCallError, String(err));
  return err;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

test("the runtime's transport is node:http on Node", () => {
  assert.equal(TRANSPORT, "node");
});

for (const transport of ["node", "fetch"] as Transport[]) {
  describe(`httpCall through ${transport}`, () => {
    const servers: Server[] = [];
    after(() => Promise.all(servers.map(close)));

    test("passes method, headers, body and status through, multi-byte text across chunks included", async () => {
      const s = await serve((req, res, body) => {
        res.writeHead(201, { "content-type": "application/json" });
        // A large answer, written in odd-sized pieces, so that multi-byte characters straddle chunks.
        const out = Buffer.from(JSON.stringify({ method: req.method, header: req.headers["x-baton"], body }));
        for (let i = 0; i < out.length; i += 7777) res.write(out.subarray(i, i + 7777));
        res.end();
      });
      servers.push(s.server);
      const body = JSON.stringify({ text: "héllo ✓ 😀 ".repeat(20_000) });
      const got = await httpCallVia(transport, "POST", `${s.url}/x`, { "x-baton": "yes" }, body);
      assert.equal(got.status, 201);
      assert.deepEqual(JSON.parse(got.text), { method: "POST", header: "yes", body });
      const bytes = await httpCallVia(transport, "PUT", `${s.url}/x`, {}, new TextEncoder().encode("é"));
      assert.equal(JSON.parse(bytes.text).body, "é");
      const get = await httpCallVia(transport, "GET", `${s.url}/x`, {});
      assert.deepEqual(JSON.parse(get.text), { method: "GET", body: "" });
    });

    test("200 calls, 50 at once, each get their own answer over a bounded set of connections", async () => {
      const s = await serve((_req, res, body) => {
        setTimeout(() => res.end(body), Math.random() * 3);
      });
      servers.push(s.server);
      const got = await Promise.all(
        Array.from({ length: 50 }, async (_, w) => {
          const seen: string[] = [];
          for (let i = 0; i < 4; i++) seen.push((await httpCallVia(transport, "POST", s.url, {}, `${w}.${i}`)).text);
          return seen;
        }),
      );
      assert.deepEqual(
        got,
        Array.from({ length: 50 }, (_, w) => [0, 1, 2, 3].map((i) => `${w}.${i}`)),
      );
      // Kept alive: about one connection per concurrent caller (undici's pool opens a few more), not one per call.
      assert.ok(s.connections() <= 75, `${s.connections()} connections for 200 calls`);
      const before = s.connections();
      for (let i = 0; i < 20; i++) await httpCallVia(transport, "POST", s.url, {}, "again");
      assert.equal(s.connections(), before, "sequential calls reuse a kept-alive connection");
    });

    test("a server that never answers: the call times out, maybe applied", async () => {
      const s = await serve(() => {});
      servers.push(s.server);
      const started = Date.now();
      const err = await callError(httpCallVia(transport, "POST", s.url, {}, "{}", 200));
      assert.equal(err.notSent, false);
      assert.match(err.message, /timed out after 200 ms/);
      assert.ok(Date.now() - started < 5000);
    });

    test("an answer that stops halfway: the call times out, maybe applied", async () => {
      const s = await serve((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"par');
      });
      servers.push(s.server);
      const err = await callError(httpCallVia(transport, "POST", s.url, {}, "{}", 300));
      assert.equal(err.notSent, false);
      assert.match(err.message, /timed out after 300 ms/);
    });

    test("nobody listening: the call fails as never sent", async () => {
      const s = await serve(() => {});
      const url = s.url;
      await close(s.server);
      const err = await callError(httpCallVia(transport, "POST", url, {}, "{}", 2000));
      assert.equal(err.notSent, true);
    });
  });
}

test("a kept-alive connection the server drops is replaced, and the call is made once", async () => {
  // The server answers each connection's first request and resets the
  // connection when a second one arrives on it, as a server whose idle
  // timeout fired just as the connection was reused.
  const served = new WeakMap<Socket, number>();
  let applied = 0;
  const s = await serve((req, res, body) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n > 1) {
      req.socket.destroy();
      return;
    }
    applied++;
    res.end(body);
  });
  try {
    for (let i = 0; i < 5; i++) assert.equal((await httpCallVia("node", "POST", s.url, {}, `call ${i}`)).text, `call ${i}`);
    assert.equal(applied, 5);
    assert.equal(s.connections(), 5);
  } finally {
    await close(s.server);
  }
});
