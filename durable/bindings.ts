// Names shared by MeshControl and whoever wires the Workers together (scripts/mesh.ts, wrangler
// config). Plain module: Node may import it.
export { SIDECAR_CONTROL_ENTRYPOINT } from "../policies/sidecar-control.ts";

/**
 * The service binding on the control Worker through which the control plane reaches a service's
 * sidecar on its SidecarControl entrypoint (health checks of binding endpoints, debug views),
 * e.g. SIDECAR_REVIEWS for "reviews".
 */
export function sidecarBindingName(service: string): string {
  return `SIDECAR_${service.toUpperCase().replace(/-/g, "_")}`;
}
