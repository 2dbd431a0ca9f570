// Policy documents of any size for the large-mesh tests and bench:control: `services` services of
// `routes` routes each (3,000 × 20 is about 4.8 MB), one endpoint binding and one origin each.
// `tweak` changes one service (its first route's timeout), for one-service changes.
export function sizedPolicy(mesh: string, services: number, routes = 20, tweak: { service: number; timeoutMs: number } | undefined = undefined): any {
  const doc: any = { mesh, services: {} };
  for (let s = 0; s < services; s++) {
    doc.services[`svc-${s}`] = {
      endpoints: [{ id: `svc-${s}-a`, binding: "A_1", labels: { version: "v1" } }, { id: `svc-${s}-b`, url: `https://b${s}.example`, labels: { version: "v2" } }],
      subsets: { v1: { version: "v1" }, v2: { version: "v2" } },
      routes: Array.from({ length: routes }, (_, r) => ({
        name: `r-${r}`,
        match: [{ path: { prefix: `/api/v${r}/` } }],
        to: [{ subset: r % 2 ? "v1" : "v2" }],
        ...(tweak && tweak.service === s && r === 0 ? { timeoutMs: tweak.timeoutMs } : {}),
      })),
    };
  }
  return doc;
}
