/**
 * The development JWT secret used by `npm run dev`, `npm run token` and the tests.
 * The Worker accepts it on loopback hosts only (see auth.ts). No imports: scripts load this file directly.
 */
export const DEV_JWT_SECRET = "edge-chat-development-secret-do-not-deploy";
