/**
 * An object's own name: the room id or user id it was addressed by (`idFromName` in `stubs.ts`, the
 * only place that makes stubs). The pinned workerd gives it as `ctx.id.name` on every wake-up
 * (a request, an RPC, a socket event, an alarm; after eviction too: test/objects/object-name.test.ts),
 * so the objects no longer store it nor take it as an RPC argument.
 */

/** The name of this object. Throws for an object made without a name (none is, see `stubs.ts`). */
export function objectName(ctx: DurableObjectState): string {
  const name = ctx.id.name;
  if (name === undefined || name === "") throw new Error(`Durable Object ${ctx.id.toString()} has no name: stubs come from idFromName (stubs.ts)`);
  return name;
}
