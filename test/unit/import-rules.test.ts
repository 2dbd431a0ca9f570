// The import rules of docs/architecture.md, checked on the source: the contract (policies/) and
// the shared libraries (auth/, analytics/) import nothing of the planes or the tooling; the sidecar
// never imports the control plane; durable/ never imports the sidecar, the routes or scripts.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(ROOT, dir))) {
    const rel = path.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) out.push(...sourceFiles(rel));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".gen.ts")) out.push(rel);
  }
  return out;
}

/** Every relative module a file imports or re-exports, as a path from the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/g), ...text.matchAll(/\bimport\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g)].map((m) => m[1]!);
  return specifiers.map((s) => path.relative(ROOT, path.resolve(ROOT, path.dirname(file), s)));
}

const RULES: { from: string; never: string[] }[] = [
  { from: "policies", never: ["workers", "durable", "scripts", "dashboard", "examples"] },
  { from: "auth", never: ["policies", "analytics", "workers", "durable", "scripts", "dashboard", "examples"] },
  { from: "analytics", never: ["workers", "durable", "scripts", "dashboard", "examples"] },
  { from: "workers/sidecar", never: ["durable", "workers/control", "scripts", "dashboard", "examples"] },
  { from: "durable", never: ["workers", "scripts", "dashboard", "examples"] },
  { from: "dashboard/src", never: ["workers", "durable", "scripts", "auth", "examples"] },
];

describe("import rules", () => {
  for (const rule of RULES) {
    it(`${rule.from}/ imports nothing from ${rule.never.join(", ")}`, () => {
      const files = sourceFiles(rule.from);
      expect(files.length).toBeGreaterThan(0);
      const broken = files.flatMap((file) =>
        importsOf(file)
          .filter((target) => rule.never.some((dir) => target === dir || target.startsWith(`${dir}/`)))
          .map((target) => `${file} -> ${target}`),
      );
      expect(broken).toEqual([]);
    });
  }

  it("finds the imports it checks (a file that breaks a rule is caught)", () => {
    expect(importsOf("workers/sidecar/index.ts")).toContain("policies/snapshot.ts");
    expect(importsOf("durable/mesh-control.ts").some((t) => t.startsWith("policies/"))).toBe(true);
  });
});
