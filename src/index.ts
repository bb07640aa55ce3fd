export { createSessionManager, hashId, SessionManager } from "./core/manager.js";
export type { CommitResult, RequestFacts, SessionEventName, SessionEvents, SessionOptions } from "./core/manager.js";
export type { CookieOptions } from "./core/cookie.js";
export { SessionConfigError, SessionError, SessionTooLargeError, StoreUnavailableError, UnsupportedOperationError } from "./core/errors.js";
export { decodeRecord, encodeRecord, jsonSerializer, RECORD_VERSION } from "./core/record.js";
export type { DecodedRecord, RecordMeta, Serializer } from "./core/record.js";
export type { CompareAndSetResult, OwnerEntry, OwnerIndex, SessionStore, StoreCapabilities, VersionedRecord } from "./core/store.js";
export type { DataKey, ReservedKey, Session, SessionApi, SessionCallback, SessionData, SessionLogEntry, SessionLogger } from "./core/types.js";
export type { CommitTraceContext, LoadTraceContext, StoreTraceContext } from "./core/tracing.js";
