/**
 * Offline push: a DM that reached no socket of the user goes to the push queue (src/push.ts delivers it).
 */
import type { DmMessage } from "../../protocol";
import type { InboxContext } from "./context";

/** Offline pushes. */
export class InboxPush {
  constructor(private readonly c: InboxContext) {}

  async enqueuePush(message: DmMessage, fromName: string, preview: string, unread: number): Promise<void> {
    try {
      await this.c.env.PUSH_QUEUE.send({
        kind: "dm",
        userId: message.to,
        conversationId: message.conversationId,
        messageId: message.id,
        seq: message.seq,
        from: message.from,
        fromName,
        preview,
        unread,
        createdAt: message.createdAt,
      });
    } catch (err) {
      // The message is stored and will be seen on the next connect; only the push is lost.
      this.c.host.log("push enqueue", err);
    }
  }
}
