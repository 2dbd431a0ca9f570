// Loading the stored active policy: failures come back as data with the reason, never as a throw.
import { describe, expect, it } from "vitest";
import { loadStoredPolicy } from "../../durable/stored-policy.ts";

const valid = { mesh: "m", services: { web: { endpoints: [{ id: "web-1", binding: "WEB_1" }] } } };

describe("loadStoredPolicy", () => {
  it("validates and compiles a good document", () => {
    const loaded = loadStoredPolicy(3, JSON.stringify(valid), (doc) => Object.keys(doc.services));
    expect(loaded).toMatchObject({ ok: true, compiled: ["web"] });
  });

  it("reports a document that no longer validates, with the JSON path", () => {
    const stricter = { ...valid, services: { web: { ...valid.services.web, snapshotTtlMs: -5 } } };
    const loaded = loadStoredPolicy(4, JSON.stringify(stricter), () => "compiled", 1_000);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.error).toMatchObject({ version: 4, atMs: 1_000 });
    expect(loaded.error.errors[0]?.path).toBe("$.services.web.snapshotTtlMs");
    expect(loaded.error.message).toMatch(/^stored policy version 4 no longer validates .*\$\.services\.web\.snapshotTtlMs.*roll back$/);
  });

  it("reports a compiler failure, bad JSON and a missing row instead of throwing", () => {
    const boom = () => {
      throw new Error("boom");
    };
    expect(loadStoredPolicy(5, JSON.stringify(valid), boom)).toMatchObject({ ok: false, error: { message: expect.stringContaining("does not compile: boom") } });
    expect(loadStoredPolicy(6, "{nope", () => 1)).toMatchObject({ ok: false, error: { message: expect.stringContaining("not valid JSON") } });
    expect(loadStoredPolicy(7, undefined, () => 1)).toMatchObject({ ok: false, error: { message: expect.stringContaining("missing") } });
  });
});
