// The edge query client against a local HTTP server standing in for the Analytics Engine SQL API:
// the server checks the request it receives (method, path, auth header, body); no network.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { edgeQueryConfig, queryEdge, sqlApiUrl, type EdgeQueryConfig } from "../../analytics/edge-client.ts";
import { runQuery } from "../../analytics/sql/index.ts";
import { knownRows, NOW_MS } from "./analytics-fixtures.ts";

const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
const API_TOKEN = "tok_SECRET-value_123";

interface Received {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

type Reply = (req: Received, res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let received: Received[] = [];
let reply: Reply;

/** Answers as the SQL API does for a good request: the local engine's answer over the known rows. */
const answerLikeTheApi: Reply = (req, res) => {
  const okPath = req.url === `/client/v4/accounts/${ACCOUNT_ID}/analytics_engine/sql`;
  if (req.method !== "POST" || !okPath || req.authorization !== `Bearer ${API_TOKEN}`) {
    res.writeHead(403, { "content-type": "application/json" });
    res.end(JSON.stringify({ success: false, errors: [{ code: 10000, message: "Authentication error" }] }));
    return;
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(runQuery(req.body, knownRows(), { nowMs: NOW_MS })));
};

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r: Received = { method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization, contentType: req.headers["content-type"], body: Buffer.concat(chunks).toString("utf8") };
      received.push(r);
      reply(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received = [];
  reply = answerLikeTheApi;
});

const config = (extra: Partial<EdgeQueryConfig> = {}): EdgeQueryConfig => ({ accountId: ACCOUNT_ID, apiToken: API_TOKEN, baseUrl, ...extra });

function expectNoSecrets(text: string): void {
  expect(text).not.toContain(API_TOKEN);
  expect(text).not.toContain(ACCOUNT_ID);
}

describe("edge query client", () => {
  it("POSTs the SQL to the account's analytics_engine/sql with the bearer token, and returns FORMAT JSON", async () => {
    const sql = "SELECT blob1 AS service, sum(_sample_interval) AS events FROM mesh GROUP BY service ORDER BY events DESC LIMIT 2 FORMAT JSON";
    const answer = await queryEdge(sql, config());
    expect(received).toEqual([
      { method: "POST", url: `/client/v4/accounts/${ACCOUNT_ID}/analytics_engine/sql`, authorization: `Bearer ${API_TOKEN}`, contentType: "text/plain; charset=utf-8", body: sql },
    ]);
    expect(answer).toEqual({
      ok: true,
      result: {
        meta: [
          { name: "service", type: "String" },
          { name: "events", type: "UInt64" },
        ],
        data: [
          { service: "reviews", events: "8" },
          { service: "details", events: "3" },
        ],
        rows: 2,
        rows_before_limit_at_least: 3,
      },
    });
  });

  it("builds the API address from the default base URL", () => {
    expect(sqlApiUrl({ accountId: ACCOUNT_ID })).toBe(`https://api.cloudflare.com/client/v4/accounts/${ACCOUNT_ID}/analytics_engine/sql`);
    expect(sqlApiUrl({ accountId: "a/b", baseUrl: "http://x/v4/" })).toBe("http://x/v4/accounts/a%2Fb/analytics_engine/sql");
  });

  it("refuses unsupported SQL locally, naming the construct, without calling the API", async () => {
    const answer = await queryEdge("SELECT blob1 FROM mesh JOIN other ON 1", config());
    expect(answer).toMatchObject({ ok: false, status: 400, construct: "JOIN" });
    expect(received).toEqual([]);
  });

  it("relays the API's refusal of a query as 400, scrubbed of secrets", async () => {
    reply = (_req, res) => {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end(`Code: 47. Unknown identifier for account ${ACCOUNT_ID} with token ${API_TOKEN}`);
    };
    const answer = await queryEdge("SELECT blob1 FROM mesh", config());
    expect(answer).toMatchObject({ ok: false, status: 400, upstreamStatus: 400 });
    const error = (answer as { error: string }).error;
    expect(error).toContain("Code: 47. Unknown identifier for account [account-id] with token [api-token]");
    expectNoSecrets(error);
  });

  it("reports refused credentials as 502 with the API's message and no secret", async () => {
    const answer = await queryEdge("SELECT 1", config({ apiToken: "wrong-token" }));
    expect(received[0]!.authorization).toBe("Bearer wrong-token");
    expect(answer).toMatchObject({ ok: false, status: 502, upstreamStatus: 403 });
    expect((answer as { error: string }).error).toContain("Authentication error");
    expect((answer as { error: string }).error).not.toContain("wrong-token");
  });

  it("reports server errors and answers that are not FORMAT JSON as 502", async () => {
    reply = (_req, res) => {
      res.writeHead(500);
      res.end("internal");
    };
    expect(await queryEdge("SELECT 1", config())).toMatchObject({ ok: false, status: 502, upstreamStatus: 500 });
    reply = (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("1\t2\n");
    };
    expect(await queryEdge("SELECT 1", config())).toMatchObject({ ok: false, status: 502, error: expect.stringContaining("FORMAT JSON") });
    reply = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ meta: [], data: [[1]], rows: 1 }));
    };
    expect(await queryEdge("SELECT 1", config())).toMatchObject({ ok: false, status: 502 });
  });

  it("gives up after its timeout with 504", async () => {
    reply = () => {}; // never answers
    const answer = await queryEdge("SELECT 1", config({ timeoutMs: 200 }));
    expect(answer).toEqual({ ok: false, status: 504, error: "the Analytics Engine SQL API did not answer within 200 ms" });
  });

  it("reports an unreachable API as 502 without the address's account id", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const answer = await queryEdge("SELECT 1", config({ baseUrl: `http://127.0.0.1:${port}/client/v4` }));
    expect(answer).toMatchObject({ ok: false, status: 502, error: expect.stringContaining("unreachable") });
    expectNoSecrets(JSON.stringify(answer));
  });

  it("never logs", async () => {
    const calls: unknown[] = [];
    const original = { log: console.log, error: console.error, warn: console.warn, info: console.info, debug: console.debug };
    for (const name of Object.keys(original) as (keyof typeof original)[]) console[name] = (...args: unknown[]) => void calls.push(args);
    try {
      reply = (_req, res) => {
        res.writeHead(403);
        res.end("denied");
      };
      await queryEdge("SELECT 1", config());
      await queryEdge("SELECT 1", config({ baseUrl: "http://127.0.0.1:1/client/v4" }));
    } finally {
      Object.assign(console, original);
    }
    expect(calls).toEqual([]);
  });

  it("reads its configuration from the environment", () => {
    expect(edgeQueryConfig({})).toBeNull();
    expect(edgeQueryConfig({ EDGEMESH_ANALYTICS_ACCOUNT_ID: ACCOUNT_ID })).toBeNull();
    expect(edgeQueryConfig({ EDGEMESH_ANALYTICS_ACCOUNT_ID: ` ${ACCOUNT_ID} `, EDGEMESH_ANALYTICS_API_TOKEN: API_TOKEN })).toEqual({ accountId: ACCOUNT_ID, apiToken: API_TOKEN });
    expect(edgeQueryConfig({ EDGEMESH_ANALYTICS_ACCOUNT_ID: ACCOUNT_ID, EDGEMESH_ANALYTICS_API_TOKEN: API_TOKEN, EDGEMESH_ANALYTICS_SQL_API_URL: "http://127.0.0.1:9/client/v4" })).toMatchObject({ baseUrl: "http://127.0.0.1:9/client/v4" });
  });
});
