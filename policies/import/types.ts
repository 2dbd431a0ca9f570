// What an import answers: the edgemesh policy document, every field of the input it did not
// translate (with the reason), and what stops the document from being usable.
import type { PolicyDocumentInput } from "../schema.ts";

/** One input file (or request body): YAML or JSON, one or more documents. */
export interface ImportSource {
  /** Shown in reports, e.g. the file name. */
  name: string;
  text: string;
}

export interface ImportOptions {
  /**
   * The document to merge into, in its written form (e.g. the active policy): it supplies the
   * endpoints, subsets and settings the manifests lack. Services the manifests route replace
   * their routes; everything else is kept.
   */
  base?: unknown;
  /** The mesh name; defaults to the base document's. Required without a base. */
  mesh?: string;
  /**
   * Kubernetes ServiceAccounts (`namespace/name` or `name`) -> the mesh caller each stands for:
   * a service, or an identity (then declared in `access.identities`). Without an entry a
   * ServiceAccount stands for the service or declared identity of its own name.
   */
  serviceAccounts?: Record<string, string>;
}

/** Where in the input a field or problem is. */
export interface InputLocation {
  /** `Kind/name` of the resource, e.g. `VirtualService/reviews`. */
  resource: string;
  /** `<source name>#<document index from 1>`. */
  source: string;
  /** JSON path inside the resource, e.g. `$.spec.http[0].corsPolicy`. */
  path: string;
}

export interface IgnoredField extends InputLocation {
  reason: string;
}

/**
 * A problem that makes the document unusable. Input problems carry the input location; problems
 * found validating the produced document carry its JSON path in `path` and, when it is known, the
 * resource that produced it.
 */
export interface ImportError {
  path: string;
  message: string;
  resource?: string;
  source?: string;
}

/** Something the operator should know that does not stop the document from validating. */
export interface ImportWarning {
  message: string;
  resource?: string;
  source?: string;
  path?: string;
}

export interface ImportResult {
  /** The merged policy document in its written form (defaults left out), ready for `apply`. */
  document: PolicyDocumentInput;
  ignored: IgnoredField[];
  errors: ImportError[];
  warnings: ImportWarning[];
  /** `Kind/name` of every resource that contributed to the document. */
  imported: string[];
}
