// `npx tsx scripts/bench/regex-engine.ts`: what matching a policy regex costs on RE2 (re2js, what
// the sidecar runs) against V8's backtracking RegExp (what it ran before), on regexes and inputs
// like a policy's. Prints ns per match for both and the ratio; one run, no assertions.
import { anchored, compilePolicyRegex } from "../../policies/regex.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MATCHES = Number(process.env.BENCH_MATCHES ?? 200_000);

const CASES: { name: string; regex: string; inputs: string[] }[] = [
  { name: "path: /items/[0-9]+", regex: "/items/[0-9]+", inputs: ["/items/12345", "/items/abc", "/users/1"] },
  { name: "path: /api/v[0-9]+/users/[^/]+/orders", regex: "/api/v[0-9]+/users/[^/]+/orders", inputs: ["/api/v2/users/jason/orders", "/api/v2/users/jason/cart", "/static/app.js"] },
  { name: "path: .*\\.(png|jpe?g|gif)", regex: ".*\\.(png|jpe?g|gif)", inputs: ["/static/img/logo.png", "/static/img/photo.jpeg", "/index.html"] },
  { name: "header: .*(iPhone|Android).*", regex: ".*(iPhone|Android).*", inputs: ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"] },
  { name: "query: v[23]", regex: "v[23]", inputs: ["v2", "v1"] },
];

function nsPerMatch(match: (value: string) => boolean, inputs: string[]): number {
  let hits = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < MATCHES; i++) if (match(inputs[i % inputs.length]!)) hits++;
  const ns = Number(process.hrtime.bigint() - started) / MATCHES;
  if (hits < 0) console.log(hits); // keeps the loop from being optimised away
  return ns;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratios: number[] = [];
console.log(`${MATCHES} matches per engine and case, median of ${ROUNDS} rounds\n`);
console.log(`${"case".padEnd(44)}${"RegExp ns".padStart(11)}${"RE2 ns".padStart(11)}${"RE2/RegExp".padStart(12)}`);
for (const c of CASES) {
  const js = new RegExp(anchored(c.regex));
  const re2 = compilePolicyRegex(anchored(c.regex));
  for (const input of c.inputs) if (js.test(input) !== re2.testExact(input)) throw new Error(`engines disagree on ${c.regex} / ${input}`);
  const jsNs: number[] = [];
  const re2Ns: number[] = [];
  nsPerMatch((v) => js.test(v), c.inputs); // warm-up
  nsPerMatch((v) => re2.testExact(v), c.inputs);
  for (let r = 0; r < ROUNDS; r++) {
    jsNs.push(nsPerMatch((v) => js.test(v), c.inputs));
    re2Ns.push(nsPerMatch((v) => re2.testExact(v), c.inputs));
  }
  const ratio = median(re2Ns) / median(jsNs);
  ratios.push(ratio);
  console.log(`${c.name.padEnd(44)}${median(jsNs).toFixed(0).padStart(11)}${median(re2Ns).toFixed(0).padStart(11)}${("x" + ratio.toFixed(1)).padStart(12)}`);
}
const geomean = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
console.log(`\nRE2 / RegExp, geometric mean over cases: x${geomean.toFixed(1)}`);

// The reason for the switch: a pattern that backtracks exponentially on RegExp.
const evil = "/" + "a".repeat(25);
const started = process.hrtime.bigint();
new RegExp(anchored("/(a+)+b")).test(evil);
const jsMs = Number(process.hrtime.bigint() - started) / 1e6;
const started2 = process.hrtime.bigint();
compilePolicyRegex(anchored("/(a+)+b")).testExact(evil);
const re2Ms = Number(process.hrtime.bigint() - started2) / 1e6;
console.log(`/(a+)+b against "/" + 25 x "a": RegExp ${jsMs.toFixed(1)} ms, RE2 ${re2Ms.toFixed(3)} ms (each extra "a" doubles RegExp's time)`);
