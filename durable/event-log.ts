// The event log and the watch stream: every registry, health and policy change becomes one typed
// event with a sequence number, kept in SQLite (the newest EVENT_LOG_LIMIT) and broadcast to the
// watch sockets. A client that reconnects with its last sequence misses nothing: the replay and
// later broadcasts happen inside the single-threaded object.
import type { MeshEvent, MeshEventData, MeshEventType, WatchHello } from "../policies/events.ts";
import { LogTrimmer, type Row } from "./sql.ts";

/** How many events the log keeps; older ones are pruned. */
export const EVENT_LOG_LIMIT = 10_000;

/** What the event log needs of the Durable Object for hibernatable watch sockets. */
export interface WatchHost {
  acceptWebSocket(ws: WebSocket): void;
  getWebSockets(): WebSocket[];
}

export interface EventPage {
  latestSeq: number;
  oldestSeq: number;
  /** Where the next page starts: the last event returned on a full page, else the newest looked at. */
  nextSince: number;
  events: MeshEvent[];
}

export class EventLog {
  private readonly trimmer: LogTrimmer;

  constructor(
    private readonly sql: SqlStorage,
    private readonly host: WatchHost,
    keep = EVENT_LOG_LIMIT,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      at_ms INTEGER NOT NULL,
      type TEXT NOT NULL,
      data TEXT NOT NULL
    )`);
    this.trimmer = new LogTrimmer(sql, "events", () => keep);
  }

  /** Stores the event and sends it to every watcher that wants its type; returns its sequence. */
  emit<T extends MeshEventType>(type: T, data: MeshEventData[T], atMs = Date.now()): number {
    const seq = this.sql.exec<{ seq: number }>("INSERT INTO events (at_ms, type, data) VALUES (?, ?, ?) RETURNING seq", atMs, type, JSON.stringify(data)).one().seq;
    this.trimmer.afterInsert(seq);
    const message = JSON.stringify({ seq, atMs, type, data });
    for (const ws of this.host.getWebSockets()) {
      const wanted = (ws.deserializeAttachment() as { types?: string[] | null } | null)?.types;
      if (wanted && !wanted.includes(type)) continue;
      try {
        ws.send(message);
      } catch {
        // A socket closing as we send: its client resumes from its last sequence.
      }
    }
    return seq;
  }

  bounds(): { oldestSeq: number; latestSeq: number } {
    const b = this.sql.exec<{ lo: number | null; hi: number | null }>("SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM events").one();
    return { oldestSeq: b.lo ?? 0, latestSeq: b.hi ?? 0 };
  }

  /**
   * Events after `since`, oldest first, of `types` only when given (filtered in SQL, so a rare
   * type is found however many other events lie between).
   */
  page(since: number, limit: number, types?: readonly string[]): EventPage {
    const { oldestSeq, latestSeq } = this.bounds();
    const pageSize = Math.max(1, Math.min(limit, EVENT_LOG_LIMIT));
    const typeFilter = types && types.length > 0 ? `AND type IN (${types.map(() => "?").join(", ")})` : "";
    const rows = this.sql.exec<Row>(`SELECT * FROM events WHERE seq > ? ${typeFilter} ORDER BY seq LIMIT ?`, since, ...(typeFilter ? types! : []), pageSize).toArray();
    const events = rows.map(eventFromRow);
    const nextSince = events.length === pageSize ? events.at(-1)!.seq : Math.max(since, latestSeq);
    return { latestSeq, oldestSeq, nextSince, events };
  }

  /**
   * Opens a watch: a hibernatable WebSocket that gets a hello, every event after `since` (all
   * new ones when undefined), then live events.
   */
  openWatch(since: number | undefined, types: string[] | undefined): Response {
    const { oldestSeq, latestSeq } = this.bounds();
    const from = since === undefined ? latestSeq : Math.max(0, since);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.host.acceptWebSocket(server);
    server.serializeAttachment({ types: types ?? null });
    const hello: WatchHello = { type: "watch.hello", since: from, latestSeq, oldestSeq, gap: oldestSeq > 0 && from + 1 < oldestSeq };
    server.send(JSON.stringify(hello));
    for (const row of this.sql.exec<Row>("SELECT * FROM events WHERE seq > ? ORDER BY seq", from)) {
      const event = eventFromRow(row);
      if (!types || types.includes(event.type)) server.send(JSON.stringify(event));
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /** A watcher's `ping` gets the newest sequence, so an idle client can tell it is still current. */
  answer(ws: WebSocket, message: string | ArrayBuffer): void {
    if (message === "ping") ws.send(JSON.stringify({ type: "watch.pong", latestSeq: this.bounds().latestSeq }));
  }
}

function eventFromRow(row: Row): MeshEvent {
  return { seq: row.seq as number, atMs: row.at_ms as number, type: row.type as MeshEventType, data: JSON.parse(row.data as string) } as MeshEvent;
}
