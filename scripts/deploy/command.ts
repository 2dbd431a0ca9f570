// `edgemesh deploy`: reads the mesh description and its policy, writes every Worker's wrangler
// config, and runs `wrangler deploy` in order (or `--dry-run`, offline). The pieces are pure
// modules beside this one; this file does the I/O and the printing.
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { validatePolicy } from "../../policies/schema.ts";
import { generateWorkers, type GeneratedWorker } from "./configs.ts";
import { resolveDeployment, type DescriptionError, type MeshDeployment } from "./description.ts";
import { configFileName, removeGeneratedConfigs, renderConfig } from "./files.ts";
import { bindingTargets, deployOrder, selectWorkers, unresolvedBindings, type UnresolvedBinding } from "./plan.ts";
import { CONTROL_SECRETS, formatSecretsToSet, parseSecretList, secretsToSet, SIDECAR_SECRETS, type SecretSpec } from "./secrets.ts";
import { runWrangler, wranglerPackageDir, type WranglerOptions, type WranglerRun } from "./wrangler.ts";

/** The edgemesh package's root: workers/ and the example descriptions are under it. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export class DescriptionInvalid extends Error {
  constructor(
    readonly file: string,
    readonly errors: DescriptionError[],
  ) {
    super(`${file}: ${errors.length} error(s)\n${errors.map((e) => `  ${e.path}: ${e.message}`).join("\n")}`);
  }
}

export interface LoadedDeployment {
  deployment: MeshDeployment;
  descriptionFile: string;
  policyFile: string;
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new DescriptionInvalid(file, [{ path: "$", message: `cannot read the ${what}: ${(err as Error).message}` }]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DescriptionInvalid(file, [{ path: "$", message: `the ${what} is not valid JSON: ${(err as Error).message}` }]);
  }
}

/** Reads and checks a description and its policy; throws `DescriptionInvalid` with every error. */
export async function loadDeployment(descriptionFile: string): Promise<LoadedDeployment> {
  const file = path.resolve(descriptionFile);
  const input = await readJson(file, "deploy description");
  const policyRef = (input as { policy?: unknown } | null)?.policy;
  if (typeof policyRef !== "string" || policyRef === "") {
    throw new DescriptionInvalid(file, [{ path: "$.policy", message: "required: the policy document's path, relative to this file" }]);
  }
  const policyFile = path.resolve(path.dirname(file), policyRef);
  if (!(await exists(policyFile))) throw new DescriptionInvalid(file, [{ path: "$.policy", message: `${policyRef} does not exist (relative to ${path.basename(file)})` }]);
  const policy = validatePolicy(await readJson(policyFile, "policy document"));
  if (!policy.ok) throw new DescriptionInvalid(policyFile, policy.errors);
  const resolved = resolveDeployment(input, policy.document, path.dirname(file));
  if (!resolved.ok) throw new DescriptionInvalid(file, resolved.errors);
  const missing: DescriptionError[] = [];
  for (const s of resolved.deployment.services) {
    for (const [i, inst] of s.instances.entries()) {
      if (inst.main !== undefined && !(await exists(inst.main))) {
        missing.push({ path: `$.services.${s.name}.instances[${i}].main`, message: `${path.relative(path.dirname(file), inst.main)} does not exist (relative to ${path.basename(file)})` });
      }
    }
  }
  if (missing.length) throw new DescriptionInvalid(file, missing);
  return { deployment: resolved.deployment, descriptionFile: file, policyFile };
}

const exists = (file: string) => access(file).then(() => true, () => false);

export function defaultOutDir(deployment: MeshDeployment, cwd: string): string {
  return path.resolve(cwd, ".edgemesh/deploy", deployment.mesh);
}

export interface WrittenWorker extends GeneratedWorker {
  configFile: string;
  secrets: readonly SecretSpec[];
}

