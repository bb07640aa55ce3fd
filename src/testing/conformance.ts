import { afterAll, beforeAll, describe } from "vitest";
import type { SessionStore } from "../core/store.js";
import { compareAndSetSuite } from "./suites/compare-and-set.js";
import { createSuiteContext } from "./suites/context.js";
import { listSuite } from "./suites/list.js";
import { ownerIndexSuite } from "./suites/owner-index.js";
import { recordsSuite } from "./suites/records.js";
import { ttlSuite } from "./suites/ttl.js";
import { versionedReadsSuite } from "./suites/versioned-reads.js";

/** How {@link runStoreConformance} gets and inspects the store under test. */
export interface ConformanceOptions<S extends SessionStore = SessionStore> {
  /** Label of the `describe` block. */
  name: string;
  /** Make the store under test. Called once for the suite. */
  createStore: () => S | Promise<S>;
  /**
   * Seconds of TTL the **server** holds for `id` (read from the server, not from the store object),
   * or `null` when the item is absent. Without it, TTL checks fall back to observing expiry.
   */
  ttlOf?: (store: S, id: string) => Promise<number | null>;
  /** Wait `seconds`. Real time by default; pass a fake-timer advance for in-memory stores. */
  sleep?: (seconds: number) => Promise<void>;
  /** Release the store after the suite. Default: `store.close()` when present. */
  dispose?: (store: S) => Promise<void>;
  /** Per-test timeout in milliseconds. @default 30000 */
  timeout?: number;
}

/**
 * Register the `SessionStore` conformance tests (vitest) for a store. Every adapter of this
 * project runs it against real servers; adapter authors can run it for theirs.
 *
 * The tests come in named suites: `records` (what every store does), then one per capability or
 * optional method: `ttl`, `list`, `compareAndSet`, `getVersioned`, `ownerIndex`. A test whose
 * capability the store lacks is reported as skipped, with the reason, never as passed.
 *
 * @example
 * import { runStoreConformance } from "shared-session/testing/conformance";
 * runStoreConformance({ name: "MyStore", createStore: () => new MyStore(client), ttlOf: (s, id) => readTtlFromServer(id) });
 */
export function runStoreConformance<S extends SessionStore>(options: ConformanceOptions<S>): void {
  describe(`SessionStore conformance: ${options.name}`, () => {
    let store: S | undefined;
    const t = createSuiteContext(options, () => store!);

    beforeAll(async () => {
      store = await options.createStore();
    });
    afterAll(async () => {
      if (!store) return;
      if (options.dispose) await options.dispose(store);
      else await store.close?.();
    });

    recordsSuite(t);
    ttlSuite(t);
    listSuite(t);
    compareAndSetSuite(t);
    versionedReadsSuite(t);
    ownerIndexSuite(t);
  });
}
