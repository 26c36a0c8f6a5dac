/** /api routes for media. */
import { createRouter } from "../openapi";

export const media = createRouter();
