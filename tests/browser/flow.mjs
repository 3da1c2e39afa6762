// The whole story in a real browser (Debian's Chromium through playwright-core):
//   1. an admin signs in, registers a confidential client and copies its secret from the page;
//   2. a user authorizes it (signs in, unchecks one scope, allows) while this script plays the
//      client: PKCE, reading the code off the redirect, exchanging it with fetch;
//   3. the user opens Connected apps, sees exactly the granted scopes, removes access;
//   4. the client's refresh token is then invalid_grant, and its access token is inactive at
//      introspection and refused (401) by GET /account.
// Started by tests/api/browser.rs, which runs the server and passes everything in the
// environment. Screenshots go to SCREENSHOT_DIR. Exits non-zero on the first failed check.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("SCOPEGATE_URL");
const ADMIN = { email: env("ADMIN_EMAIL"), password: env("ADMIN_PASSWORD") };
const USER = { email: env("USER_EMAIL"), password: env("USER_PASSWORD") };
const SHOTS = env("SCREENSHOT_DIR");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(SHOTS, { recursive: true });

const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const profiles = [];
const contexts = [];

/** A browser of its own (fresh profile directory) for one person. */
async function person(viewport = { width: 1280, height: 900 }) {
  const dir = mkdtempSync(join(tmpdir(), "scopegate-chromium-"));
  profiles.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport,
    baseURL: BASE,
    permissions: ["clipboard-read", "clipboard-write"],
  });
  contexts.push(context);
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => console.error(`page error on ${page.url()}: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && console.error(`console: ${m.text()}`));
  return { context, page };
}

const shot = (page, name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const step = (what) => console.log(`• ${what}`);

/** A loopback port that nothing listens on once this returns. */
function unusedPort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const b64url = (buf) => buf.toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const basic = (id, secret) =>
  "Basic " + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64");

async function signIn(page, who, { withKeyboard = false } = {}) {
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  if (withKeyboard) {
    await page.getByLabel("Password").press("Enter");
  } else {
    await page.getByRole("button", { name: "Sign in" }).click();
  }
}

async function main() {
  const port = await unusedPort();
  const redirectUri = `http://127.0.0.1:${port}/callback`;

  // --- 1. The admin registers a client -------------------------------------------------------
  const admin = await person();
  let page = admin.page;
  step("admin opens /admin and is sent to the login page");
  await page.goto("/admin");
  assert.equal(new URL(page.url()).pathname, "/login");
  assert.equal(new URL(page.url()).searchParams.get("return_to"), "/admin");
  await shot(page, "login");
  await signIn(page, ADMIN);
  await page.waitForURL((u) => u.pathname === "/admin");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await shot(page, "admin-dashboard");

  step("admin registers a confidential client");
  await page.getByRole("link", { name: "Clients", exact: true }).click();
  await page.getByRole("link", { name: "New client" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Browser Mail");
  await page.getByLabel(/Redirect URIs/).fill(redirectUri);
  await page.getByLabel(/Confidential/).check();
  await page.getByLabel("Require PKCE").check();
  // Allow only what the app needs: the catalogue is all checked by default.
  const wanted = new Set(["openid", "email", "email.read_only", "email.send", "offline_access"]);
  for (const box of await page.locator('input[name="scope"]').all()) {
    if (wanted.has(await box.getAttribute("value"))) await box.check();
    else await box.uncheck();
  }
  await shot(page, "admin-client-new");
  await page.getByRole("button", { name: "Create client" }).click();
  await page.getByText("This is the only time the secret is shown").waitFor();

  step("admin copies the secret with the Copy button");
  const clientId = (await page.locator("#client-id").textContent()).trim();
  const shownSecret = await page.locator("#client-secret").inputValue();
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied to the clipboard.").waitFor();
  const clientSecret = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clientSecret, shownSecret, "the clipboard holds the secret shown");
  assert.match(clientId, /^app_/);
  assert.match(clientSecret, /^sgs_/);
  await shot(page, "admin-client-secret");
  await page.getByRole("link", { name: "Client settings" }).click();
  assert.equal(await page.content().then((h) => h.includes(clientSecret)), false, "shown once only");
  await shot(page, "admin-client-edit");
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await shot(page, "admin-users");

  // --- 2. The user authorizes it; this script is the client ----------------------------------
  const verifier = b64url(randomBytes(48));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const state = b64url(randomBytes(12));
  const authorize = new URL("/oauth/authorize", BASE);
  authorize.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: "openid email email.read_only email.send",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();

  const user = await person();
  page = user.page;
  let callback;
  // Nothing listens on the redirect URI: the "client" reads the request instead.
  await page.route(`http://127.0.0.1:${port}/**`, (route) => {
    callback = new URL(route.request().url());
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>Client</title><p>Signed in.</p>" });
  });
  step("user starts the authorization and signs in with the keyboard");
  await page.goto(authorize.toString());
  assert.equal(new URL(page.url()).pathname, "/login");
  await signIn(page, USER, { withKeyboard: true });
  await page.getByRole("button", { name: "Allow" }).waitFor();
  step("user unchecks email.send and allows");
  const offered = await page.locator('input[name="scope"]').evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual(new Set(offered), new Set(["openid", "email", "email.read_only", "email.send"]));
  await page.locator('input[name="scope"][value="email.send"]').uncheck();
  await shot(page, "consent");
  await page.getByRole("button", { name: "Allow" }).click();
  await page.waitForURL((u) => u.port === String(port));
  assert.ok(callback, "the browser was sent to the redirect URI");
  assert.equal(callback.searchParams.get("state"), state);
  assert.equal(callback.searchParams.get("iss"), BASE);
  const code = callback.searchParams.get("code");
  assert.match(code ?? "", /^sgc_/);

  step("the client exchanges the code");
  const auth = basic(clientId, clientSecret);
  const form = (fields) => ({
    method: "POST",
    headers: { Authorization: auth, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
  let res = await fetch(`${BASE}/oauth/token`, form({
    grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier,
  }));
  const tokens = await res.json();
  assert.equal(res.status, 200, JSON.stringify(tokens));
  const granted = new Set(tokens.scope.split(" "));
  assert.deepEqual(granted, new Set(["openid", "email", "email.read_only"]), "email.send was unchecked");
  assert.ok(tokens.refresh_token && tokens.access_token);
  res = await fetch(`${BASE}/account`, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(res.status, 200, "the access token works before removal");

  // --- 3. Connected apps ---------------------------------------------------------------------
  step("user opens Connected apps and sees exactly the granted scopes");
  await page.goto("/account");
  const app = page.locator(`li.app[data-client-id="${clientId}"]`);
  await app.waitFor();
  assert.equal(await app.locator("h3").textContent(), "Browser Mail");
  const listed = await app.locator("li[data-scope]").evaluateAll((els) => els.map((e) => e.dataset.scope));
  assert.deepEqual(new Set(listed), granted);
  assert.equal(listed.length, granted.size);
  await app.getByText("Read your messages").waitFor();
  await shot(page, "account");
  const phone = await user.context.newPage();
  await phone.setViewportSize({ width: 375, height: 740 });
  await phone.goto("/account");
  await shot(phone, "account-phone");
  await phone.close();

  step("user removes access");
  await app.getByRole("button", { name: "Remove access for Browser Mail" }).click();
  await page.getByText("Access removed").waitFor();
  assert.equal(await page.locator(`li.app[data-client-id="${clientId}"]`).count(), 0);
  await shot(page, "account-after-remove");

  // --- 4. The client's tokens are dead -------------------------------------------------------
  step("the refresh token is invalid_grant");
  res = await fetch(`${BASE}/oauth/token`, form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }));
  const refused = await res.json();
  assert.equal(res.status, 400);
  assert.equal(refused.error, "invalid_grant");
  step("the access token is inactive at introspection and refused by the API");
  res = await fetch(`${BASE}/oauth/introspect`, form({ token: tokens.access_token }));
  assert.deepEqual(await res.json(), { active: false });
  res = await fetch(`${BASE}/account`, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(res.status, 401);

  // --- The admin sees it all in the audit log -----------------------------------------------
  step("admin finds the removal in the audit log");
  page = admin.page;
  await page.goto("/admin/audit");
  await page.getByLabel(/^Action/).fill("consent");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByRole("cell", { name: "consent.revoked" }).waitFor();
  await page.getByRole("cell", { name: "consent.granted" }).waitFor();
  await shot(page, "admin-audit");
  await page.goto("/admin/grants?status=all");
  await shot(page, "admin-grants");
  await page.goto("/admin/keys");
  await shot(page, "admin-keys");
  const adminPhone = await admin.context.newPage();
  await adminPhone.setViewportSize({ width: 375, height: 740 });
  await adminPhone.goto("/admin/clients");
  await shot(adminPhone, "admin-clients-phone");

  console.log("browser flow passed");
}

try {
  await main();
} catch (e) {
  console.error(e);
  process.exitCode = 1;
  let n = 0;
  for (const context of contexts) {
    for (const p of context.pages()) {
      console.error(`open page: ${p.url()}`);
      await p.screenshot({ path: join(SHOTS, `failure-${n++}.png`), fullPage: true }).catch(() => {});
    }
  }
} finally {
  for (const context of contexts) await context.close().catch(() => {});
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
}
