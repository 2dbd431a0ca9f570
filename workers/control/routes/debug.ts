// The test-only fault switch (enabled by EDGEMESH_CONTROL_FAULTS=true on the control Worker).
import { Hono } from "hono";
import { control, readJson, type ControlBindings } from "../common.ts";

export const debugRoutes = new Hono<ControlBindings>();

debugRoutes.put("/v1/debug/fault", async (c) => {
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const v = body.value as { snapshot?: unknown; delayMs?: unknown } | null;
  const mode = v !== null && typeof v === "object" ? v.snapshot : undefined;
  const delayMs = v !== null && typeof v === "object" ? (v.delayMs ?? 0) : 0;
  if ((mode !== "ok" && mode !== "fail" && mode !== "slow") || typeof delayMs !== "number" || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > 600_000) {
    return c.json({ error: 'give { "snapshot": "ok" | "fail" | "slow", "delayMs": 0-600000 }' }, 400);
  }
  const result = await control(c).setFault({ snapshot: mode, delayMs });
  return result.ok ? c.json(result) : c.json({ error: result.message }, 403);
});
