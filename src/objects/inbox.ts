import { DurableObject } from "cloudflare:workers";

/** One user's inbox: their sockets, DM conversations, unread counts, blocks and status. */
export class Inbox extends DurableObject<Env> {
  /** Round trip used by /health/ready. */
  async ping(): Promise<number> {
    return Date.now();
  }
}
