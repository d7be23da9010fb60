/**
 * The client over TLS (`node:https` on Node). A private CA is trusted the
 * documented Node way: `NODE_EXTRA_CA_CERTS`, read at process start.
 * The test makes a CA and a certificate with the `openssl` command (no
 * committed keys), runs `baton dev --tls-cert/--tls-key`, and runs the
 * client in a child Node process with and without the variable.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { BATON_BINARY, SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const OPENSSL = spawnSync("openssl", ["version"]).status === 0;
const CLIENT = fileURLToPath(new URL("../src/client.js", import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/** Runs a client in a child Node process: starts 5 runs, prints what happened. */
function runClient(address: string, env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  const script = `
    const { Client, Connection } = await import(${JSON.stringify(CLIENT)});
    const client = new Client({ connection: await Connection.connect({ address: ${JSON.stringify(address)} }) });
    const handles = await Promise.all([0, 1, 2, 3, 4].map((i) =>
      client.workflow.start("Anything", { workflowId: "tls-" + i + "-" + process.pid, taskQueue: "nobody" })));
    console.log("started " + handles.length);`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env, encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("TLS", { skip: SKIP_WITHOUT_BINARY || (!OPENSSL && "needs the openssl command") }, () => {
  let dir: string;
  let node: ChildProcess;
  let address: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "baton-tls-"));
    const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    ssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Baton test CA");
    ssl("req", ...ec, "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=localhost");
    writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    ssl("x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "cert.pem", "-days", "1", "-extfile", "ext.cnf");
    const port = await freePort();
    address = `https://localhost:${port}`;
    node = spawn(
      BATON_BINARY ?? "baton",
      ["dev", "--db", ":memory:", "--listen", `127.0.0.1:${port}`, "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")],
      { stdio: "ignore" },
    );
    await until("the TLS node", async () => (runClient(address, { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "ca.pem") }).status === 0 ? true : undefined), 30_000);
  });

  after(() => {
    node?.kill();
  });

  test("the client trusts the server through NODE_EXTRA_CA_CERTS", () => {
    const r = runClient(address, { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "ca.pem") });
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /started 5/);
  });

  test("without the CA the server is refused", () => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const r = runClient(address, env);
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/i);
  });
});
