import type { ReservedKey } from "./types.js";

/**
 * Names the session object keeps for itself (its methods, and what would reach its prototype): never
 * data. Dropped from stored data on load, refused by `session.set`, left out of merges. The type
 * {@link ReservedKey} lists the same public names; the check below keeps the two in step.
 */
export const RESERVED: ReadonlySet<string> = new Set<ReservedKey | "__proto__" | "constructor" | "prototype">([
  "id",
  "sessionId",
  "isModified",
  "setLifetime",
  "cookie",
  "maxAge",
  "options",
  "isNew",
  "regenerate",
  "destroy",
  "save",
  "reload",
  "touch",
  "get",
  "set",
  "__proto__",
  "constructor",
  "prototype",
]);
