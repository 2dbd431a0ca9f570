// Knobs of the control plane's registry and health: leases for self-registered instances, active
// health checks and mesh-wide passive health. Part of the policy schema (see schema.ts).
import { z } from "zod";

export const DEFAULT_LEASE_TTL_MS = 30_000;

export const LeaseTtlMs = z.number().int().min(500).max(86_400_000)
  .describe("How long a registered instance stays in the mesh without a heartbeat; a lapsed lease removes it from every snapshot.");

export const Registration = z
  .object({
    leaseTtlMs: LeaseTtlMs.default(DEFAULT_LEASE_TTL_MS).describe("Lease given to instances of this service that register without asking for one."),
  })
  .strict()
  .describe("Self-registration of instances through the admin API (POST /v1/registry/<service>).");

export const HealthCheck = z
  .object({
    path: z.string().regex(/^\/\S*$/, 'a path starting with "/", e.g. "/healthz"').max(1024).default("/healthz")
      .describe("Path the control plane requests (GET) on every endpoint of the service."),
    intervalMs: z.number().int().min(100).max(300_000).default(5_000).describe("Time between two checks of one endpoint."),
    timeoutMs: z.number().int().min(10).max(60_000).default(1_000).describe("A check without response headers by then counts as failed."),
    expectedStatus: z.array(z.number().int().min(100).max(599)).min(1).max(32).default([200])
      .describe("Statuses that count as a passed check; any other status fails it."),
    healthyThreshold: z.number().int().min(1).max(100).default(2)
      .describe("Consecutive passed checks that bring an unhealthy endpoint back."),
    unhealthyThreshold: z.number().int().min(1).max(100).default(3)
      .describe("Consecutive failed checks that mark an endpoint unhealthy and take it out of the snapshots."),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.timeoutMs > h.intervalMs) {
      ctx.addIssue({ code: "custom", path: ["timeoutMs"], message: `timeoutMs (${h.timeoutMs}) must not exceed intervalMs (${h.intervalMs})` });
    }
  })
  .describe("Active health checks run by the control plane (MeshControl's alarm). Endpoints start healthy.");

export const PassiveHealth = z
  .object({
    windowMs: z.number().int().min(1_000).max(600_000).default(10_000)
      .describe("Outcomes reported by sidecars are summed over windows this long."),
    minRequests: z.number().int().min(1).max(1_000_000).default(20)
      .describe("A window needs at least this many requests to an endpoint before it can eject it."),
    failurePercent: z.number().int().min(1).max(100).default(50)
      .describe("Share of failed requests (5xx, timeout, connect failure) in a window that ejects the endpoint mesh-wide."),
    ejectionMs: z.number().int().min(1_000).max(3_600_000).default(30_000)
      .describe("How long a passively ejected endpoint stays out of the snapshots."),
  })
  .strict()
  .describe("Passive health: the control plane merges the outcome counts sidecars report in batches and ejects bad endpoints for every isolate.");

export type RegistrationPolicy = z.output<typeof Registration>;
export type HealthCheckPolicy = z.output<typeof HealthCheck>;
export type PassiveHealthPolicy = z.output<typeof PassiveHealth>;
