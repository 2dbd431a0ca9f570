// Health classes for colouring nodes and edges, from golden metrics and endpoint health. Pure.

export type HealthClass = "healthy" | "degraded" | "failing" | "idle";

/** Success rate at or above this is healthy. */
export const HEALTHY_SUCCESS_RATE = 0.99;
/** Below this it is failing; in between degraded. */
export const FAILING_SUCCESS_RATE = 0.95;

export const HEALTH_LABEL: Record<HealthClass, string> = {
  healthy: "healthy",
  degraded: "degraded",
  failing: "failing",
  idle: "no traffic",
};

/** An edge's health from its requests and success rate in the window. */
export function trafficHealth(m: { requests: number; successRate: number | null } | undefined): HealthClass {
  if (!m || m.requests <= 0 || m.successRate === null) return "idle";
  if (m.successRate >= HEALTHY_SUCCESS_RATE) return "healthy";
  if (m.successRate >= FAILING_SUCCESS_RATE) return "degraded";
  return "failing";
}

/**
 * A service's health: its traffic, made worse by its endpoints. Every endpoint excluded (actively
 * unhealthy or passively ejected) is failing whatever the traffic says; some excluded is degraded.
 */
export function serviceHealth(
  m: { requests: number; successRate: number | null } | undefined,
  endpoints: { excluded: boolean }[],
): HealthClass {
  const traffic = trafficHealth(m);
  const excluded = endpoints.filter((e) => e.excluded).length;
  if (endpoints.length > 0 && excluded === endpoints.length) return "failing";
  if (excluded > 0) return traffic === "failing" ? "failing" : "degraded";
  return traffic;
}
