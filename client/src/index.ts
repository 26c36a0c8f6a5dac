/**
 * @edge-chat/client: the SDK of edge-chat. One reconnecting socket per room and one for the inbox,
 * gap-free resume (`join_room { since, sinceRev }`, `sync`) of messages and of their edits, deletions and
 * reactions, sends acknowledged exactly once across reconnects,
 * heartbeats, and the REST helpers. See docs/client.md.
 */
export { ChatClient, type ChatClientOptions, type ChatClientEvents } from "./client.js";
export { Room, type RoomEvents, type RoomSendInput, type RoomState, type RoomSystem, type Typing, type PresentUser } from "./room.js";
export {
  Inbox,
  type InboxEvents,
  type DmSendInput,
  type DmNotification,
  type PresenceUpdate,
  type ReadReceipt,
  type Suggestion,
} from "./inbox.js";
export { applyChange, type Change, type MessageUpdated, type MessageDeleted, type Reaction, type Mention, type Reload } from "./changes.js";
export { MemoryOutboxStore, LocalStorageOutboxStore, type OutboxStore, type PendingSend, type StorageLike } from "./outbox.js";
export { ChatError, PERMANENT_CODES, type ChatErrorCode } from "./errors.js";
export { backoffDelay, BACKOFF_DEFAULTS, type BackoffOptions } from "./backoff.js";
export type { ConnectionState, TimingOptions, WebSocketConstructor, WebSocketLike } from "./connection.js";
export type { Listener } from "./emitter.js";
export type {
  Rest,
  RoomInfo,
  RoomPage,
  NewRoom,
  HistoryPage,
  Conversation,
  PresenceEntry,
  NearbyRoom,
  Suggestions,
  UploadedMedia,
  UploadProgress,
} from "./rest.js";
export type { ClientFrame, ServerFrame, RoomMessage, DmMessage, MediaDescriptor, Status, SettableStatus, WsErrorCode } from "./wire.js";
