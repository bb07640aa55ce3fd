import signature from "cookie-signature";
import { describe, expect, it } from "vitest";
import { resolveSecrets, sign, verify } from "../../src/core/signing.js";
import { SECRET } from "../helpers/manager-support.js";

const valid = (id: string) => /^[0-9a-f-]{36}$/.test(id);
const idOf = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const OLD = "an-older-secret-of-32-characters-at-least";

describe("cookie verification (no cache of cookie values: #16 item 9)", () => {
  it("accepts exactly what cookie-signature signs, with the index of the secret that verified", () => {
    const value = signature.sign(idOf(1), SECRET);
    expect(sign(idOf(1), [SECRET])).toBe(value);
    expect(verify(value, [SECRET], valid)).toEqual({ id: idOf(1), secretIndex: 0 });
    expect(verify(signature.sign(idOf(1), OLD), [SECRET, OLD], valid)).toEqual({ id: idOf(1), secretIndex: 1 });
  });

  it("refuses an altered value, including a non-canonical last base64 character that decodes to the same bytes", () => {
    const secrets = [SECRET];
    const value = signature.sign(idOf(2), SECRET);
    expect(verify(value, secrets, valid)).not.toBeNull();
    const last = value.at(-1)!;
    // The 43rd character carries 2 unused bits: its neighbours decode to the same 32 bytes.
    const code = last.charCodeAt(0);
    for (const other of [String.fromCharCode(code ^ 1), String.fromCharCode(code ^ 2), "A", "B"]) {
      if (other === last || !/[A-Za-z0-9+/]/.test(other)) continue;
      expect(verify(value.slice(0, -1) + other, secrets, valid)).toBeNull();
    }
    expect(verify(`${idOf(3)}${value.slice(value.indexOf("."))}`, secrets, valid)).toBeNull();
    expect(verify(`${value}=`, secrets, valid)).toBeNull();
  });

  it("applies the caller's id check every time", () => {
    const value = signature.sign(idOf(4), SECRET);
    expect(verify(value, [SECRET], valid)).not.toBeNull();
    expect(verify(value, [SECRET], () => false)).toBeNull();
  });

  it("verifies against the secrets given: another manager's secrets do not accept the value", () => {
    const value = signature.sign(idOf(5), SECRET);
    expect(verify(value, [SECRET], valid)).not.toBeNull();
    expect(verify(value, ["another-secret-another-secret-123"], valid)).toBeNull();
  });
});

describe("secrets (#16 item 11)", () => {
  it("every rotation secret must be at least 32 characters, and the messages are whole sentences", () => {
    expect(() => resolveSecrets([SECRET, "x"])).toThrow(/secret\[1\] must be at least 32 characters, got 1/);
    expect(() => resolveSecrets([SECRET, ""])).toThrow(/secret\[1\] must be at least 32 characters, got 0/);
    expect(() => resolveSecrets("short")).toThrow(/the signing secret must be at least 32 characters/);
    expect(() => resolveSecrets(undefined)).toThrow(/secret is required: a string of at least 32 characters, or an array of such strings \(the first signs, all verify\)/);
    expect(resolveSecrets([SECRET, OLD])).toEqual([SECRET, OLD]);
  });
});
