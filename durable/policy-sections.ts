// A policy document split for storage: one content-addressed section per service plus a manifest
// (the document without its services, and each service's section digest). A change to one service
// of a 3,000-service mesh thus stores one new section and a manifest, and the control plane can
// tell which services changed by comparing digests, without parsing the rest. Pure: the control
// Worker prepares documents with it, MeshControl stores and reassembles them.

/** Any JSON value: what an operator's document is before validation. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface PolicyManifest {
  /** The document's top-level fields other than `services` ($schema, mesh, description). */
  envelope: Record<string, Json>;
  /** [service name, digest of its section], in the document's order. */
  services: [string, string][];
}

/** A document ready to store: its manifest and every section, each with its digest. */
export interface PreparedPolicy {
  manifestDigest: string;
  manifestText: string;
  sections: { service: string; digest: string; text: string }[];
}

const encoder = new TextEncoder();

/** SHA-256 of the UTF-8 text, 128 bits in hex: names a stored piece by its content. */
export async function digestOf(text: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  let hex = "";
  for (let i = 0; i < 16; i++) hex += hash[i]!.toString(16).padStart(2, "0");
  return hex;
}

/** Splits a document that has already validated (so `services` is an object). */
export async function preparePolicy(raw: { [key: string]: Json }): Promise<PreparedPolicy> {
  const { services, ...envelope } = raw;
  const sections: PreparedPolicy["sections"] = [];
  for (const [service, section] of Object.entries((services ?? {}) as Record<string, Json>)) {
    const text = JSON.stringify(section);
    sections.push({ service, digest: await digestOf(text), text });
  }
  const manifest: PolicyManifest = { envelope, services: sections.map((s) => [s.service, s.digest]) };
  const manifestText = JSON.stringify(manifest);
  return { manifestDigest: await digestOf(manifestText), manifestText, sections };
}

/** The document's JSON text again, from its manifest and each section's text. */
export function assembleDocument(manifest: PolicyManifest, sectionText: (digest: string) => string): string {
  const parts = Object.entries(manifest.envelope).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  parts.push(`"services":{${manifest.services.map(([name, digest]) => `${JSON.stringify(name)}:${sectionText(digest)}`).join(",")}}`);
  return `{${parts.join(",")}}`;
}
