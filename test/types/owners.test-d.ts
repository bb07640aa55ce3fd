import { describe, expectTypeOf, it } from "vitest";
import type { SessionError, SessionLimitError} from "../../src/index.js";
import { type OwnerAddResult, type OwnerIndex, type SessionEvents, type SessionLimit, type SessionManager, type SessionOptions } from "../../src/index.js";

describe("sessions per owner: public types (#19)", () => {
  it("revokeOwnerSessions takes an owner and optional before / except, and resolves a count", () => {
    expectTypeOf<SessionManager["revokeOwnerSessions"]>().parameters.toEqualTypeOf<[owner: string | number, options?: { before?: number; except?: object }]>();
    expectTypeOf<SessionManager["revokeOwnerSessions"]>().returns.toEqualTypeOf<Promise<number>>();
  });
  it("maxSessionsPerOwner names its policy, and refusal is a typed SessionError", () => {
    expectTypeOf<SessionOptions["maxSessionsPerOwner"]>().toEqualTypeOf<SessionLimit | undefined>();
    expectTypeOf<SessionLimit["onLimit"]>().toEqualTypeOf<"evict-least-active" | "refuse">();
    // Renamed before the first release: the old name is a type error (and refused at construction).
    // @ts-expect-error "evict-oldest" is now "evict-least-active"
    const old: SessionLimit = { limit: 1, onLimit: "evict-oldest" };
    expectTypeOf(old).toEqualTypeOf<SessionLimit>();
    expectTypeOf<SessionLimitError>().toMatchTypeOf<SessionError>();
    expectTypeOf<SessionLimitError["limit"]>().toEqualTypeOf<number>();
    expectTypeOf<OwnerAddResult["evicted"]>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<NonNullable<OwnerIndex["touch"]>>().toEqualTypeOf<(owner: string, id: string, expiresAt: number) => Promise<void>>();
  });
  it("events carry hashed ids and the owner", () => {
    expectTypeOf<SessionEvents["expired"]>().toEqualTypeOf<{ session: string; owner?: string; reason?: "absolute" | "idle" }>();
    expectTypeOf<SessionEvents["revoked"]>().toEqualTypeOf<{ session: string; owner: string }>();
    expectTypeOf<SessionEvents["evicted"]>().toEqualTypeOf<{ session: string; owner: string }>();
  });
});
