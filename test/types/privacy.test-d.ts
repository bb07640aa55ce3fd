import { describe, expectTypeOf, it } from "vitest";
import {
  createSessionManager,
  type CommitResult,
  type CommitTraceContext,
  type EncryptionOptions,
  type HeaderCarrierOptions,
  type LoadTraceContext,
  type RequestFacts,
  type SessionOptions,
  type StoreTraceContext,
} from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";

const store = new MemoryStore({ quiet: true });

describe("operations and privacy options and results", () => {
  it("types encryption keys, storeKeySecret and the header carrier", () => {
    expectTypeOf<SessionOptions["encryption"]>().toEqualTypeOf<EncryptionOptions | undefined>();
    expectTypeOf<EncryptionOptions["keys"]>().toEqualTypeOf<readonly (string | Uint8Array)[]>();
    expectTypeOf<SessionOptions["storeKeySecret"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf<SessionOptions["header"]>().toEqualTypeOf<HeaderCarrierOptions | undefined>();
    createSessionManager({ store, secret: "x".repeat(32), encryption: { keys: [Buffer.alloc(32), "a".repeat(64)] }, header: { name: "x-session" } });
    // @ts-expect-error keys are strings or bytes
    createSessionManager({ store, secret: "x".repeat(32), encryption: { keys: [42] } });
  });

  it("types the header on load and commit", () => {
    expectTypeOf<RequestFacts["header"]>().toEqualTypeOf<string | readonly string[] | null | undefined>();
    expectTypeOf<CommitResult["setHeader"]>().toEqualTypeOf<readonly [name: string, value: string] | undefined>();
    const manager = createSessionManager({ store, secret: "x".repeat(32) });
    expectTypeOf(manager.headerName).toEqualTypeOf<string | undefined>();
    expectTypeOf(manager.hashOf).returns.toEqualTypeOf<string>();
    expectTypeOf(manager.storeKeyOf).returns.toEqualTypeOf<string>();
  });

  it("types the trace contexts without any room for an id or data", () => {
    expectTypeOf<LoadTraceContext["outcome"]>().toEqualTypeOf<"none" | "rejected" | "hit" | "miss" | "corrupt" | "expired" | "error" | undefined>();
    expectTypeOf<CommitTraceContext["conflicts"]>().toEqualTypeOf<number>();
    expectTypeOf<keyof StoreTraceContext>().toEqualTypeOf<"store" | "operation" | "session" | "outcome" | "error">();
  });
});
