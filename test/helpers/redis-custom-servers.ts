/**
 * Redis servers with settings the test-services start functions do not take: one that answers
 * `GETEX` as a server older than 6.2 does, and one that speaks TLS. Started through the launcher
 * test-services chose for this run (binaries or Docker), on free ports, removed by `close()`.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { PortTakenError, type LaunchedServer } from "../services/launcher.js";
import { pickPort } from "../services/ports.js";
import { chooseLauncher, launcherFor } from "../services/resolve.js";
import type { LauncherName } from "../services/types.js";

async function launcherName(): Promise<LauncherName> {
  const chosen = inject("sharedSessionServices")?.launcher;
  if (typeof chosen === "string") return chosen;
  const choice = await chooseLauncher();
  if ("launcher" in choice) return choice.launcher;
  throw new Error(`cannot start a Redis server for this test: ${choice.problem}`);
}

function baseArgs(port: number): string[] {
  return ["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "no", "--save", "", "--appendonly", "no"];
}

async function launch(
  args: (port: number, extraPort: number) => string[],
  files: { name: string; content: string }[] = [],
): Promise<{ server: LaunchedServer; extraPort: number }> {
  const launcher = launcherFor(await launcherName());
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort();
    const extraPort = await pickPort();
    try {
      return { server: await launcher.launch({ kind: "redis", port, args: args(port, extraPort), files }), extraPort };
    } catch (error) {
      if (error instanceof PortTakenError && attempt < 5) continue;
      throw error;
    }
  }
}

/** A Redis server without `GETEX` (`rename-command GETEX ""`): "ERR unknown command", as before 6.2. */
export async function startRedisWithoutGetex(): Promise<{ url: string; close: () => Promise<void> }> {
  const { server } = await launch((port) => [...baseArgs(port), "--rename-command", "GETEX", ""]);
  return { url: `redis://${server.address.host}:${server.address.port}`, close: () => server.close() };
}

/** A CA and a server certificate for 127.0.0.1, made with the `openssl` command for this run. */
function makeCertificates(): { ca: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "redis-tls-"));
  const openssl = (...args: string[]) => {
    try {
      execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    } catch (error) {
      throw new Error(`the TLS test needs the openssl command (apt-get install openssl): ${(error as Error).message}`, { cause: error });
    }
  };
  try {
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=shared-session test CA");
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
    writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext");
    const read = (name: string) => readFileSync(join(dir, name), "utf8");
    return { ca: read("ca.crt"), cert: read("server.crt"), key: read("server.key") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A Redis server that accepts TLS on `tlsPort` (server certificate for 127.0.0.1, signed by `ca`;
 * no client certificates required), and plain connections on `port` for readiness checks.
 */
export async function startRedisWithTls(): Promise<{ host: string; port: number; tlsPort: number; ca: string; close: () => Promise<void> }> {
  const { ca, cert, key } = makeCertificates();
  const { server, extraPort } = await launch(
    (port, tlsPort) => [
      ...baseArgs(port),
      "--tls-port",
      String(tlsPort),
      "--tls-cert-file",
      "server.crt",
      "--tls-key-file",
      "server.key",
      "--tls-ca-cert-file",
      "ca.crt",
      "--tls-auth-clients",
      "no",
    ],
    [
      { name: "server.crt", content: cert },
      { name: "server.key", content: key },
      { name: "ca.crt", content: ca },
    ],
  );
  return { host: server.address.host, port: server.address.port, tlsPort: extraPort, ca, close: () => server.close() };
}
