/** /api routes for dms. */
import { createRouter } from "../openapi";

export const dms = createRouter();
