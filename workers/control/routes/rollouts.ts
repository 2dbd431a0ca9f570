// Rollout routes: every service's staged rollout, one service's, and the operator's actions on it
// (pause, resume, promote, abort). The rollout itself runs in MeshControl (durable/rollouts.ts).
import { Hono } from "hono";
import { ROLLOUT_ACTIONS, type RolloutAction } from "../../../policies/rollout-run.ts";
import { principalOf } from "../admin-auth.ts";
import { control, type ControlBindings, type Ctx } from "../common.ts";

export const rolloutRoutes = new Hono<ControlBindings>();

/** Who acted, for the events and the policy history: the admin token's name, as for policy changes. */
const actor = (c: Ctx) => principalOf(c).name;

rolloutRoutes.get("/v1/rollouts", async (c) => c.json({ rollouts: await control(c).rolloutList() }));

rolloutRoutes.get("/v1/rollouts/:service", async (c) => {
  const service = c.req.param("service");
  const status = await control(c).rolloutStatus(service);
  return status ? c.json(status) : c.json({ error: `service "${service}" has no rollout; declare one in its policy ("rollout": …)` }, 404);
});

rolloutRoutes.post("/v1/rollouts/:service/:action", async (c) => {
  const action = c.req.param("action");
  if (!(ROLLOUT_ACTIONS as readonly string[]).includes(action)) {
    return c.json({ error: `unknown rollout action "${action}"; actions: ${ROLLOUT_ACTIONS.join(", ")}` }, 404);
  }
  const result = await control(c).rolloutAction(c.req.param("service"), action as RolloutAction, `${actor(c)}`);
  return result.ok ? c.json(result) : c.json({ error: result.message }, result.status);
});
