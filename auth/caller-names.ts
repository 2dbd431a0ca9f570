// Caller names with a meaning of their own. A module of constants only, so the browser bundle of
// the dashboard (through analytics/request-layout.ts) can share them without the token code.

/** The caller of a request without a verified identity: access rules, rate limits and telemetry name it. */
export const EXTERNAL_CALLER = "external";
