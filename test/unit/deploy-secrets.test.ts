import { describe, expect, it } from "vitest";
import { CONTROL_SECRETS, formatSecretsToSet, parseSecretList, requiredSecretNames, secretPutCommand, secretsToSet, SIDECAR_SECRETS } from "../../scripts/deploy/secrets.ts";

const workers = [
  { worker: "edgemesh-control", configFile: ".edgemesh/deploy/bookinfo/edgemesh-control.jsonc", specs: CONTROL_SECRETS },
  { worker: "edgemesh-sidecar-reviews", configFile: ".edgemesh/deploy/bookinfo/edgemesh-sidecar-reviews.jsonc", specs: SIDECAR_SECRETS },
  { worker: "bookinfo-reviews-v1", configFile: ".edgemesh/deploy/bookinfo/bookinfo-reviews-v1.jsonc", specs: [] },
];

describe("secrets", () => {
  it("are the contract's: the control holds the bootstrap token and the key set, sidecars the key set", () => {
    expect(requiredSecretNames(CONTROL_SECRETS)).toEqual(["EDGEMESH_ADMIN_TOKEN", "EDGEMESH_TOKEN_KEYS"]);
    expect(CONTROL_SECRETS.filter((s) => !s.required).map((s) => s.name)).toEqual(["EDGEMESH_ANALYTICS_ACCOUNT_ID", "EDGEMESH_ANALYTICS_API_TOKEN"]);
    // Sidecars hold nothing that can change policy.
    expect(SIDECAR_SECRETS.map((s) => s.name)).toEqual(["EDGEMESH_TOKEN_KEYS"]);
  });

  it("lists every secret per Worker when nothing is known, and only the unset ones when it is", () => {
    expect(secretsToSet(workers).map((s) => `${s.worker}:${s.name}`)).toEqual([
      "edgemesh-control:EDGEMESH_ADMIN_TOKEN",
      "edgemesh-control:EDGEMESH_TOKEN_KEYS",
      "edgemesh-control:EDGEMESH_ANALYTICS_ACCOUNT_ID",
      "edgemesh-control:EDGEMESH_ANALYTICS_API_TOKEN",
      "edgemesh-sidecar-reviews:EDGEMESH_TOKEN_KEYS",
    ]);
    const set = new Map([["edgemesh-control", new Set(["EDGEMESH_ADMIN_TOKEN", "EDGEMESH_ANALYTICS_ACCOUNT_ID", "EDGEMESH_ANALYTICS_API_TOKEN"])]]);
    expect(secretsToSet(workers, set).map((s) => `${s.worker}:${s.name}:${s.required}`)).toEqual([
      "edgemesh-control:EDGEMESH_TOKEN_KEYS:true",
      "edgemesh-sidecar-reviews:EDGEMESH_TOKEN_KEYS:true",
    ]);
  });

  it("prints the commands that prompt for each value, and what each secret is", () => {
    const lines = formatSecretsToSet(secretsToSet(workers).filter((s) => s.required));
    expect(lines).toEqual([
      "  npx wrangler secret put EDGEMESH_ADMIN_TOKEN -c .edgemesh/deploy/bookinfo/edgemesh-control.jsonc",
      "  npx wrangler secret put EDGEMESH_TOKEN_KEYS -c .edgemesh/deploy/bookinfo/edgemesh-control.jsonc",
      "  npx wrangler secret put EDGEMESH_TOKEN_KEYS -c .edgemesh/deploy/bookinfo/edgemesh-sidecar-reviews.jsonc",
      "  where:",
      `    EDGEMESH_ADMIN_TOKEN  ${CONTROL_SECRETS[0]!.purpose}`,
      `    EDGEMESH_TOKEN_KEYS   ${CONTROL_SECRETS[1]!.purpose}`,
    ]);
    expect(secretPutCommand({ name: "EDGEMESH_TOKEN_KEYS", configFile: "my deploy/it's.jsonc" })).toBe(`npx wrangler secret put EDGEMESH_TOKEN_KEYS -c 'my deploy/it'\\''s.jsonc'`);
  });

  describe("reading `wrangler secret list`", () => {
    it("takes the names from its JSON", () => {
      const answer = parseSecretList(0, '[\n  { "name": "EDGEMESH_ADMIN_TOKEN", "type": "secret_text" },\n  { "name": "EDGEMESH_TOKEN_KEYS", "type": "secret_text" }\n]\n', "");
      expect(answer).toEqual({ exists: true, names: new Set(["EDGEMESH_ADMIN_TOKEN", "EDGEMESH_TOKEN_KEYS"]) });
      expect(parseSecretList(0, "[]", "")).toEqual({ exists: true, names: new Set() });
      expect(parseSecretList(0, '▲ [WARNING] something\n[{ "name": "EDGEMESH_TOKEN_KEYS" }]', "")).toEqual({ exists: true, names: new Set(["EDGEMESH_TOKEN_KEYS"]) });
    });

    it("tells a Worker that does not exist from other failures", () => {
      const notFound = '✘ [ERROR] Worker "edgemesh-sidecar-stock" not found.\n\nIf this is a new Worker, run `wrangler deploy` first to create it.';
      expect(parseSecretList(1, "", notFound)).toEqual({ exists: false });
      expect(parseSecretList(1, "", "✘ [ERROR] A request to the Cloudflare API failed. workers.api.error.script_not_found [code: 10007]")).toEqual({ exists: false });
      const auth = parseSecretList(1, "", "✘ [ERROR] Authentication error [code: 10000]");
      expect(auth).toEqual({ error: expect.stringContaining("Authentication error") });
      expect(parseSecretList(0, "Not JSON at all", "")).toEqual({ error: expect.stringContaining("unexpected answer") });
    });
  });
});
