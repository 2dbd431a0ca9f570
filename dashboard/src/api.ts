// The admin API, with the admin token in the Authorization header of every call. The token lives
// in this tab's sessionStorage (and memory); the dashboard never puts it in a cookie or a URL.
import type { SessionInfo } from "./types.ts";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly path: string,
  ) {
    super(typeof body.error === "string" ? body.error : `HTTP ${status} from ${path}`);
  }
}

const TOKEN_KEY = "edgemesh.adminToken";

export class Api {
  private token: string | null = sessionStorage.getItem(TOKEN_KEY);
  /** Called when a stored token stops working (revoked, rotated): the app signs out. */
  onUnauthorized: (message: string) => void = () => {};

  get signedIn(): boolean {
    return this.token !== null;
  }

  /** Checks a token by asking for a session; keeps it only when the control plane accepts it. */
  async signIn(token: string): Promise<SessionInfo> {
    const info = (await this.request("GET", "/v1/dashboard/session", { token })) as SessionInfo;
    this.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    return info;
  }

  signOut(): void {
    this.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
  }

  get<T>(path: string): Promise<T> {
    return this.request("GET", path) as Promise<T>;
  }

  post<T>(path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<T> {
    return this.request("POST", path, init) as Promise<T>;
  }

  private async request(method: string, path: string, init: { body?: string; headers?: Record<string, string>; token?: string } = {}): Promise<unknown> {
    const token = init.token ?? this.token;
    if (token === null) throw new ApiError(401, { error: "not signed in" }, path);
    const res = await fetch(path, {
      method,
      headers: { ...init.headers, authorization: `Bearer ${token}` },
      body: init.body,
      credentials: "same-origin",
      cache: "no-store",
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: text.slice(0, 300) };
    }
    if (!res.ok) {
      const error = new ApiError(res.status, (body ?? {}) as Record<string, unknown>, path);
      // Only a token that was accepted before counts as expired; a wrong one at sign-in is the form's to show.
      if (res.status === 401 && init.token === undefined) this.onUnauthorized(error.message);
      throw error;
    }
    return body;
  }
}
