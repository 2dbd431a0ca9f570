// `npm run deploy:types`: `wrangler types` for the generated configs of the example mesh, written
// to types/control-env.d.ts and types/sidecar-env.d.ts (committed). `--check` only checks that
// they are up to date (wrangler's own check), as the deploy test does.
//
// Each file declares wrangler's global `Cloudflare.Env`, so the two cannot be in one TypeScript
// program: they sit outside tsconfig's folders, and the test compiles each with its check file
// (types/check-*.ts), which proves the deployed config gives the code every binding it requires.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadDeployment, PACKAGE_ROOT, writeConfigs, type WrittenWorker } from "./command.ts";
import { runWrangler } from "./wrangler.ts";

export const EXAMPLE_DESCRIPTION = "policies/bookinfo.deploy.json";
/** Where the configs the types come from are written; relative, so the files' headers are the same everywhere. */
export const TYPES_CONFIG_DIR = ".edgemesh/deploy/types";

export interface EnvTypesFile {
  /** Relative to the package root. */
  file: string;
  envInterface: string;
  /** The check file compiled with it. */
  check: string;
  /** The config the types describe, then configs whose Workers its bindings name (their exports type those bindings). */
  configs: (workers: readonly WrittenWorker[]) => WrittenWorker[];
}

const control = (workers: readonly WrittenWorker[]) => workers.find((w) => w.kind === "control")!;

export const ENV_TYPES_FILES: readonly EnvTypesFile[] = [
  {
    file: "types/control-env.d.ts",
    envInterface: "ControlWorkerEnv",
    check: "types/check-control-env.ts",
    // Not the sidecars' configs: their entrypoints' types would tie this file to the sidecar's code.
    configs: (workers) => [control(workers)],
  },
  {
    file: "types/sidecar-env.d.ts",
    envInterface: "SidecarWorkerEnv",
    check: "types/check-sidecar-env.ts",
    // The example's reviews sidecar (three endpoint bindings); the control config types MESH_CONTROL and MESH_RELAY.
    configs: (workers) => [workers.find((w) => w.kind === "sidecar" && w.service === "reviews")!, control(workers)],
  },
];

export interface EnvTypesResult {
  file: string;
  ok: boolean;
  output: string;
}

/** Writes (or with `check`, checks) every types file. `configDir` is relative to the package root. */
export async function envTypes(opts: { check: boolean; configDir?: string }): Promise<EnvTypesResult[]> {
  const configDir = opts.configDir ?? TYPES_CONFIG_DIR;
  const loaded = await loadDeployment(path.join(PACKAGE_ROOT, EXAMPLE_DESCRIPTION));
  const workers = await writeConfigs(loaded, path.resolve(PACKAGE_ROOT, configDir), PACKAGE_ROOT);
  const results: EnvTypesResult[] = [];
  for (const t of ENV_TYPES_FILES) {
    const configArgs = t.configs(workers).flatMap((w) => ["-c", path.relative(PACKAGE_ROOT, w.configFile).split(path.sep).join("/")]);
    const args = ["types", t.file, ...configArgs, "--env-interface", t.envInterface, "--include-runtime=false", "--strict-vars=false", ...(opts.check ? ["--check"] : [])];
    const run = await runWrangler(args, { cwd: PACKAGE_ROOT, offline: true });
    results.push({ file: t.file, ok: run.code === 0, output: `${run.stdout}\n${run.stderr}`.trim() });
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const check = process.argv.includes("--check");
  const results = await envTypes({ check });
  for (const r of results) {
    if (r.ok) console.log(`${check ? "up to date" : "written"}: ${r.file}`);
    else console.error(`${r.file}: ${check ? "out of date; run `npm run deploy:types`" : "wrangler types failed"}\n${r.output}`);
  }
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}
