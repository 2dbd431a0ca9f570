// `edgemesh import <file…> [--base policy.json] [--mesh name] [--service-account sa=name…]
// [--out file] [--json]`: translates Istio, SMI and Gateway API manifests (YAML or JSON, several documents per file; "-" reads
// stdin) into an edgemesh policy document. The document goes to stdout (or --out); what was
// imported, every ignored field with its path and reason, warnings and errors go to stderr.
// --json prints the whole answer ({document, ignored, errors, warnings, imported}) to stdout.
// Exit status: 0 done, 1 the document has errors (it is still printed, to fix by hand), 2 usage.
// Offline: nothing is applied; `edgemesh apply` (or POST /v1/import?apply=true) does that.
//
// The CLI wires `runImportCommand` in; `tsx scripts/import.ts …` runs it on its own.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { importManifests, type ImportResult, type ImportSource } from "../policies/import/index.ts";

export const IMPORT_USAGE = `usage: edgemesh import <file…> [--base policy.json] [--mesh name] [--service-account sa=name…] [--out file] [--json]

  Translates Istio VirtualService/DestinationRule, SMI TrafficSplit/HTTPRouteGroup/TrafficTarget
  and Gateway API HTTPRoute and GRPCRoute (mesh form) into an edgemesh policy document. Files are
  YAML or JSON with one or more documents; "-" reads stdin.
  --base F   merge into this policy document (its endpoints, subsets and settings are kept;
             the services the manifests route get the imported routes)
  --mesh N   the mesh name (default: the base document's; required without --base)
  --service-account [NS/]SA=NAME
             the mesh caller a Kubernetes ServiceAccount of SMI access stands for: a service,
             or an identity (declared in access.identities); repeatable. Default: the service
             or declared identity named like the ServiceAccount
  --out F    write the document to F instead of stdout
  --json     print {document, ignored, errors, warnings, imported} as JSON on stdout`;

export interface ImportIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readFile(file: string): Promise<string>;
  writeFile(file: string, text: string): Promise<void>;
  readStdin(): Promise<string>;
}

const nodeIo: ImportIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readFile: (file) => readFile(file, "utf8"),
  writeFile: (file, text) => writeFile(file, text),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  },
};

interface ImportArgs {
  files: string[];
  base?: string;
  mesh?: string;
  serviceAccounts: Record<string, string>;
  out?: string;
  json: boolean;
}

function parseArgs(args: string[]): ImportArgs | string {
  const out: ImportArgs = { files: [], json: false, serviceAccounts: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--json") out.json = true;
    else if (arg === "--service-account") {
      const value = args[++i];
      const eq = value?.indexOf("=") ?? -1;
      if (value === undefined || eq <= 0 || eq === value.length - 1) return "--service-account needs [namespace/]serviceaccount=name, e.g. monitoring/prometheus=prometheus";
      out.serviceAccounts[value.slice(0, eq)] = value.slice(eq + 1);
    }
    else if (arg === "--base" || arg === "--mesh" || arg === "--out") {
      const value = args[++i];
      if (value === undefined || value.startsWith("--")) return `${arg} needs a value`;
      out[arg.slice(2) as "base" | "mesh" | "out"] = value;
    } else if (arg === "-h" || arg === "--help") return "";
    else if (arg.startsWith("--")) return `unknown option ${arg}`;
    else out.files.push(arg);
  }
  if (out.files.length === 0) return "give at least one file to import";
  return out;
}

/** The human-readable report of an import (stderr). */
export function formatImportReport(result: ImportResult): string {
  const lines: string[] = [];
  lines.push(`imported ${result.imported.length} resource(s)${result.imported.length ? `: ${result.imported.join(", ")}` : ""}`);
  if (result.ignored.length > 0) {
    lines.push(`ignored ${result.ignored.length} field(s):`);
    for (const f of result.ignored) lines.push(`  ${f.resource} ${f.path} (${f.source})`, `      ${f.reason}`);
  }
  if (result.warnings.length > 0) {
    lines.push(`warnings:`);
    for (const w of result.warnings) lines.push(`  ${w.resource ? `${w.resource} ${w.path ?? ""} ` : ""}${w.message}`);
  }
  if (result.errors.length > 0) {
    lines.push(`errors (the document is not valid until they are fixed):`);
    for (const e of result.errors) lines.push(`  ${e.resource ? `${e.resource} ` : e.source ? `${e.source} ` : ""}${e.path}: ${e.message}`);
  }
  return lines.join("\n") + "\n";
}

/** Runs `edgemesh import` with the arguments after "import"; resolves to the exit status. */
export async function runImportCommand(args: string[], io: ImportIo = nodeIo): Promise<number> {
  const parsed = parseArgs(args);
  if (typeof parsed === "string") {
    io.stderr(`${parsed ? `edgemesh import: ${parsed}\n` : ""}${IMPORT_USAGE}\n`);
    return parsed ? 2 : 0;
  }
  const sources: ImportSource[] = [];
  try {
    for (const file of parsed.files) sources.push({ name: file === "-" ? "stdin" : path.basename(file), text: file === "-" ? await io.readStdin() : await io.readFile(file) });
  } catch (err) {
    io.stderr(`edgemesh import: cannot read ${(err as NodeJS.ErrnoException).path ?? "input"}: ${(err as Error).message}\n`);
    return 2;
  }
  let base: unknown;
  if (parsed.base !== undefined) {
    try {
      base = JSON.parse(await io.readFile(parsed.base));
    } catch (err) {
      io.stderr(`edgemesh import: --base ${parsed.base}: ${(err as Error).message}\n`);
      return 2;
    }
  }
  if (base === undefined && parsed.mesh === undefined) {
    io.stderr(`edgemesh import: give --mesh <name> or --base <policy.json> (the document needs a mesh name)\n`);
    return 2;
  }
  const result = importManifests(sources, { base, serviceAccounts: parsed.serviceAccounts, ...(parsed.mesh !== undefined ? { mesh: parsed.mesh } : {}) });
  const documentText = JSON.stringify(result.document, null, 2) + "\n";
  if (parsed.json) io.stdout(JSON.stringify(result, null, 2) + "\n");
  else if (parsed.out === undefined) io.stdout(documentText);
  if (parsed.out !== undefined) {
    await io.writeFile(parsed.out, documentText);
    io.stderr(`wrote ${parsed.out}\n`);
  }
  if (!parsed.json) io.stderr(formatImportReport(result));
  return result.errors.length > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.exitCode = await runImportCommand(process.argv.slice(2));
}
