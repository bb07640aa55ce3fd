import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import type { SessionStore } from "../../core/store.js";
import type { ConformanceOptions } from "../conformance.js";

/** What every suite of the conformance run shares: the store under test and the checks on it. */
export interface SuiteContext<S extends SessionStore> {
  readonly options: ConformanceOptions<S>;
  /** The store made by `options.createStore` (valid once the run's `beforeAll` has made it). */
  readonly store: () => S;
  readonly sleep: (seconds: number) => Promise<void>;
  /** Per-test timeout in milliseconds. */
  readonly timeout: number;
  readonly newId: () => string;
  /** Check the TTL the server holds for `id`, when `options.ttlOf` can read it. */
  readonly expectTtl: (id: string, expected: number) => Promise<void>;
}

/** A record-like value; stores treat records as opaque text. */
export function record(label: string): string {
  return `{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n${JSON.stringify({ label, nonce: randomUUID() })}`;
}

export function createSuiteContext<S extends SessionStore>(options: ConformanceOptions<S>, store: () => S): SuiteContext<S> {
  return {
    options,
    store,
    sleep: options.sleep ?? ((seconds) => new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000))),
    timeout: options.timeout ?? 30_000,
    newId: () => randomUUID(),
    async expectTtl(id, expected) {
      if (!options.ttlOf) return;
      const ttl = await options.ttlOf(store(), id);
      expect(ttl, `server TTL of ${id}`).not.toBeNull();
      expect(ttl!).toBeGreaterThan(expected - 3);
      expect(ttl!).toBeLessThanOrEqual(expected);
    },
  };
}

