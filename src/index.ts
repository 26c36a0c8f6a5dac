/** Worker entry: the HTTP app, the scheduled self-check and media sweep, the push queue consumer, and the Durable Object classes. */
import { createApp } from "./app";
import { runSelfCheck } from "./health";
import { logError } from "./log";
import { sweepOrphanObjects, sweepUnattachedMedia } from "./media/store";
import { handlePushBatch } from "./push";

export { ChatRoom } from "./objects/chat-room";
export { Inbox } from "./objects/inbox";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runSelfCheck(env));
    ctx.waitUntil(sweepUnattachedMedia(env).catch((err) => logError("media sweep failed", err)));
    ctx.waitUntil(sweepOrphanObjects(env).catch((err) => logError("orphan object sweep failed", err)));
  },
  async queue(batch, env) {
    await handlePushBatch(batch, env);
  },
} satisfies ExportedHandler<Env>;
