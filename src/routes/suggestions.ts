/** /api routes for suggestions. */
import { createRouter } from "../openapi";

export const suggestions = createRouter();
