// How snapshots reach sidecars at scale (docs/distribution.md): the names both sides must agree
// on. A sidecar checks in with the relay of its region and shard instead of the authoritative
// MeshControl, and isolates of one colo share the last answer through the Cache API. Pure.

/** Durable Object location hints: one relay tier per region. */
export const RELAY_REGIONS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type RelayRegion = (typeof RELAY_REGIONS)[number];

/**
 * While the colo's shared answer keeps an isolate from calling its relay, it still checks in at
 * least once per this many TTLs (and whenever it installed a new snapshot or has failures to
 * report), so sync status knows it is there.
 */
export const PRESENCE_EVERY_TTLS = 4;

/** Relays per region unless EDGEMESH_RELAY_SHARDS says otherwise (the same on every sidecar). */
export const DEFAULT_RELAY_SHARDS = 4;
export const MAX_RELAY_SHARDS = 256;

/** Countries Cloudflare's "me" location hint covers (Middle East), by ISO code. */
const MIDDLE_EAST = new Set(["AE", "BH", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "PS", "QA", "SA", "SY", "TR", "YE"]);

/** What the sidecar knows of where it runs: `request.cf` (colo, continent, longitude, country). */
export interface RequestPlace {
  colo?: unknown;
  continent?: unknown;
  longitude?: unknown;
  country?: unknown;
}

/**
 * The region whose relays an isolate uses, from where its requests arrive: the continent, split
 * east/west for North America (at 100°W) and Europe (at 15°E). Unknown places (local runs) use "enam".
 */
export function relayRegion(place: RequestPlace | undefined): RelayRegion {
  const continent = typeof place?.continent === "string" ? place.continent : "";
  const longitude = Number(place?.longitude);
  if (typeof place?.country === "string" && MIDDLE_EAST.has(place.country)) return "me";
  switch (continent) {
    case "NA":
      return Number.isFinite(longitude) && longitude < -100 ? "wnam" : "enam";
    case "SA":
      return "sam";
    case "EU":
      return Number.isFinite(longitude) && longitude > 15 ? "eeur" : "weur";
    case "AS":
      return "apac";
    case "OC":
      return "oc";
    case "AF":
      return "afr";
    default:
      return "enam";
  }
}

/** FNV-1a over the text: spreads services and colos over shards the same way on every sidecar. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The shard within a region: by service and colo, so one hot service spreads over the region's
 * relays by colo, and the isolates of one colo and service always share a relay (and a cached answer).
 */
export function relayShard(service: string, colo: string, shards: number): number {
  const n = Math.max(1, Math.min(MAX_RELAY_SHARDS, Math.floor(shards) || 1));
  return fnv1a(`${service}@${colo}`) % n;
}

/** The relay object's name (MESH_RELAY.idFromName): the mesh first, so a relay knows its mesh. */
export function relayName(mesh: string, region: RelayRegion, shard: number): string {
  return `${mesh}/${region}/${shard}`;
}

/** The mesh a relay serves, from its name. */
export function meshOfRelay(name: string): string {
  const slash = name.indexOf("/");
  return slash < 0 ? name : name.slice(0, slash);
}

/**
 * The Cache API key under which a colo keeps its service's last snapshot: the 24-hour copy a cold
 * isolate starts from, and the shared answer its isolates use while it is fresh.
 */
export function snapshotCacheKey(mesh: string, service: string): string {
  return `https://snapshot.edgemesh.internal/${encodeURIComponent(mesh)}/${encodeURIComponent(service)}`;
}
