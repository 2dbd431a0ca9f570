// The committed env types (types/*.d.ts, `wrangler types` of the example mesh's generated configs)
// are up to date, and the generated configs give the code every binding and variable it requires.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { ENV_TYPES_FILES, envTypes } from "../../scripts/deploy/env-types.ts";
import { runWrangler } from "../../scripts/deploy/wrangler.ts";

let configDir: string;

beforeAll(async () => {
  configDir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-deploy-types-"));
});

afterAll(async () => {
  await rm(configDir, { recursive: true, force: true });
});

/** Type errors of one types file compiled with its check file; `replace` swaps the types file's text. */
function typeErrors(typesFile: string, checkFile: string, replace?: (text: string) => string): string[] {
  const { config } = ts.readConfigFile(path.join(ROOT, "tsconfig.json"), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent({ compilerOptions: config.compilerOptions, files: [typesFile, checkFile] }, ts.sys, ROOT);
  const host = ts.createCompilerHost(parsed.options);
  const getSourceFile = host.getSourceFile.bind(host);
  const typesPath = path.join(ROOT, typesFile);
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    if (replace && path.resolve(fileName) === typesPath) {
      return ts.createSourceFile(fileName, replace(ts.sys.readFile(typesPath)!), languageVersion);
    }
    return getSourceFile(fileName, languageVersion, ...rest);
  };
  const program = ts.createProgram(parsed.fileNames, parsed.options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

describe("env types", () => {
  it("are what `wrangler types` makes of the generated configs today (wrangler types --check)", async () => {
    const results = await envTypes({ check: true, configDir });
    expect(results.map((r) => r.file)).toEqual(ENV_TYPES_FILES.map((t) => t.file));
    for (const r of results) expect(r, r.output).toMatchObject({ ok: true });
  }, 60_000);

  it("fail the check once the config they came from changes", async () => {
    await envTypes({ check: true, configDir }); // (re)writes the example's configs into configDir
    const changed = path.join(configDir, "edgemesh-control.jsonc");
    const text = await readFile(changed, "utf8");
    await writeFile(changed, text.replace('"MESH_NAME": "bookinfo"', '"MESH_NAME": "bookinfo", "EDGEMESH_POLICY_HISTORY_LIMIT": "50"'));
    const run = await runWrangler(["types", "types/control-env.d.ts", "-c", changed, "--env-interface", "ControlWorkerEnv", "--include-runtime=false", "--strict-vars=false", "--check"], { cwd: ROOT, offline: true });
    expect(run.code).not.toBe(0);
    expect(`${run.stdout}${run.stderr}`).toContain("out of date");
  }, 60_000);

  it("describe generated configs", async () => {
    const control = await readFile(path.join(ROOT, "types/control-env.d.ts"), "utf8");
    expect(control).toContain("SIDECAR_REVIEWS: Service /* entrypoint SidecarControl from edgemesh-sidecar-reviews */;");
    expect(control).toContain("EDGEMESH_ADMIN_TOKEN: string;");
    const sidecar = await readFile(path.join(ROOT, "types/sidecar-env.d.ts"), "utf8");
    expect(sidecar).toContain('MESH_CONTROL: DurableObjectNamespace<import("../workers/control/index").MeshControl>;');
    expect(sidecar).not.toContain("EDGEMESH_ADMIN_TOKEN");
  });

  it.each(ENV_TYPES_FILES.map((t) => [t.file, t.check]))("%s gives the code every binding it requires", (typesFile, checkFile) => {
    expect(typeErrors(typesFile, checkFile)).toEqual([]);
  }, 60_000);

  it("a config without a binding the code requires does not compile, and the error names it", () => {
    const sidecar = ENV_TYPES_FILES.find((t) => t.file.includes("sidecar"))!;
    const errors = typeErrors(sidecar.file, sidecar.check, (text) => text.replace(/\n\s*SERVICE_NAME: string;/, ""));
    expect(errors.join("\n")).toContain('missing: "SERVICE_NAME"');
  }, 60_000);
});
