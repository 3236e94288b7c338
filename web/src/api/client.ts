// The API client: typed from the OpenAPI document the daemon serves
// (`schema.d.ts` is generated from web/openapi.json by `npm run types`, and a
// Rust test keeps that file equal to the daemon's document), so a field the
// daemon renames or drops fails this app's type check, not its users.
import type { components } from "./schema";

export type Session = components["schemas"]["Session"];
export type SessionEvent = components["schemas"]["Event"];
export type Status = components["schemas"]["Status"];
export type AgentStatus = components["schemas"]["AgentStatus"];
export type AccessMode = components["schemas"]["AccessMode"];
export type AuditRecord = components["schemas"]["AuditRecord"];
export type AuditPage = components["schemas"]["AuditPage"];
export type History = components["schemas"]["History"];
export type Message = components["schemas"]["Message"];
export type CreateRequest = components["schemas"]["CreateRequest"];
export type Doctor = components["schemas"]["Doctor"];
export type Deleted = components["schemas"]["Deleted"];
export type InputBody = components["schemas"]["InputBody"];
export type Typed = components["schemas"]["Typed"];
export type Answer = components["schemas"]["Answer"];
export type ApprovalBody = components["schemas"]["ApprovalBody"];
export type Output = components["schemas"]["Output"];
export type Listing = components["schemas"]["Listing"];
export type Inventory = components["schemas"]["Inventory"];
export type CredentialsAnswer = components["schemas"]["CredentialsAnswer"];
export type Health = components["schemas"]["Health"];
export type PushInfo = components["schemas"]["PushInfo"];
export type Subscription = components["schemas"]["Subscription"];
export type Deliveries = components["schemas"]["Deliveries"];
type ErrorBody = components["schemas"]["ErrorBody"];

/** An answer that was not 2xx: its status and the API's own sentence. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  /** The browser is not signed in (no or an expired login cookie). */
  get unauthorized(): boolean {
    return this.status === 401;
  }
}

/** Call the API; the login cookie goes with every request. */
export async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const resp = await request(path, {
    ...init,
    headers: { accept: "application/json", ...(init.body ? { "content-type": "application/json" } : {}), ...init.headers },
  });
  return (await resp.json()) as T;
}

/** A 2xx answer to `path`, or the API's error as an `ApiError`. */
async function request(path: string, init: RequestInit = {}): Promise<Response> {
  let resp: Response;
  try {
    resp = await fetch(path, { ...init, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, `the daemon did not answer (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try {
      message = ((await resp.json()) as ErrorBody).error;
    } catch {
      // not the API's JSON error: keep the status line
    }
    throw new ApiError(resp.status, message);
  }
  return resp;
}

/** Every session (archived ones too), and `seq`: the last event the list
 * reflects, to follow the events after (absent from an older daemon). */
export interface SessionList {
  sessions: Session[];
  seq?: number;
}

/** The address index.html preloads, so the list is on its way while the
 * app's script loads. Fetched here with no header of its own, so that the
 * browser hands over the preloaded answer. */
export const SESSION_LIST = "/api/sessions?archived=true";

export async function listSessions(): Promise<SessionList> {
  const resp = await request(SESSION_LIST);
  const header = resp.headers.get("x-clauderon-event-seq");
  const seq = header === null ? Number.NaN : Number(header);
  const sessions = (await resp.json()) as Session[];
  return Number.isSafeInteger(seq) && seq >= 0 ? { sessions, seq } : { sessions };
}
export const getSession = (id: string) => call<Session>(`/api/sessions/${encodeURIComponent(id)}`);

const session = (id: string) => `/api/sessions/${encodeURIComponent(id)}`;
const post = (body?: unknown): RequestInit => ({ method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });

export const createSession = (req: CreateRequest) => call<Session>("/api/sessions", post(req));
export const getHistory = (id: string, cursor: number) => call<History>(`${session(id)}/history?cursor=${cursor}`);
export const getAudit = (id: string, after: number) =>
  call<AuditPage>(`/api/audit?session=${encodeURIComponent(id)}&after=${after}&limit=500`);
export const getDoctor = () => call<Doctor>("/api/doctor");
export const getPlugins = () => call<Inventory>("/api/plugins");
export const getCredentials = () => call<CredentialsAnswer>("/api/credentials");
export const getHealth = () => call<Health>("/api/health");
export const setAccessMode = (id: string, mode: AccessMode) =>
  call<Session>(`${session(id)}/access-mode`, { method: "PUT", body: JSON.stringify({ mode }) });
/** `stop`, `start`, `archive` or `unarchive`. */
export const transition = (id: string, action: "stop" | "start" | "archive" | "unarchive") =>
  call<Session>(`${session(id)}/${action}`, post());
export const deleteSession = (id: string) => call<Deleted>(session(id), { method: "DELETE" });
/** Type `text` into the session's terminal (and Enter, when `submit`). */
export const sendInput = (id: string, text: string, submit: boolean) =>
  call<Typed>(`${session(id)}/input`, post({ text, submit } satisfies InputBody));
/** Answer the permission prompt the session's agent is waiting on (its own keys, typed). */
export const answerApproval = (id: string, answer: Answer) =>
  call<Typed>(`${session(id)}/approval`, post({ answer } satisfies ApprovalBody));
/** The last `lines` lines the agent's terminal shows. */
export const getOutput = (id: string, lines: number) => call<Output>(`${session(id)}/output?lines=${lines}`);
/** The directories in `path` (under the user's home; the home when empty), hidden ones too when asked. */
export const listDirectories = (path: string, hidden: boolean) =>
  call<Listing>(`/api/directories?path=${encodeURIComponent(path)}&hidden=${hidden}`);
/** What a browser needs to subscribe to Web Push, and who is subscribed. */
export const getPush = () => call<PushInfo>("/api/push");
/** Give the daemon this browser's push subscription. */
export const subscribePush = (sub: Subscription) => call<PushInfo>("/api/push/subscriptions", post(sub));
/** Send a test notification to every subscribed browser. */
export const testPush = () => call<Deliveries>("/api/push/test", post());
