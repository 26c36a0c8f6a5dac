/** /api routes for presence. */
import { createRouter } from "../openapi";

export const presence = createRouter();
