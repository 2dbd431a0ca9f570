// Names shared by MeshControl and whoever wires the Workers together (scripts/mesh.ts, wrangler
// config). Plain module: Node may import it.

/**
 * The service binding on the control Worker through which MeshControl reaches a service's sidecar
 * to health-check that service's binding endpoints, e.g. SIDECAR_REVIEWS for "reviews".
 */
export function sidecarBindingName(service: string): string {
  return `SIDECAR_${service.toUpperCase().replace(/-/g, "_")}`;
}

/** The sidecar path that checks one of its binding endpoints for the control plane. */
export const SIDECAR_PROBE_PATH = "/__edgemesh/probe";
