// What this token may do, from GET /whoami (scopes `read:<glob>`, `write:<glob>`, `admin:<glob>`).
// The one place the console decides what needs write: a hub without /whoami (or a failed call)
// is taken as one whose tokens may do everything, as before scopes existed.
import { getJson } from "./http.js";

let scopes = null; // null: unknown -> allowed

export async function loadWhoami(ctx) {
  try {
    const { body } = await getJson(ctx, "whoami");
    scopes = Array.isArray(body && body.scopes) ? body.scopes : null;
    return body;
  } catch (error) {
    scopes = null;
    return null;
  }
}

function globMatches(glob, topic) {
  // only `*` is special
  const pattern = glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${pattern}$`).test(topic);
}

// Whether the token may write to `topic` (send events, create streams): write:<glob> or admin:<glob>.
export function mayWrite(topic) {
  if (scopes === null) return true;
  return scopes.some((scope) => {
    const at = scope.indexOf(":");
    const action = scope.slice(0, at);
    return (action === "write" || action === "admin") && globMatches(scope.slice(at + 1), topic);
  });
}
