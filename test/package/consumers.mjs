#!/usr/bin/env node
// Packs the library as npm would publish it and installs the tarball into fresh projects shaped
// like real ones (test/package/consumers/*): strict TypeScript under every moduleResolution, next to
// ioredis 5, next to vitest 2, and step 1 of a migration with @types/express-session still installed.
// Each project is installed with plain `npm install` (no --force, no --legacy-peer-deps: an ERESOLVE
// fails the check) and then runs its own `npm run check`. Installs run in parallel on one npm cache.
//
//   node test/package/consumers.mjs [--no-build] [--keep] [project ...]
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const args = process.argv.slice(2);
const build = !args.includes("--no-build");
const keep = args.includes("--keep");
const fixtures = join(here, "consumers");
const wanted = args.filter((a) => !a.startsWith("--"));
const projects = readdirSync(fixtures).filter((name) => wanted.length === 0 || wanted.includes(name));
if (projects.length === 0) throw new Error(`no consumer project matches ${wanted.join(", ")}`);

// npm passes its own settings to scripts as npm_* variables; a nested npm must not inherit the
// repository's (prefix, package name...), only where the cache and the registry are.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith("npm_") || ["npm_config_cache", "npm_config_registry", "npm_config_userconfig"].includes(key)),
);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const started = Date.now();
const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(0)} s`;

if (build) execFileSync(npm, ["run", "build", "--silent"], { cwd: root, stdio: ["ignore", "ignore", "inherit"], env });
const work = mkdtempSync(join(tmpdir(), "shared-session-consumers-"));
const packed = execFileSync(npm, ["pack", "--pack-destination", work, "--silent"], { cwd: root, encoding: "utf8", env }).trim().split("\n").pop();
const tarball = join(work, packed);
console.log(`[consumers] packed ${packed} into ${work}`);

/** Run a command, collecting its output; resolves with the exit code. */
function run(cwd, command, commandArgs, log) {
  return new Promise((resolvePromise) => {
    const child = spawn(command, commandArgs, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (chunk) => log.push(String(chunk)));
    child.stderr.on("data", (chunk) => log.push(String(chunk)));
    child.on("error", (err) => {
      log.push(String(err));
      resolvePromise(1);
    });
    child.on("close", (code) => resolvePromise(code ?? 1));
  });
}

async function check(name) {
  const cwd = join(work, name);
  cpSync(join(fixtures, name), cwd, { recursive: true, filter: (src) => !/[/\\](node_modules|out)$/.test(src) });
  const log = [];
  const t0 = Date.now();
  const installed = await run(cwd, npm, ["install", tarball, "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], log);
  if (installed !== 0) return { name, ok: false, step: "npm install", log, time: seconds(t0) };
  const installTime = seconds(t0);
  const t1 = Date.now();
  const checked = await run(cwd, npm, ["run", "check", "--silent"], log);
  return { name, ok: checked === 0, step: "npm run check", log, time: `install ${installTime}, check ${seconds(t1)}` };
}

const results = await Promise.all(projects.map(check));
for (const result of results) {
  console.log(`[consumers] ${result.ok ? "ok  " : "FAIL"} ${result.name} (${result.time})${result.ok ? "" : ` at ${result.step}`}`);
  if (!result.ok) console.log(result.log.join("").replace(/^/gm, `  ${result.name} | `));
}
console.log(`[consumers] ${results.filter((r) => r.ok).length}/${results.length} passed in ${seconds(started)}`);
if (keep) console.log(`[consumers] kept ${work}`);
else rmSync(work, { recursive: true, force: true });
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
