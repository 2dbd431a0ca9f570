// Writes policies/policy.schema.json from the zod schema, for editors (`"$schema"` in a document).
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { policyJsonSchema } from "../policies/schema.ts";
import { ROOT } from "./build.ts";

const file = path.join(ROOT, "policies/policy.schema.json");
await writeFile(file, JSON.stringify(policyJsonSchema(), null, 2) + "\n");
console.log(`wrote ${path.relative(process.cwd(), file)}`);
