/** /api routes for rooms. */
import { createRouter } from "../openapi";

export const rooms = createRouter();
