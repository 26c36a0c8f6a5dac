/** The deployment admin comes from a token claim named in config (ADMIN_CLAIM, ADMIN_CLAIM_VALUE). */
import { describe, expect, it } from "vitest";
import { isAdminClaim } from "../../src/auth";

describe("isAdminClaim", () => {
  const defaults = { ADMIN_CLAIM: "role", ADMIN_CLAIM_VALUE: "admin" };
  it("accepts the configured claim as a string or in an array", () => {
    expect(isAdminClaim({ role: "admin" }, defaults)).toBe(true);
    expect(isAdminClaim({ role: ["user", "admin"] }, defaults)).toBe(true);
    expect(isAdminClaim({ groups: "ops" }, { ADMIN_CLAIM: "groups", ADMIN_CLAIM_VALUE: "ops" })).toBe(true);
  });
  it("refuses anything else, and everything when ADMIN_CLAIM is empty", () => {
    expect(isAdminClaim({}, defaults)).toBe(false);
    expect(isAdminClaim({ role: "Admin" }, defaults)).toBe(false);
    expect(isAdminClaim({ role: "administrator" }, defaults)).toBe(false);
    expect(isAdminClaim({ admin: true }, defaults)).toBe(false);
    expect(isAdminClaim({ role: "admin" }, { ADMIN_CLAIM: "", ADMIN_CLAIM_VALUE: "admin" })).toBe(false);
  });
});
