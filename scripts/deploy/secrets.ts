// The secrets each kind of Worker needs, the commands that set them, and reading what
// `wrangler secret list` says is set. edgemesh never reads, stores or prints a secret's value:
// it only names secrets and prints the `wrangler secret put` commands that prompt for them.

export interface SecretSpec {
  name: string;
  /** Required secrets are listed in the Worker's config (`secrets.required`): wrangler refuses to deploy without them. */
  required: boolean;
  purpose: string;
}

export const CONTROL_SECRETS: readonly SecretSpec[] = [
  { name: "EDGEMESH_ADMIN_TOKEN", required: true, purpose: "the bootstrap admin token (scope admin); any long random value" },
  { name: "EDGEMESH_TOKEN_KEYS", required: true, purpose: "the mesh token key set with its signing key (`edgemesh token keygen`); the same set on the control Worker and every sidecar" },
  { name: "EDGEMESH_ANALYTICS_ACCOUNT_ID", required: false, purpose: "optional: the account whose Analytics Engine the control plane queries" },
  { name: "EDGEMESH_ANALYTICS_API_TOKEN", required: false, purpose: "optional: an API token with Account Analytics Read, for those queries" },
];

export const SIDECAR_SECRETS: readonly SecretSpec[] = [
  { name: "EDGEMESH_TOKEN_KEYS", required: true, purpose: "the mesh token key set with its signing key (`edgemesh token keygen`); the same set on the control Worker and every sidecar" },
];

export function requiredSecretNames(specs: readonly SecretSpec[]): string[] {
  return specs.filter((s) => s.required).map((s) => s.name);
}

export interface SecretToSet extends SecretSpec {
  worker: string;
  /** The generated config of the Worker, as the user should pass it to wrangler (relative to their cwd). */
  configFile: string;
}

/**
 * The secrets still to set: every secret of `specs` per Worker, minus the ones `alreadySet` lists
 * for it. Without `alreadySet` (a dry run, offline) every secret is listed.
 */
export function secretsToSet(
  workers: readonly { worker: string; configFile: string; specs: readonly SecretSpec[] }[],
  alreadySet?: ReadonlyMap<string, ReadonlySet<string>>,
): SecretToSet[] {
  return workers.flatMap((w) => w.specs.filter((s) => !alreadySet?.get(w.worker)?.has(s.name)).map((s) => ({ ...s, worker: w.worker, configFile: w.configFile })));
}

/** The command that sets one secret: wrangler prompts for the value (or reads it from stdin). */
export function secretPutCommand(s: Pick<SecretToSet, "name" | "configFile">): string {
  return `npx wrangler secret put ${s.name} -c ${quoteIfNeeded(s.configFile)}`;
}

/** The commands, one per Worker and secret, then what each secret is (once per name). */
export function formatSecretsToSet(secrets: readonly SecretToSet[]): string[] {
  const purposes = new Map(secrets.map((s) => [s.name, s.purpose]));
  const width = Math.max(0, ...[...purposes.keys()].map((n) => n.length));
  return [
    ...secrets.map((s) => `  ${secretPutCommand(s)}`),
    "  where:",
    ...[...purposes].map(([name, purpose]) => `    ${name.padEnd(width)}  ${purpose}`),
  ];
}

function quoteIfNeeded(arg: string): string {
  return /^[A-Za-z0-9_./@:=+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export type SecretListAnswer = { exists: true; names: Set<string> } | { exists: false } | { error: string };

/**
 * What `wrangler secret list --format json` answered: the names of the Worker's secrets, that the
 * Worker does not exist, or an error to show (not logged in, no access, …).
 */
export function parseSecretList(exitCode: number, stdout: string, stderr: string): SecretListAnswer {
  if (exitCode === 0) {
    // The JSON array starts a line; anything before it (a warning) is not part of it.
    const start = stdout.search(/^\[/m);
    try {
      const list = start >= 0 ? (JSON.parse(stdout.slice(start)) as { name?: unknown }[]) : undefined;
      if (Array.isArray(list)) return { exists: true, names: new Set(list.map((s) => String(s.name))) };
    } catch {
      // fall through: not the JSON we expected
    }
    return { error: `unexpected answer from wrangler secret list: ${stdout.slice(0, 200)}` };
  }
  const text = `${stdout}\n${stderr}`;
  if (/Worker "[^"]+"(?: \(env: [^)]*\))? not found/.test(text) || /\[code: 10007\]/.test(text)) return { exists: false };
  return { error: text.trim() || `wrangler secret list exited with ${exitCode}` };
}
