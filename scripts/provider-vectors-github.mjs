// GitHub's signature made by its own published library (@octokit/webhooks-methods), added to
// shared/src/incoming/auth/provider_vectors.json (see scripts/provider-vectors.py).
// Regenerate: npm install @octokit/webhooks-methods && node scripts/provider-vectors-github.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { sign, verify } from "@octokit/webhooks-methods";

// The repository root is this script's parent directory.
const root = new URL("..", new URL(".", import.meta.url));
const out = new URL("shared/src/incoming/auth/provider_vectors.json", root);
const secret = "github_provider_vector_secret_01";
const body = '{"action":"opened","number":42}';
const header = await sign(secret, body);
if (!(await verify(secret, body, header))) throw new Error("octokit does not verify its own signature");
let version = "?";
for (let dir = new URL(".", import.meta.resolve("@octokit/webhooks-methods")); dir.pathname !== "/"; dir = new URL("..", dir)) {
  try { version = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")).version; if (version) break; } catch {}
}
const vectors = JSON.parse(readFileSync(out, "utf8"));
vectors.github = { library: `@octokit/webhooks-methods ${version}`, secret, body, header };
writeFileSync(out, JSON.stringify(vectors, null, 2) + "\n");
console.log(`wrote ${out.pathname}`);
