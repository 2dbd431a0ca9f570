// The committed TypeScript of the example service must be what `npm run proto` makes from the
// .proto today: regenerated into a temporary folder (buf from its npm package, the local
// protoc-gen-es; offline) and compared file by file.
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const GEN = "examples/grpc/gen";

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

let outDir: string | undefined;
afterAll(async () => {
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

describe("generated code of the example gRPC service", () => {
  it("is up to date with examples/grpc/proto (run `npm run proto`)", async () => {
    outDir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-proto-"));
    execFileSync(path.join(ROOT, "node_modules/.bin/buf"), ["generate", "--template", "examples/grpc/buf.gen.yaml", "-o", outDir], { cwd: ROOT, stdio: "pipe" });
    const fresh = path.join(outDir, GEN);
    const committed = path.join(ROOT, GEN);
    const files = await filesUnder(fresh);
    expect(files.length).toBeGreaterThan(0);
    expect(await filesUnder(committed)).toEqual(files);
    for (const f of files) expect(await readFile(path.join(committed, f), "utf8"), f).toBe(await readFile(path.join(fresh, f), "utf8"));
  });
});
