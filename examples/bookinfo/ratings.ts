// bookinfo "ratings": star ratings per reviewer. Reached only through its sidecar.
import { resourceHandler } from "./resource.ts";

interface Env {
  VERSION: string;
}

export default resourceHandler<Env>("ratings", (id, env) => Response.json({ id, version: env.VERSION, ratings: { Reviewer1: 5, Reviewer2: 4 } }));
