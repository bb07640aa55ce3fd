/**
 * With SHARED_SESSION_IOREDIS_MODULE set (CI's second Redis run, on another ioredis major), the
 * `require("ioredis")` by which createRedisClient loads ioredis gets that copy too, as the imports
 * do through the alias in vitest.config.ts.
 */
import Module from "node:module";

const target = process.env.SHARED_SESSION_IOREDIS_MODULE;
if (target) {
  type Resolve = (request: string, ...rest: unknown[]) => string;
  const modules = Module as unknown as { _resolveFilename: Resolve };
  const resolve = modules._resolveFilename;
  modules._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    return resolve.call(this, request === "ioredis" ? target : request, ...rest);
  };
}
