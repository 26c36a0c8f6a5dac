/** /api routes for blocks. */
import { createRouter } from "../openapi";

export const blocks = createRouter();
