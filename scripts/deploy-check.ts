// `npm run deploy:check` (CI runs it): `edgemesh deploy --dry-run` for every example mesh, offline
// (the configs are generated and every Worker is bundled by `wrangler deploy --dry-run`), then
// `wrangler types --check` for the committed env types (types/). Exits non-zero on any failure.
import { fileURLToPath } from "node:url";
import path from "node:path";
import { PACKAGE_ROOT, runDeploy } from "./deploy/command.ts";
import { envTypes } from "./deploy/env-types.ts";

export const EXAMPLE_DESCRIPTIONS = ["policies/bookinfo.deploy.json", "examples/grpc/mesh.deploy.json"];

export async function deployCheck(): Promise<number> {
  let failed = 0;
  for (const description of EXAMPLE_DESCRIPTIONS) {
    console.log(`== edgemesh deploy ${description} --dry-run`);
    if ((await runDeploy({ description, dryRun: true, cwd: PACKAGE_ROOT })) !== 0) failed++;
  }
  console.log("== wrangler types --check (types/)");
  for (const r of await envTypes({ check: true })) {
    if (r.ok) console.log(`up to date: ${r.file}`);
    else {
      failed++;
      console.error(`${r.file} is out of date: run \`npm run deploy:types\`\n${r.output}`);
    }
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.exit(await deployCheck());
}
