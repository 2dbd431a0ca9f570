// A fast 64-bit content hash (two 32-bit FNV-1a lanes with different offsets) of a snapshot's JSON:
// tells whether a service's snapshot changed without keeping the old text in memory. Not for
// security; two different snapshots sharing a hash is a 1-in-2^64 event.
export function contentHash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x6b43a9b5;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}
