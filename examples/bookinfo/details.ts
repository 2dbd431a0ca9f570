// bookinfo "details": book facts. Reached only through its sidecar.
import { resourceHandler } from "./resource.ts";

interface Env {
  VERSION: string;
}

export default resourceHandler<Env>("details", (id, env) =>
  Response.json({
    id,
    version: env.VERSION,
    author: "William Shakespeare",
    year: 1595,
    type: "paperback",
    pages: 200,
    publisher: "PublisherA",
    language: "English",
    isbn10: "1234567890",
  }),
);
