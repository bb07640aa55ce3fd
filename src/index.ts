/**
 * The shape of your session data. Augment it by declaration merging (in a `.d.ts` file, add
 * `export {}` so that it is a module):
 *
 * @example
 * declare module "shared-session" {
 *   interface SessionData { userId: number; cart: string[] }
 * }
 */
// Declared here, in the entry module, so the published index.d.ts holds the declaration itself.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface SessionData {}

export { createSessionManager, hashId, SessionManager } from "./core/manager.js";
export type { CommitResult, RequestFacts, SessionEventName, SessionEvents, SessionOptions } from "./core/manager.js";
export type { CookieOptions } from "./core/cookie.js";
export { SessionConfigError, SessionError, SessionTooLargeError, StoreUnavailableError, UnsupportedOperationError } from "./core/errors.js";
export { decodeRecord, encodeRecord, jsonSerializer, RECORD_VERSION } from "./core/record.js";
export type { DecodedRecord, RecordMeta, Serializer } from "./core/record.js";
export type { CompareAndSetResult, OwnerAddResult, OwnerEntry, OwnerIndex, SessionStore, StoreCapabilities, VersionedRecord } from "./core/store.js";
export type { DataKey, RegenerateOptions, ReservedKey, Session, SessionApi, SessionCallback, SessionCookieView, SessionLogEntry, SessionLogger } from "./core/types.js";
export type { CommitTraceContext, LoadTraceContext, StoreTraceContext } from "./core/tracing.js";
export type { EncryptionOptions } from "./core/encryption.js";
export type { HeaderCarrierOptions } from "./core/header-carrier.js";
export { SessionLimitError } from "./core/owners.js";
export type { SessionLimit } from "./core/owners.js";
