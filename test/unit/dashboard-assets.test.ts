// The dashboard's assets are bundled at build time into a committed module; this fails when the
// module no longer matches dashboard/src/ (run `npm run dashboard:build`).
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { GENERATED, renderDashboardAssets } from "../../dashboard/build.ts";
import { DASHBOARD_ASSETS, DASHBOARD_INDEX } from "../../workers/control/dashboard-assets.gen.ts";

describe("dashboard assets", () => {
  it("are up to date with dashboard/src/ (else run npm run dashboard:build)", async () => {
    const committed = await readFile(GENERATED, "utf8");
    const fresh = await renderDashboardAssets();
    expect(committed === fresh, "workers/control/dashboard-assets.gen.ts is stale: run `npm run dashboard:build` and commit it").toBe(true);
  }, 60_000);

  it("are all served from the control Worker: the page names only bundled files, nothing from elsewhere", () => {
    const referenced = [...DASHBOARD_INDEX.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((u) => !u.startsWith("#"));
    expect(referenced.length).toBe(3);
    for (const url of referenced) {
      expect(url.startsWith("/dashboard/assets/"), url).toBe(true);
      expect(Object.keys(DASHBOARD_ASSETS)).toContain(url.slice("/dashboard/assets/".length));
    }
    // The Content-Security-Policy allows no inline script or style.
    expect(DASHBOARD_INDEX.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(DASHBOARD_INDEX.body).not.toMatch(/\sstyle=/);
    for (const asset of Object.values(DASHBOARD_ASSETS)) expect(asset.body).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
  });
});