/** Generates every config into `outDir` (replacing what an earlier run generated there). */
export async function writeConfigs(loaded: LoadedDeployment, outDir: string, cwd: string): Promise<WrittenWorker[]> {
  const workers = generateWorkers(loaded.deployment, {
    root: PACKAGE_ROOT,
    outDir,
    wranglerSchema: path.join(wranglerPackageDir(), "config-schema.json"),
  });
  await mkdir(outDir, { recursive: true });
  await removeGeneratedConfigs(outDir);
  const source = path.relative(cwd, loaded.descriptionFile) || loaded.descriptionFile;
  const written: WrittenWorker[] = [];
  for (const w of workers) {
    const configFile = path.join(outDir, configFileName(w.config.name));
    await writeFile(configFile, renderConfig(w, source));
    written.push({ ...w, configFile, secrets: w.kind === "control" ? CONTROL_SECRETS : w.kind === "sidecar" ? SIDECAR_SECRETS : [] });
  }
  return written;
}

export interface DeployOptions {
  description: string;
  dryRun?: boolean;
  out?: string;
  /** "control", service names or Worker names. */
  only?: string[];
  cwd?: string;
  print?: (line: string) => void;
  printError?: (line: string) => void;
  /** Runs wrangler; tests give a stand-in for the Cloudflare account a real run talks to. */
  wrangler?: (args: readonly string[], opts: WranglerOptions) => Promise<WranglerRun>;
}

/** Runs the whole command; answers the exit code (0 done, 1 not deployed, 2 a bad description or option). */
export async function runDeploy(o: DeployOptions): Promise<number> {
  const cwd = o.cwd ?? process.cwd();
  const print = o.print ?? ((line: string) => console.log(line));
  const printError = o.printError ?? ((line: string) => console.error(line));
  const shown = (file: string) => path.relative(cwd, file) || ".";
  const wrangler = o.wrangler ?? runWrangler;

  let loaded: LoadedDeployment;
  try {
    loaded = await loadDeployment(path.resolve(cwd, o.description));
  } catch (err) {
    if (err instanceof DescriptionInvalid) {
      printError(`edgemesh deploy: ${shown(err.file)}: ${err.errors.length} error(s)`);
      for (const e of err.errors) printError(`  ${e.path}: ${e.message}`);
      return 2;
    }
    throw err;
  }
  const { deployment } = loaded;
  const outDir = o.out ? path.resolve(cwd, o.out) : defaultOutDir(deployment, cwd);
  const written = await writeConfigs(loaded, outDir, cwd);
  const ordered = deployOrder(deployment, written) as WrittenWorker[];
  let plan: WrittenWorker[];
  try {
    plan = o.only?.length ? (selectWorkers(ordered, o.only) as WrittenWorker[]) : ordered;
  } catch (err) {
    printError(`edgemesh deploy: ${(err as Error).message}`);
    return 2;
  }
  print(`mesh "${deployment.mesh}" from ${shown(loaded.descriptionFile)} (policy ${shown(loaded.policyFile)})`);
  print(`configs: ${shown(outDir)}/ (${written.length} Workers)`);

  // Which Workers exist before the first upload. A dry run cannot ask, so it assumes the state a
  // real run starts from: the Workers with required secrets exist (setting a secret creates the
  // Worker), and so does every Worker this run does not deploy.
  let existing: Set<string>;
  let alreadySet: Map<string, Set<string>> | undefined;
  const inPlan = new Set(plan.map((w) => w.config.name));
  const outside = [...new Set([...written.map((w) => w.config.name), ...plan.flatMap((w) => bindingTargets(w.config).map((b) => b.target))])].filter((n) => !inPlan.has(n));
  if (o.dryRun) {
    existing = new Set([...plan.filter((w) => w.secrets.some((s) => s.required)).map((w) => w.config.name), ...outside]);
  } else {
    print("checking which Workers exist and which secrets they have (wrangler secret list)");
    const probed = await probeWorkers(plan, outside, written, cwd, wrangler);
    if ("error" in probed) {
      printError(`edgemesh deploy: ${probed.error}`);
      return 1;
    }
    existing = probed.existing;
    alreadySet = probed.secrets;
  }

  const secrets = secretsToSet(plan.map((w) => ({ worker: w.config.name, configFile: shown(w.configFile), specs: w.secrets })), alreadySet);
  const missingRequired = secrets.filter((s) => s.required);
  if (!o.dryRun && missingRequired.length) {
    printError("required secrets are not set yet, so nothing was deployed. Set each (wrangler prompts for the value; on a Worker that does not exist yet this creates it), then run `edgemesh deploy` again:");
    for (const line of formatSecretsToSet(missingRequired)) printError(line);
    return 1;
  }
  const unresolved = unresolvedBindings(plan, existing);
  if (unresolved.length) {
    printError("these bindings name Workers that would not exist when they are uploaded, so nothing was deployed:");
    for (const u of unresolved) printError(`  ${u.worker}: ${u.binding} -> ${u.target} (${unresolvedFix(u, written)})`);
    return 1;
  }

  print(o.dryRun ? "plan (dry run: wrangler deploy --dry-run, nothing is uploaded):" : "plan:");
  const width = Math.max(...plan.map((w) => w.config.name.length));
  let failed = 0;
  for (const [i, w] of plan.entries()) {
    const label = `${String(i + 1).padStart(2)}. ${w.config.name.padEnd(width)}  ${w.kind === "control" ? "control" : `${w.kind} of ${w.service}`}`;
    if (o.dryRun) {
      const bundleDir = path.join(outDir, "dry-run", w.config.name);
      const run = await wrangler(["deploy", "--dry-run", "--outdir", bundleDir, "-c", w.configFile], { cwd, offline: true });
      if (run.code === 0) {
        print(`${label}: ok, ${/Total Upload: ([^\n]+)/.exec(run.stdout)?.[1]?.trim() ?? "bundled"}`);
      } else {
        failed++;
        print(`${label}: FAILED`);
        printError(`${run.stdout}\n${run.stderr}`.trim());
      }
    } else {
      print(`${label}: wrangler deploy -c ${shown(w.configFile)}`);
      const run = await wrangler(["deploy", "-c", w.configFile], { cwd, capture: false });
      if (run.code !== 0) {
        printError(`edgemesh deploy: wrangler deploy of ${w.config.name} failed (exit ${run.code}); the Workers before it are deployed, the rest are not. Fix it and run again: every step is safe to repeat.`);
        return 1;
      }
    }
  }

  if (o.dryRun) {
    print("secrets to set before the first deployment (a dry run cannot see which are set; wrangler prompts for each value):");
    for (const line of formatSecretsToSet(secrets)) print(line);
  } else {
    const optional = secrets.filter((s) => !s.required);
    if (optional.length) {
      print("optional secrets not set:");
      for (const line of formatSecretsToSet(optional)) print(line);
    }
    print(`deployed ${plan.length} Worker(s). Apply the policy to the control plane: EDGEMESH_URL=<the control Worker's URL> npx edgemesh apply ${shown(loaded.policyFile)}`);
  }
  if (failed) printError(`edgemesh deploy: ${failed} of ${plan.length} Workers would not deploy`);
  return failed ? 1 : 0;
}

