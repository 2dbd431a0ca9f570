// Property-based fuzzing of policy validation and compilation (fast-check): random JSON, random
// documents built from the schema's shape, and valid documents mutated at random paths. For every
// input: validation never throws; a refusal is a non-empty list of errors, each with a JSON path
// and a message; an accepted document compiles, compiling it service by service (as MeshControl
// does) gives what compiling it whole gives, and splitting it for storage (policy-sections.ts)
// and putting it back together gives the same document.
// EDGEMESH_FUZZ_RUNS sets the cases per property (default 10,000, as in CI).
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ActivePolicy } from "../../durable/active-policy.ts";
import { assembleDocument, preparePolicy } from "../../durable/policy-sections.ts";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { readPolicy } from "../helpers.ts";

const RUNS = Math.max(1, Number(process.env.EDGEMESH_FUZZ_RUNS ?? 10_000));
const ran: Record<string, number> = {};

afterAll(() => {
  const total = Object.values(ran).reduce((a, b) => a + b, 0);
  console.log(`policy fuzzing: ${total} cases (${Object.entries(ran).map(([k, n]) => `${k} ${n}`).join(", ")})`);
});

/** Every property the tests hold an input to; returns whether it validated. */
function check(input: unknown): boolean {
  let result: ReturnType<typeof validatePolicy>;
  try {
    result = validatePolicy(input);
  } catch (err) {
    throw new Error(`validatePolicy threw on ${JSON.stringify(input)?.slice(0, 500)}: ${(err as Error).stack}`);
  }
  if (!result.ok) {
    expect(result.errors.length).toBeGreaterThan(0);
    for (const e of result.errors) {
      expect(typeof e.path).toBe("string");
      expect(e.path.startsWith("$")).toBe(true);
      expect(typeof e.message).toBe("string");
      expect(e.message.length).toBeGreaterThan(0);
    }
    return false;
  }
  const whole = compilePolicy(result.document);
  const perService = new ActivePolicy(() => [], () => []);
  perService.activate(1, result.document);
  for (const service of Object.keys(result.document.services)) {
    expect(JSON.parse(JSON.stringify(perService.compiled(service)))).toEqual(JSON.parse(JSON.stringify(whole.services[service])));
  }
  return true;
}

const name = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const oddString = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.constantFrom("", " ", "(", "[a-", "^(?:", "$", "\\", "../", "%zz", "\u0000", "a".repeat(2_000)));
const oddNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1.5, 1e308, -0, Number.MAX_SAFE_INTEGER));
const anything = fc.oneof(oddString, oddNumber, fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 3 }));

/** Documents in the schema's shape, with fields sometimes of the wrong kind. */
const generated = fc
  .record({
    services: fc.dictionary(
      name,
      fc.record(
        {
          endpoints: fc.array(
            fc.record({
              id: fc.oneof(name, oddString),
              binding: fc.option(fc.oneof(fc.constantFrom("A_1", "B_2", "lower"), oddString), { nil: undefined }),
              url: fc.option(fc.oneof(fc.constantFrom("https://a.example", "http://b.example:8080/x/", "ftp://c"), oddString), { nil: undefined }),
              labels: fc.option(fc.dictionary(fc.constantFrom("version", "zone", ""), fc.constantFrom("v1", "v2", "z")), { nil: undefined }),
              weight: fc.option(fc.oneof(fc.integer({ min: 0, max: 1_001 }), anything), { nil: undefined }),
            }, { requiredKeys: ["id"] }),
            { maxLength: 4 },
          ),
          subsets: fc.dictionary(fc.oneof(name, oddString), fc.dictionary(fc.constantFrom("version", "zone"), fc.constantFrom("v1", "v2", "z")), { maxKeys: 3 }),
          routes: fc.array(
            fc.record({
              name: fc.oneof(name, oddString),
              match: fc.array(fc.record({
                path: fc.oneof(fc.record({ prefix: fc.constantFrom("/", "/api/") }), fc.record({ exact: oddString }), fc.record({ regex: fc.oneof(oddString, fc.constantFrom("/a+", "(a|b)*c", "[", "(?<x>a)\\k<x>")) })),
                headers: fc.dictionary(fc.constantFrom("end-user", "x-a", "bad header"), fc.oneof(fc.record({ exact: oddString }), fc.record({ present: fc.boolean() }), fc.record({ regex: oddString })), { maxKeys: 2 }),
                methods: fc.array(fc.constantFrom("GET", "POST", "get", "BREW"), { maxLength: 3 }),
              }, { requiredKeys: [] }), { maxLength: 2 }),
              to: fc.array(fc.record({ subset: fc.oneof(name, fc.constantFrom("v1", "v2")), weight: fc.option(fc.oneof(fc.integer({ min: -1, max: 100 }), anything), { nil: undefined }) }, { requiredKeys: ["subset"] }), { maxLength: 3 }),
              timeoutMs: fc.option(fc.oneof(fc.integer({ min: -5, max: 400_000 }), anything), { nil: undefined }),
              retries: fc.option(fc.record({ attempts: fc.integer({ min: -1, max: 12 }), perTryTimeoutMs: fc.integer({ min: 0, max: 70_000 }), retryOn: fc.array(fc.constantFrom("5xx", "gateway-error", "connect-failure", "reset", "teapot"), { maxLength: 3 }) }, { requiredKeys: [] }), { nil: undefined }),
              mirror: fc.option(fc.oneof(fc.record({ subset: name, percent: fc.integer({ min: -1, max: 101 }) }), fc.record({ service: name, percent: fc.integer({ min: 0, max: 100 }) })), { nil: undefined }),
              hedge: fc.option(fc.record({ afterMs: fc.integer({ min: -1, max: 70_000 }) }), { nil: undefined }),
            }, { requiredKeys: ["name", "to"] }),
            { maxLength: 3 },
          ),
          snapshotTtlMs: fc.oneof(fc.integer({ min: 50, max: 70_000 }), anything),
          healthCheck: fc.record({ intervalMs: fc.integer({ min: 50, max: 400_000 }), timeoutMs: fc.integer({ min: 5, max: 70_000 }), path: fc.oneof(fc.constant("/healthz"), oddString) }, { requiredKeys: [] }),
          passiveHealth: fc.record({ minRequests: fc.integer({ min: 0, max: 10 }), failurePercent: fc.integer({ min: 0, max: 101 }) }, { requiredKeys: [] }),
          loadBalancer: fc.record({ algorithm: fc.constantFrom("p2c-ewma", "round-robin", "consistent-hash", "random-ish"), hashOn: fc.record({ header: fc.constantFrom("x-user") }) }, { requiredKeys: [] }),
          outlierDetection: fc.record({ maxEjectionPercent: fc.integer({ min: -1, max: 101 }) }, { requiredKeys: [] }),
        },
        { requiredKeys: [] },
      ),
      { maxKeys: 4 },
    ),
    mesh: fc.oneof(name, oddString),
  }, { requiredKeys: ["services"] });

