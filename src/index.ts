/** Worker entry: the HTTP app, the scheduled self-check, the push queue consumer, and the Durable Object classes. */
import { createApp } from "./app";
import { runSelfCheck } from "./health";
import { handlePushBatch } from "./push";

export { ChatRoom } from "./objects/chat-room";
export { Inbox } from "./objects/inbox";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runSelfCheck(env));
  },
  async queue(batch, env) {
    await handlePushBatch(batch, env);
  },
} satisfies ExportedHandler<Env>;
