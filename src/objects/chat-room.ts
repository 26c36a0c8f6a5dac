import { DurableObject } from "cloudflare:workers";

/** One public room: its sockets, presence, message log and sequence numbers. */
export class ChatRoom extends DurableObject<Env> {
  /** Round trip used by /health/ready. */
  async ping(): Promise<number> {
    return Date.now();
  }
}
