// Stand-in for `vitest` in the CommonJS build of `shared-session/testing/conformance`: vitest cannot be
// require()d, so MemoryStore stays usable from CommonJS and the conformance suite says what to do.
function esmOnly(): never {
  throw new Error(
    "[shared-session] runStoreConformance needs vitest, which cannot be loaded with require(): import shared-session/testing/conformance from an ESM test file (vitest runs test files as ESM)",
  );
}
export const describe = esmOnly;
export const it = esmOnly;
export const expect = esmOnly;
export const beforeAll = esmOnly;
export const afterAll = esmOnly;
