/**
 * Offline push: DM notifications for users with no open socket go through PUSH_QUEUE;
 * this consumer posts them to PUSH_WEBHOOK_URL, signed. Owned by the DM work (issue 4).
 */

/** Queue consumer for PUSH_QUEUE. TODO(issue 4). */
export async function handlePushBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  void env;
  batch.ackAll();
}