function unresolvedFix(u: UnresolvedBinding, written: readonly WrittenWorker[]): string {
  const target = written.find((w) => w.config.name === u.target);
  if (!target) return `${u.target} is not deployed by edgemesh: deploy it first`;
  if (target.secrets.some((s) => s.required)) return `set ${u.target}'s secrets first: that creates it`;
  return `deploy ${u.target} first (edgemesh deploy --only ${target.service ?? u.target})`;
}

/** Asks wrangler, per Worker, whether it exists and which secrets it has. Names only, never values. */
async function probeWorkers(
  plan: readonly WrittenWorker[],
  outside: readonly string[],
  written: readonly WrittenWorker[],
  cwd: string,
  wrangler: NonNullable<DeployOptions["wrangler"]>,
): Promise<{ existing: Set<string>; secrets: Map<string, Set<string>> } | { error: string }> {
  const existing = new Set<string>();
  const secrets = new Map<string, Set<string>>();
  const accountConfig = written.find((w) => w.kind === "control")!.configFile;
  const targets = [
    ...plan.filter((w) => w.secrets.length).map((w) => ({ name: w.config.name, args: ["-c", w.configFile] })),
    ...outside.map((name) => ({ name, args: ["--name", name, "-c", accountConfig] })),
  ];
  for (const t of targets) {
    const run = await wrangler(["secret", "list", "--format", "json", ...t.args], { cwd });
    const answer = parseSecretList(run.code, run.stdout, run.stderr);
    if ("error" in answer) return { error: `cannot list the secrets of ${t.name}: ${answer.error}` };
    if (answer.exists) {
      existing.add(t.name);
      secrets.set(t.name, answer.names);
    }
  }
  return { existing, secrets };
}
