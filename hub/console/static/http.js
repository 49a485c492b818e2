// HTTP for the console's views: URLs relative to the page (so the console works under a root path),
// the token as a Bearer header, a page of a listing with its X-Next-Cursor.

export class HttpError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

// Where the hub is, as this script was loaded from it (…/console/http.js): behind a proxy that serves
// the hub under a prefix (--root-path), the prefix is part of it.
const BASE = new URL("..", import.meta.url);

// "topics/cars/streams" -> the absolute URL of that hub path.
export function pageUrl(path) {
  return new URL(path.replace(/^\/+/, ""), BASE).toString();
}

export const enc = encodeURIComponent;

export function streamPath(topic, stream) {
  return `topics/${enc(topic)}/streams/${enc(stream)}`;
}

// GET a JSON body; {body, next} where next is the X-Next-Cursor (null on the last page).
// ctx: {token(), refused()}; a 401 means the token is gone: the console asks for one again.
export async function getJson(ctx, path, params = {}) {
  const url = new URL(pageUrl(path));
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
  }
  const token = ctx.token();
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401) {
    if (token === ctx.token()) ctx.refused(); // not a call made with a token since forgotten
    throw new HttpError("the hub refused this token", 401);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new HttpError((body && body.error) || `HTTP ${response.status}`, response.status);
  return { body, next: response.headers.get("X-Next-Cursor") };
}
