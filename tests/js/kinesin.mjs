// Starting the kinesin binary for the JS suites (not a test file: `node --test` skips it).
// KINESIN_BIN names the binary (default: ../../target/release/kinesin).

import { spawn } from "node:child_process";
import { createServer, connect } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.KINESIN_BIN || path.resolve(here, "../../target/release/kinesin");
const STARTUP_TIMEOUT_MS = 30_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = connect(port, "127.0.0.1");
    c.on("connect", () => { c.destroy(); resolve(true); });
    c.on("error", () => resolve(false));
  });
}

/// An ephemeral server with instant transitions and limits off, plus `extraArgs`; resolves to
/// `{ server, endpoint }` once it accepts connections. The environment's KINESIN_DATA_DIR and
/// KINESIN_CREDENTIALS are ignored (the arguments decide).
export async function startKinesin(extraArgs = []) {
  const port = await freePort();
  const env = { ...process.env };
  delete env.KINESIN_DATA_DIR;
  delete env.KINESIN_CREDENTIALS;
  env.KINESIN_LOG_LEVEL ??= "warn";
  const server = spawn(BIN, [
    "serve", "--ephemeral", "--listen", `127.0.0.1:${port}`, ...extraArgs,
    "--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0",
    "--limits", "off",
  ], { stdio: ["ignore", "ignore", "inherit"], env });
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (!(await canConnect(port))) {
    if (server.exitCode !== null) throw new Error(`kinesin exited with ${server.exitCode}`);
    if (Date.now() > deadline) throw new Error(`kinesin did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { server, endpoint: `http://127.0.0.1:${port}` };
}
