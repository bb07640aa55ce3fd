// MemoryStore needs no test runner: this entry imports nothing from vitest (jest, node:test and
// plain scripts can use it). The conformance suite is `shared-session/testing/conformance`.
export { MemoryStore } from "./memory-store.js";
export type { MemoryStoreOptions } from "./memory-store.js";
