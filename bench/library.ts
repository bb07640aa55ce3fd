/**
 * Which build of shared-session the benchmark runs. By default the package as it is published: the
 * tsup configuration of the repository, built (ESM, no type declarations) into bench/results/build, so our
 * code runs as users get it and not through tsx's on-the-fly transform (which, for one, wraps every
 * closure in a `__name` helper). `BENCH_SOURCE=1` runs the TypeScript sources instead (for profiles
 * with source lines). `BENCH_LIBRARY_DIR=<dir>` runs an ESM build you made elsewhere (say, of
 * another commit) instead, to compare.
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Options } from "tsup";
import type * as Memcached from "../adapters/memcached.js";
import type * as Redis from "../adapters/redis.js";
import type * as Express from "../src/frameworks/express/index.js";
import type * as Fastify from "../src/frameworks/fastify.js";
import type * as Koa from "../src/frameworks/koa.js";
import type * as Core from "../src/index.js";

export interface Library {
  readonly core: typeof Core;
  readonly express: typeof Express;
  readonly koa: typeof Koa;
  readonly fastify: typeof Fastify;
  readonly redis: typeof Redis;
  readonly memcached: typeof Memcached;
}

/** Environment variable through which the parent tells the app processes where the build is. */
export const LIBRARY_VARIABLE = "BENCH_LIBRARY_DIR";
const BUILD_DIR = fileURLToPath(new URL("./results/build/", import.meta.url));

/** Build the package into bench/results/build (about a second) and point this process and its children at it. */
export async function buildLibrary(): Promise<string> {
  if (process.env.BENCH_SOURCE === "1") return "source";
  // A build made elsewhere (e.g. of another commit, to compare): use it as it is.
  const given = process.env[LIBRARY_VARIABLE];
  if (given !== undefined && given !== "") return given;
  const { build } = await import("tsup");
  const configs = (await import("../tsup.config.js")).default as Options | Options[];
  const esm = (Array.isArray(configs) ? configs : [configs]).find((c) => (Array.isArray(c.format) ? c.format.includes("esm") : c.format === "esm"));
  if (esm === undefined) throw new Error("bench: tsup.config.ts has no ESM build");
  await build({ ...esm, outDir: BUILD_DIR, dts: false, sourcemap: false, silent: true, clean: true });
  process.env[LIBRARY_VARIABLE] = BUILD_DIR;
  return BUILD_DIR;
}

let loaded: Promise<Library> | undefined;

/** The library for this process (loaded once): the build the parent made, or the sources. */
export function library(): Promise<Library> {
  return (loaded ??= loadLibrary());
}

async function loadLibrary(): Promise<Library> {
  const dir = process.env.BENCH_SOURCE === "1" ? undefined : process.env[LIBRARY_VARIABLE];
  if (dir === undefined) {
    return {
      core: await import("../src/index.js"),
      express: await import("../src/frameworks/express/index.js"),
      koa: await import("../src/frameworks/koa.js"),
      fastify: await import("../src/frameworks/fastify.js"),
      redis: await import("../adapters/redis.js"),
      memcached: await import("../adapters/memcached.js"),
    };
  }
  const from = <T>(name: string) => import(pathToFileURL(`${dir}/${name}.js`).href) as Promise<T>;
  return {
    core: await from<Library["core"]>("index"),
    express: await from<Library["express"]>("express"),
    koa: await from<Library["koa"]>("koa"),
    fastify: await from<Library["fastify"]>("fastify"),
    redis: await from<Library["redis"]>("redis"),
    memcached: await from<Library["memcached"]>("memcached"),
  };
}
