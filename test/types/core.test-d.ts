import { describe, expectTypeOf, it } from "vitest";
import type {
  StoreUnavailableError} from "../../src/index.js";
import {
  createSessionManager,
  type CommitResult,
  type CompareAndSetResult,
  type Session,
  type SessionManager,
  type SessionStore,
  type VersionedRecord,
} from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { runStoreConformance } from "../../src/testing/conformance.js";

declare module "../../src/index.js" {
  interface SessionData {
    userId: number;
    cart: string[];
  }
}

const store = new MemoryStore({ quiet: true });

describe("SessionData augmentation", () => {
  it("types data as optional properties of the augmented shape", async () => {
    const manager = createSessionManager({ store, secret: "x".repeat(32) });
    const session = await manager.load(undefined, { secure: false });
    expectTypeOf(session.userId).toEqualTypeOf<number | undefined>();
    expectTypeOf(session.cart).toEqualTypeOf<string[] | undefined>();
    expectTypeOf(session.get("userId")).toEqualTypeOf<number | undefined>();
    // @ts-expect-error unknown keys are not session data
    session.unknownKey = 1;
    // @ts-expect-error wrong value type
    session.userId = "1";
    // @ts-expect-error set checks the value type
    session.set("userId", "x");
  });
  it("keeps the id read-only and the methods promise-returning", async () => {
    const session = {} as Session;
    expectTypeOf(session.id).toEqualTypeOf<string>();
    expectTypeOf(session.isNew).toEqualTypeOf<boolean>();
    expectTypeOf(session.regenerate()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(session.destroy).parameter(0).toEqualTypeOf<((err?: unknown) => void) | undefined>();
    // @ts-expect-error id is read-only
    session.id = "x";
  });
  it("regenerate takes a callback, a list of keys to keep, or { keep, renewDeadline }", () => {
    const session = {} as Session;
    expectTypeOf(session.regenerate(() => {})).toEqualTypeOf<Promise<void>>();
    expectTypeOf(session.regenerate(["message"], () => {})).toEqualTypeOf<Promise<void>>();
    expectTypeOf(session.regenerate({ keep: ["cart"] })).toEqualTypeOf<Promise<void>>();
    expectTypeOf(session.regenerate({ renewDeadline: true }, (err) => void err)).toEqualTypeOf<Promise<void>>();
    // @ts-expect-error keep names keys of the session data
    void session.regenerate({ keep: ["notAKey"] });
    // @ts-expect-error renewDeadline is a boolean
    void session.regenerate({ renewDeadline: "yes" });
    // @ts-expect-error a string is not a list of keys
    void session.regenerate("cart");
    // @ts-expect-error unknown option
    void session.regenerate({ keepAll: true });
  });
});

describe("the generic escape hatch", () => {
  it("types a manager with its own data shape, and reserved names are never data", async () => {
    type Custom = { tenant: string; save: number };
    const manager = createSessionManager<Custom>({ store, secret: "x".repeat(32) });
    expectTypeOf(manager).toEqualTypeOf<SessionManager<Custom>>();
    const session = await manager.load("sid=x", { secure: true });
    expectTypeOf(session.tenant).toEqualTypeOf<string | undefined>();
    expectTypeOf(session.save).toBeFunction();
    expectTypeOf(manager.commit(session)).toEqualTypeOf<Promise<CommitResult>>();
    expectTypeOf(manager.loadNow(undefined, { secure: true })).toEqualTypeOf<Session<Custom> | Promise<Session<Custom>>>();
    expectTypeOf(manager.commitNow(session)).toEqualTypeOf<CommitResult | Promise<CommitResult>>();
  });
});

describe("the store contract", () => {
  it("is implementable and checked", () => {
    expectTypeOf(store).toMatchTypeOf<SessionStore>();
    expectTypeOf<SessionStore["get"]>().returns.toEqualTypeOf<Promise<string | null>>();
    // @ts-expect-error a store must declare capabilities
    const broken: SessionStore = { name: "x", get: async () => null };
    void broken;
    expectTypeOf(runStoreConformance).parameter(0).toHaveProperty("createStore");
  });
  it("has optional versioned reads, whose version goes back to compare-and-set", () => {
    expectTypeOf<NonNullable<SessionStore["getVersioned"]>>().returns.toEqualTypeOf<Promise<VersionedRecord | null>>();
    expectTypeOf<VersionedRecord>().toEqualTypeOf<{ readonly record: string; readonly version?: string }>();
    expectTypeOf<NonNullable<SessionStore["compareAndSet"]>>().parameter(4).toEqualTypeOf<string | undefined>();
    expectTypeOf<Extract<CompareAndSetResult, { status: "written" }>>().toHaveProperty("version").toEqualTypeOf<string | undefined>();
    // A store without versions still implements the contract.
    const plain: SessionStore = { name: "plain", capabilities: store.capabilities, get: async () => null, create: async () => true, update: async () => true, touch: async () => true, destroy: async () => {} };
    void plain;
    // @ts-expect-error a version is a string
    const wrong: SessionStore = { ...plain, getVersioned: async () => ({ record: "r", version: 1 }) };
    void wrong;
  });
  it("exposes the HTTP answer on StoreUnavailableError", () => {
    expectTypeOf<StoreUnavailableError["status"]>().toEqualTypeOf<503>();
    expectTypeOf<StoreUnavailableError["retryAfter"]>().toEqualTypeOf<number>();
  });
});
