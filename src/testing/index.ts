export { MemoryStore } from "./memory-store.js";
export type { MemoryStoreOptions } from "./memory-store.js";
export { runStoreConformance } from "./conformance.js";
export type { ConformanceOptions } from "./conformance.js";
