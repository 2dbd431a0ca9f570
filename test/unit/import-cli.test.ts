// `edgemesh import` as a function (scripts/import.ts) with files and streams in memory, and once
// as the standalone script on real files.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { runImportCommand, type ImportIo } from "../../scripts/import.ts";

const FIXTURES = new URL("../fixtures/import/", import.meta.url);

function memoryIo(files: Record<string, string>, stdin = "") {
  const out = { stdout: "", stderr: "", written: {} as Record<string, string> };
  const io: ImportIo = {
    stdout: (t) => void (out.stdout += t),
    stderr: (t) => void (out.stderr += t),
    readFile: async (f) => {
      if (!(f in files)) throw Object.assign(new Error(`ENOENT: no such file, open '${f}'`), { path: f });
      return files[f]!;
    },
    writeFile: async (f, t) => void (out.written[f] = t),
    readStdin: async () => stdin,
  };
  return { io, out };
}

const fixture = (name: string) => readFile(new URL(name, FIXTURES), "utf8");

describe("edgemesh import", async () => {
  const files = {
    "istio.yaml": await fixture("istio-bookinfo.yaml"),
    "base.json": await fixture("base-bookinfo.json"),
  };

  it("prints the document on stdout and the report on stderr", async () => {
    const { io, out } = memoryIo(files);
    expect(await runImportCommand(["istio.yaml", "--base", "base.json"], io)).toBe(0);
    const doc = JSON.parse(out.stdout);
    expect(doc.mesh).toBe("bookinfo");
    expect(doc.services.reviews.routes.map((r: any) => r.name)).toEqual(["jason", "api-v3", "canary"]);
    expect(out.stderr).toMatch(/^imported 4 resource\(s\): DestinationRule\/reviews, DestinationRule\/ratings, VirtualService\/reviews, VirtualService\/ratings\n/);
    expect(out.stderr).toContain("ignored 9 field(s):\n  DestinationRule/reviews $.spec.trafficPolicy.connectionPool.tcp.maxConnections (istio.yaml#1)\n");
    expect(out.stderr).toContain("warnings:\n");
  });

  it("writes the document to --out, and prints the whole answer with --json", async () => {
    const written = memoryIo(files);
    expect(await runImportCommand(["istio.yaml", "--base", "base.json", "--out", "policy.json"], written.io)).toBe(0);
    expect(JSON.parse(written.out.written["policy.json"]!).mesh).toBe("bookinfo");
    expect(written.out.stdout).toBe("");
    expect(written.out.stderr).toMatch(/^wrote policy.json\n/);
    const json = memoryIo(files);
    expect(await runImportCommand(["istio.yaml", "--base", "base.json", "--json"], json.io)).toBe(0);
    const answer = JSON.parse(json.out.stdout);
    expect(Object.keys(answer).sort()).toEqual(["document", "errors", "ignored", "imported", "warnings"]);
    expect(answer.ignored).toHaveLength(9);
  });

  it("reads stdin for -, and exits 1 with the errors when the document is not valid", async () => {
    const { io, out } = memoryIo({}, "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: { name: s }\nspec: { service: web, backends: [{ service: web-v7, weight: 1 }] }\n");
    expect(await runImportCommand(["-", "--mesh", "shop"], io)).toBe(1);
    expect(JSON.parse(out.stdout).mesh).toBe("shop");
    expect(out.stderr).toMatch(/errors \(the document is not valid until they are fixed\):\n  TrafficSplit\/s \$\.spec\.backends\[0\]\.service: backend Service "web-v7" of "web"/);
  });

  it("maps ServiceAccounts of SMI access with --service-account", async () => {
    const target = `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: { name: scrape }
spec:
  destination: { kind: ServiceAccount, name: website-sa, namespace: shop }
  rules: [{ kind: TCPRoute, name: all }]
  sources: [{ kind: ServiceAccount, name: prometheus, namespace: monitoring }]
`;
    const files = { "t.yaml": target, "base.json": await fixture("base-website.json") };
    const unmapped = memoryIo(files);
    expect(await runImportCommand(["t.yaml", "--base", "base.json"], unmapped.io)).toBe(1);
    expect(unmapped.out.stderr).toMatch(/ServiceAccount shop\/website-sa: no service of the mesh is named "website-sa"/);
    const mapped = memoryIo(files);
    expect(await runImportCommand(["t.yaml", "--base", "base.json", "--service-account", "shop/website-sa=website", "--service-account", "monitoring/prometheus=scraper"], mapped.io)).toBe(0);
    const doc = JSON.parse(mapped.out.stdout);
    expect(doc.services.website.access).toEqual({ mode: "strict", allow: [{ name: "scrape-all", from: ["scraper"] }] });
    expect(doc.access.identities).toEqual(["prometheus", "scraper"]);
  });

  it("exits 2 on usage mistakes, naming them", async () => {
    const cases: [string[], RegExp, boolean][] = [
      [[], /give at least one file to import/, true],
      [["x.yaml", "--mesh"], /--mesh needs a value/, true],
      [["x.yaml", "--frobnicate"], /unknown option --frobnicate/, true],
      [["x.yaml", "--mesh", "m", "--service-account", "prometheus"], /--service-account needs \[namespace\/\]serviceaccount=name/, true],
      [["x.yaml"], /give --mesh <name> or --base <policy.json>/, false],
      [["missing.yaml", "--mesh", "m"], /cannot read missing.yaml/, false],
      [["x.yaml", "--base", "nope.json"], /--base nope.json/, false],
    ];
    for (const [args, message, usage] of cases) {
      const { io, out } = memoryIo({ "x.yaml": "{}" });
      expect(await runImportCommand(args, io), args.join(" ")).toBe(2);
      expect(out.stderr).toMatch(message);
      expect(out.stderr.includes("usage: edgemesh import"), args.join(" ")).toBe(usage);
    }
  });

  it("runs standalone with tsx", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-import-"));
    try {
      const out = path.join(dir, "policy.json");
      const script = fileURLToPath(new URL("../../scripts/import.ts", import.meta.url));
      const { stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", script, fileURLToPath(new URL("smi-canary.yaml", FIXTURES)), "--base", fileURLToPath(new URL("base-website.json", FIXTURES)), "--out", out]);
      expect(stderr).toMatch(/imported 6 resource\(s\)/);
      expect(JSON.parse(await readFile(out, "utf8")).services.website.routes[0].name).toBe("website-canary");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