type Path = (string | number)[];

function paths(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...at, i], out));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) paths(v, [...at, k], out);
  return out;
}

/** One random change at one random place: delete, replace, add an unknown key, or duplicate. */
function mutate(document: unknown, pick: number, kind: number, replacement: unknown): unknown {
  const copy = structuredClone(document);
  const all = paths(copy);
  const path = all[pick % all.length]!;
  if (path.length === 0) return kind % 2 ? replacement : copy;
  let parent: any = copy;
  for (const key of path.slice(0, -1)) parent = parent[key];
  const last = path.at(-1)!;
  switch (kind % 4) {
    case 0:
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case 1:
      parent[last] = replacement;
      break;
    case 2:
      if (parent[last] !== null && typeof parent[last] === "object" && !Array.isArray(parent[last])) parent[last].unexpectedField = replacement;
      else parent[last] = replacement;
      break;
    default:
      if (Array.isArray(parent)) parent.push(structuredClone(parent[last as number]));
      else parent[`${String(last)}-copy`] = structuredClone(parent[last]);
  }
  return copy;
}

describe("policy validation and compilation never crash", () => {
  it("on random JSON", () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      ran["random JSON"] = (ran["random JSON"] ?? 0) + 1;
      check(value);
    }), { numRuns: RUNS });
  });

  it("on documents in the schema's shape with wrong values here and there", () => {
    let accepted = 0;
    fc.assert(fc.property(generated, (doc) => {
      ran["generated"] = (ran["generated"] ?? 0) + 1;
      if (check(doc)) accepted++;
    }), { numRuns: RUNS });
    // The generator must also reach valid documents, or compilation goes unfuzzed.
    expect(accepted).toBeGreaterThan(0);
  });

  it("on valid documents mutated at random paths", async () => {
    const seeds = [await readPolicy("policies/bookinfo.json"), {
      mesh: "m",
      services: {
        web: {
          endpoints: [{ id: "a", binding: "A_1", labels: { version: "v1", zone: "z1" } }, { id: "b", url: "https://b.example/", labels: { version: "v2" } }],
          subsets: { v1: { version: "v1" }, v2: { version: "v2" } },
          routes: [{ name: "r", match: [{ path: { regex: "/api/[0-9]+" }, headers: { "x-user": { prefix: "a" } }, query: { q: { present: true } } }], to: [{ subset: "v1", weight: 3 }, { subset: "v2", weight: 1 }], retries: { attempts: 2, perTryTimeoutMs: 100 }, hedge: { afterMs: 50 }, fault: { delay: { percent: 5, ms: 10 } }, mirror: { service: "api", percent: 10 } }],
          healthCheck: { path: "/healthz", intervalMs: 1_000, timeoutMs: 200 },
          passiveHealth: { minRequests: 5 },
          loadBalancer: { algorithm: "consistent-hash", hashOn: { header: "x-user" } },
        },
        api: { endpoints: [{ id: "c", binding: "C_1" }] },
      },
    }];
    fc.assert(fc.property(fc.nat(seeds.length - 1), fc.nat(), fc.nat(), anything, fc.integer({ min: 1, max: 3 }), (seed, pick, kind, replacement, times) => {
      ran["mutated"] = (ran["mutated"] ?? 0) + 1;
      let doc: unknown = seeds[seed];
      for (let i = 0; i < times; i++) doc = mutate(doc, pick + i * 7, kind + i, replacement);
      check(doc);
    }), { numRuns: RUNS });
  });

  it("splitting an accepted document for storage and putting it back together gives it back", async () => {
    const doc = await readPolicy("policies/bookinfo.json");
    await fc.assert(fc.asyncProperty(fc.nat(), fc.nat(), anything, async (pick, kind, replacement) => {
      ran["stored"] = (ran["stored"] ?? 0) + 1;
      const mutated = mutate(doc, pick, kind, replacement) as any;
      if (!validatePolicy(mutated).ok) return;
      const prepared = await preparePolicy(mutated);
      const texts = new Map(prepared.sections.map((s) => [s.digest, s.text]));
      // Storage holds JSON, so the document comes back as JSON gives it (-0 as 0, and so on).
      expect(JSON.parse(assembleDocument(JSON.parse(prepared.manifestText), (d) => texts.get(d)!))).toEqual(JSON.parse(JSON.stringify(mutated)));
    }), { numRuns: Math.max(1, Math.floor(RUNS / 10)) });
  });
});
