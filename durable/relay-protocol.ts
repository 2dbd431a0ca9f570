// What relays and the authoritative MeshControl say to each other (docs/distribution.md). A relay
// sends a report at most once per `reportEveryMs` while its isolates have traffic: what it holds
// (anti-entropy), what it was asked for and lacks, the isolates it saw and their passive-health
// counts summed. The authority answers with every snapshot the relay lacks or holds an old
// generation of, and pushes the same kind of update to the relays holding a service whenever the
// service's generation moves. Plain data both ways.
import type { EndpointOutcome, ServiceSnapshot } from "../policies/snapshot.ts";

/** The fault switch as relays apply it (see MeshControl.setFault). */
export interface RelayFault {
  snapshot: "ok" | "fail" | "slow";
  delayMs: number;
}

/** One isolate as a relay saw it since its last report. */
export interface RelayedIsolate {
  service: string;
  isolateId: string;
  colo: string;
  generation: number;
  policyVersion: number;
  /** The epoch of the snapshot the isolate serves ("" for none). */
  epoch: string;
  lastSeenMs: number;
  checkIns: number;
}

export interface RelayReport {
  /** The relay's Durable Object id (the authority pushes to it by id). */
  relayId: string;
  /** Its name, "<mesh>/<region>/<shard>", for people (sync status shows it). */
  relay: string;
  /** The epoch of the snapshots it holds ("" when none). */
  epoch: string;
  /** Every service it holds, with the generation it holds. */
  held: [service: string, generation: number][];
  /** Services isolates asked for that it does not hold. */
  wanted: string[];
  isolates: RelayedIsolate[];
  /** Passive-health counts per service, summed over its isolates since the last report. */
  outcomes: { service: string; outcomes: EndpointOutcome[] }[];
  /** Answers it gave per service since the last report. */
  answers: { service: string; snapshotsServed: number; notModified: number }[];
}

export interface RelayUpdate {
  epoch: string;
  /** Snapshots newer than the relay's (or of another epoch, or wanted). */
  snapshots: ServiceSnapshot[];
  /** Services it holds or wanted that the policy does not have (any more). */
  unknown: string[];
  /** Every service the policy has, for the "unknown service" answer. */
  services: string[];
  /** How often the relay should report while it has traffic. */
  reportEveryMs: number;
  fault: RelayFault;
}

/** The relay's RPC surface as the authority uses it. */
export interface MeshRelayRpc {
  push(update: RelayUpdate): Promise<void>;
}

/** The authority's RPC surface as relays use it. */
export interface RelayAuthorityRpc {
  relaySync(report: RelayReport): Promise<RelayUpdate>;
}
