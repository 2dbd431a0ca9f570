// Telemetry knobs of a service: whether its sidecars write a data point per request, and which
// share of requests they sample. Part of the policy schema (see schema.ts).
import { z } from "zod";

export const MAX_SAMPLE_INTERVAL = 1_000_000;

export const Telemetry = z
  .object({
    enabled: z.boolean().default(true)
      .describe("Write one data point per request (Analytics Engine in production, the local telemetry store under `npm start`)."),
    sampleInterval: z.number().int().min(1).max(MAX_SAMPLE_INTERVAL).default(1)
      .describe("Record one request in this many, chosen at random; 1 records every request. Each recorded row carries the interval as its weight (double1), so counts, rates and quantiles weighted by it stay right."),
    countStreamedBytes: z.boolean().default(false)
      .describe("Count the bytes of responses that carry no content-length (every response over a service binding) as they stream, and write the data point when the body ends. Off: such responses are recorded with -1 bytes. Costs CPU on every such response (measured by `npm run bench:overhead`)."),
  })
  .strict()
  .describe("Per-request telemetry of this service's sidecars.");

export type TelemetryPolicy = z.output<typeof Telemetry>;
