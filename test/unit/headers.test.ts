import { describe, expect, it } from "vitest";
import { withoutMeshHeaders } from "../../workers/sidecar/headers.ts";

describe("the mesh's own headers", () => {
  it("are taken off whatever their name, with the names asked for", () => {
    const h = new Headers({ "x-edgemesh-shadow": "1", "X-EdgeMesh-Anything": "spoofed", authorization: "Bearer t", accept: "*/*" });
    const kept = withoutMeshHeaders(h, ["authorization"]);
    expect([...kept.keys()]).toEqual(["accept"]);
    // The original is left alone (the client's request).
    expect(h.get("x-edgemesh-shadow")).toBe("1");
  });

  it("cost no copy when there are none", () => {
    const h = new Headers({ accept: "*/*", "x-edge": "not ours" });
    expect(withoutMeshHeaders(h)).toBe(h);
    expect(withoutMeshHeaders(h, ["authorization"])).toBe(h);
  });
});
