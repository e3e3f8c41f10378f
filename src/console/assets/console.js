// weft console: a hash-routed single-page app over weft's JSON API.
//
// The token lives in sessionStorage (this tab only) and is sent only in the Authorization
// header of fetch() calls to this origin. Everything is built with DOM calls (never
// innerHTML), so data from the API is always text. The event stream is read with fetch()
// rather than EventSource, which cannot send an Authorization header.

const TOKEN_KEY = "weft.token";
const PAGE_SIZE = 25;
const main = document.getElementById("main");
const statusBox = document.getElementById("status");

// ---------- small helpers ----------

/** Builds an element: h("a", {href: "#/x", class: "c"}, "text", child…). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

/** Announces a message; it stays through the next navigation, then goes. */
let statusFresh = false;
function say(message, kind = "info") {
  statusBox.textContent = message;
  statusBox.dataset.kind = kind;
  statusFresh = true;
}

function ageStatus() {
  if (!statusFresh) statusBox.textContent = "";
  statusFresh = false;
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

function pretty(value) {
  if (value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function badge(text, kind) {
  return h("span", { class: `badge badge-${kind || text}` }, text);
}

function enc(part) {
  return encodeURIComponent(part);
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Reads an error message from any of weft's three error shapes. */
function errorMessage(body, status) {
  if (!body) return `HTTP ${status}`;
  if (typeof body.error === "object" && body.error) return body.error.message || `HTTP ${status}`;
  if (typeof body.error === "string") return body.error_description || body.error;
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  return `HTTP ${status}`;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (response.status === 401 && session.who) {
    signOut("The token was refused (401). Sign in again.");
    throw new ApiError(401, "signed out");
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(parsed, response.status));
  return parsed;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ---------- session ----------

const session = { who: null, admin: false };

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.who = null;
  stopLive();
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  if (location.hash !== "#/sign-in") location.hash = "#/sign-in";
  else route();
  if (message) say(message, "error");
}

document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));

/** Learns who the token acts for: the operator, a user, or an integration's own code. */
async function identify() {
  try {
    const user = await api("/v1/user");
    session.who = `user ${user.id}`;
  } catch (error) {
    if (error.status !== 404) throw error;
    // Integration and installation tokens act for code, not for a user.
    session.who = "integration token";
  }
  // Only the operator may read server-wide figures.
  try {
    await api("/v1/stats");
    session.admin = true;
    session.who = "operator";
  } catch (error) {
    if (error.status === 401) throw error;
    session.admin = false;
  }
  document.getElementById("identity").textContent = `Signed in as ${session.who}`;
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
}

function signInView() {
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-help", spellcheck: "false",
  });
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" });
  const form = h("form", { class: "card narrow", id: "sign-in" },
    h("h1", { tabindex: "-1" }, "Sign in"),
    h("label", { for: "token" }, "weft token"),
    input,
    h("p", { id: "token-help", class: "help" },
      "An admin, user or integration token. It stays in this tab only and is sent as an Authorization header."),
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await identify();
      say(`Signed in as ${session.who}.`);
      location.hash = "#/integrations";
    } catch (failure) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = failure.status === 401 || failure.message === "signed out"
        ? "This is not a valid weft token."
        : `Sign-in failed: ${failure.message}`;
      input.focus();
    }
  });
  return form;
}

// ---------- router ----------

let liveAbort = null;
function stopLive() {
  if (liveAbort) liveAbort.abort();
  liveAbort = null;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/integrations";
  const [path, search = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

function go(parts, params = {}) {
  location.hash = `#/${parts.map(enc).join("/")}${query(params)}`;
}

/** Counts navigations, so a slow page that finishes after a newer one is dropped. */
let routeGeneration = 0;

async function route() {
  stopLive();
  ageStatus();
  const mine = ++routeGeneration;
  const current = () => mine === routeGeneration;
  const { parts, params } = parseHash();
  if (!token()) {
    show(signInView());
    return;
  }
  if (!session.who) {
    try {
      await identify();
    } catch (error) {
      if (!current()) return;
      if (error.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        show(signInView());
        say("The stored token was refused (401). Sign in again.", "error");
      } else show(failure(error));
      return;
    }
  }
  if (parts[0] === "sign-in") {
    go(["integrations"]);
    return;
  }
  let view;
  try {
    if (parts[0] === "applications" && parts[1]) view = await applicationView(parts[1], params);
    else if (parts[0] === "applications") view = await applicationsView(params);
    else if (parts[0] === "charts") view = await overallChartsView(params);
    else if (parts[0] === "integrations" && parts[1]) view = await integrationView(parts[1], parts.slice(2), params);
    else view = await integrationsView(params);
  } catch (error) {
    if (error.status === 401 || !current()) return;
    view = failure(error);
  }
  if (!current()) return;
  markNav(parts[0]);
  show(view);
}

function markNav(section) {
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.getAttribute("href") === `#/${section || "integrations"}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Shows a page; a page that streams (the live tail) starts once it is on screen. */
function show(view) {
  main.replaceChildren(view);
  for (const streaming of main.querySelectorAll("[data-streams]")) streaming.dispatchEvent(new Event("shown"));
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function failure(error) {
  const denied = error.status === 403 || error.status === 404;
  return h("section", { class: "card" },
    h("h1", {}, denied ? "Not available" : "Something went wrong"),
    h("p", { class: "error", role: "alert" }, `${error.status ? `${error.status}: ` : ""}${error.message}`));
}

window.addEventListener("hashchange", route);

// ---------- shared pieces ----------

/** A table in a scrolling wrapper; `columns` are [header, (row) => cell]. */
function table(caption, columns, rows, { rowClass } = {}) {
  const body = h("tbody", {}, rows.map((row) =>
    h("tr", { class: rowClass ? rowClass(row) : undefined }, columns.map(([, cell]) => h("td", {}, cell(row))))));
  return h("div", { class: "scroll", role: "region", "aria-label": caption, tabindex: "0" },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map(([name]) => h("th", { scope: "col" }, name)))),
      body));
}

/** "Newer/Older" paging with a cursor trail kept in the URL (`trail`: earlier cursors). */
function pager(list, params, base) {
  const trail = (params.get("trail") || "").split(",").filter(Boolean);
  const current = params.get("page") || "";
  const nav = h("nav", { class: "pager", "aria-label": "Pages" });
  const keep = Object.fromEntries([...params.entries()].filter(([k]) => k !== "page" && k !== "trail"));
  if (current) {
    const previous = trail.slice(0, -1);
    nav.append(h("a", { href: `#/${base}${query({ ...keep, page: trail.at(-1) || "", trail: previous.join(",") })}` }, "← Newer"));
  }
  const count = typeof list.count === "number" ? list.count : undefined;
  nav.append(h("span", {}, count === undefined ? "" : `${count} in all`));
  const next = list.next && (list.next.page || list.next);
  if (next && typeof next === "string") {
    nav.append(h("a", { href: `#/${base}${query({ ...keep, page: next, trail: [...trail, current].join(",") })}`, rel: "next" }, "Older →"));
  }
  return nav;
}

function tabs(name, active) {
  const items = [
    ["installations", "Installations"], ["events", "Events"], ["queue", "Queue"],
    ["charts", "Charts"], ["versions", "Versions"], ["dev", "Dev mode"],
  ];
  return h("nav", { class: "tabs", "aria-label": `${name} sections` },
    items.map(([id, label]) => h("a", {
      href: `#/integrations/${enc(name)}/${id}`, "aria-current": id === active ? "page" : undefined,
    }, label)));
}

function empty(text) {
  return h("p", { class: "empty" }, text);
}

// ---------- integrations ----------

async function integrationsView(params) {
  const search = params.get("search") || "";
  const list = await api(`/v1/user/integrations${query({ search, limit: PAGE_SIZE, page: params.get("page") })}`);
  const box = h("input", { id: "search", type: "search", name: "search", value: search });
  const form = h("form", { class: "filters", role: "search" },
    h("label", { for: "search" }, "Search integrations"), box, h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(["integrations"], { search: box.value.trim() });
  });
  return h("section", {},
    h("h1", {}, "Integrations"),
    form,
    list.items.length === 0 ? empty("No integrations this token can see.") : table("Integrations", [
      ["Name", (i) => h("a", { href: `#/integrations/${enc(i.name)}/installations` }, i.name)],
      ["Title", (i) => i.title || ""],
      ["Organization", (i) => i.organization || (i.owner && i.owner.id) || ""],
      ["Version", (i) => i.version],
      ["Visibility", (i) => i.visibility],
      ["Updated", (i) => when(i.updatedAt)],
    ], list.items),
    pager(list, params, "integrations"));
}

async function integrationView(name, rest, params) {
  const section = rest[0] || "installations";
  const integration = await api(`/v1/integrations/${enc(name)}`);
  const header = h("div", { class: "title" },
    h("h1", {}, integration.title || name),
    h("p", { class: "sub" }, `${name} · version ${integration.version} · ${integration.organization || ""}`));
  let body;
  const base = `integrations/${enc(name)}/${section}`;
  if (section === "events" && rest[1]) body = await eventView(name, rest[1]);
  else if (section === "events") body = await eventsView(name, params, base);
  else if (section === "queue") body = await queueView(name, params);
  else if (section === "charts") body = await chartsView(`/v1/integrations/${enc(name)}/stats`, params, (w) => `#/${base}?window=${w}`);
  else if (section === "versions") body = await versionsView(name);
  else if (section === "dev") body = await devView(name, integration);
  else body = await installationsView(name, params, base);
  return h("section", {}, header, tabs(name, section), body);
}

async function installationsView(name, params, base) {
  const list = await api(`/v1/integrations/${enc(name)}/installations${query({ limit: PAGE_SIZE, page: params.get("page") })}`);
  const spaces = (i) => (Array.isArray(i.spaces) ? i.spaces.length : 0);
  return h("div", {},
    h("h2", {}, "Installations"),
    list.items.length === 0 ? empty("No installations.") : table("Installations", [
      ["Id", (i) => h("code", {}, i.id)],
      ["Organization", (i) => (i.target && i.target.organization) || ""],
      ["Spaces", (i) => `${i.space_selection || ""} ${spaces(i) ? `(${spaces(i)})` : ""}`.trim()],
      ["Sites", (i) => i.site_selection || ""],
      ["Status", (i) => badge(i.status, i.status)],
      ["Configuration", (i) => h("pre", { class: "json small" }, pretty(i.configuration || {}))],
      ["Events", (i) => h("a", { href: `#/integrations/${enc(name)}/events?installation=${enc(i.id)}` }, "Events")],
    ], list.items),
    pager(list, params, base));
}

async function versionsView(name) {
  const list = await api(`/v1/integrations/${enc(name)}/versions?limit=50`);
  return h("div", {},
    h("h2", {}, "Versions"),
    table("Versions", [
      ["Version", (v) => (v.current ? h("strong", {}, `${v.version} (current)`) : v.version)],
      ["Published", (v) => when(v.publishedAt)],
      ["Module size", (v) => `${(v.size / 1024).toFixed(1)} KiB`],
      ["ABI", (v) => v.abi ?? "—"],
      // Not taken: the module runs as published, and publish said why.
      ["Snapshot", (v) => (v.snapshot === undefined ? "—" : v.snapshot ? "yes" : `no: ${v.snapshotReason || "not taken"}`)],
      ["SHA-256", (v) => h("code", { class: "hash" }, v.sha256)],
    ], list.items));
}

async function devView(name) {
  let dev;
  try {
    dev = await api(`/v1/integrations/${enc(name)}/dev`);
  } catch (error) {
    if (error.status === 403) {
      return h("div", {}, h("h2", {}, "Dev mode"), empty("Only admins of the integration's organization see dev mode."));
    }
    throw error;
  }
  const url = h("input", { id: "tunnel-url", type: "url", name: "tunnelUrl", value: dev.tunnelUrl || "", placeholder: "https://…" });
  const toggle = h("button", {
    type: "button", role: "switch", id: "dev-switch", class: "switch", "aria-checked": String(Boolean(dev.enabled)),
  }, dev.enabled ? "On" : "Off");
  toggle.addEventListener("click", async () => {
    try {
      if (dev.enabled) await api(`/v1/integrations/${enc(name)}/dev`, { method: "DELETE" });
      else {
        if (!url.value) {
          say("Enter the tunnel URL first.", "error");
          url.focus();
          return;
        }
        await api(`/v1/integrations/${enc(name)}/dev`, { method: "PUT", body: { tunnelUrl: url.value } });
      }
      say(`Dev mode turned ${dev.enabled ? "off" : "on"}.`);
      route();
    } catch (error) {
      say(error.message, "error");
    }
  });
  return h("div", {},
    h("h2", {}, "Dev mode"),
    h("div", { class: "row" }, h("span", { id: "dev-label" }, "Dev mode"), toggle),
    h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", { id: "dev-state" }, dev.enabled ? "on" : "off"),
      h("dt", {}, "Tunnel"), h("dd", {}, dev.tunnel || "—"),
      h("dt", {}, "Tunnel connected"), h("dd", {}, dev.connected ? "yes" : "no"),
      h("dt", {}, "All organizations"), h("dd", {}, dev.all ? "yes" : "no")),
    h("label", { for: "tunnel-url" }, "Tunnel URL (used when turning dev mode on)"), url);
}

// ---------- events ----------

const EVENT_STATUSES = ["", "success", "failed", "dead"];

/** An event's fields under either list shape (weft's, or GitBook's IntegrationEvent). */
function eventFields(raw) {
  const e = raw && raw.event && !raw.id ? raw.event : raw;
  const failed = e.status !== "success";
  const error = e.error || (e.outcome && e.outcome.error) || null;
  return {
    id: e.id,
    type: e.type || (e.payload && e.payload.type) || "",
    // GitBook's statuses are success and failed; a dead-lettered one says so beside it.
    status: e.deadLetter ? "dead" : e.status,
    failed,
    kind: (error && (error.kind || error.code)) || e.errorKind || "",
    message: (error && error.message) || "",
    installation: e.installation ?? e.installationId ?? "",
    createdAt: e.createdAt,
    duration: e.duration ?? e.durationMs,
    response: e.response && e.response.status,
    payload: e.payload ?? e.body ?? e.event,
    logs: e.logs ?? (raw.trace && raw.trace.logs) ?? (e.trace && e.trace.logs) ?? [],
  };
}

function eventRow(name, raw) {
  const e = eventFields(raw);
  return h("tr", { class: e.failed ? "failed" : undefined, "data-event": e.id },
    h("td", {}, h("a", { href: `#/integrations/${enc(name)}/events/${enc(e.id)}` }, when(e.createdAt))),
    h("td", {}, e.type),
    h("td", {}, badge(e.status, e.status), e.kind ? h("span", { class: "kind" }, ` ${e.kind}`) : ""),
    h("td", {}, e.duration === undefined ? "—" : `${Number(e.duration).toFixed(2)} ms`),
    h("td", {}, e.installation ? h("code", {}, e.installation) : "—"));
}

async function eventsView(name, params, base) {
  const filters = { status: params.get("status") || "", type: params.get("type") || "", installation: params.get("installation") || "" };
  // The time range rides on the list's cursor: event ids start with their creation time
  // (`evt_` + 12 hex digits of ms), so "older than `to`" is the page after `evt_<to>`, and
  // "not before `from`" is where the listing stops.
  const range = { from: params.get("from") || "", to: params.get("to") || "" };
  const fromMs = range.from ? new Date(range.from).getTime() : NaN;
  const toMs = range.to ? new Date(range.to).getTime() : NaN;
  const cursor = params.get("page") || (Number.isNaN(toMs) ? "" : `evt_${toMs.toString(16).padStart(12, "0")}`);
  const list = await api(`/v1/integrations/${enc(name)}/events${query({ ...filters, limit: PAGE_SIZE, page: cursor })}`);
  if (range.from || range.to) {
    const kept = list.items.filter((e) => Number.isNaN(fromMs) || new Date(eventFields(e).createdAt).getTime() >= fromMs);
    if (kept.length < list.items.length) delete list.next;
    list.items = kept;
    delete list.count;
  }
  const status = h("select", { id: "f-status", name: "status" },
    EVENT_STATUSES.map((v) => h("option", { value: v, selected: v === filters.status }, v || "any")));
  const type = h("input", { id: "f-type", name: "type", value: filters.type, placeholder: "fetch, task, …" });
  const installation = h("input", { id: "f-installation", name: "installation", value: filters.installation });
  const from = h("input", { id: "f-from", name: "from", type: "datetime-local", step: "1", value: range.from });
  const to = h("input", { id: "f-to", name: "to", type: "datetime-local", step: "1", value: range.to });
  const form = h("form", { class: "filters", "aria-label": "Filter events" },
    h("div", {}, h("label", { for: "f-status" }, "Status"), status),
    h("div", {}, h("label", { for: "f-type" }, "Type"), type),
    h("div", {}, h("label", { for: "f-installation" }, "Installation"), installation),
    h("div", {}, h("label", { for: "f-from" }, "From"), from),
    h("div", {}, h("label", { for: "f-to" }, "To"), to),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(["integrations", name, "events"], {
      status: status.value, type: type.value.trim(), installation: installation.value.trim(), from: from.value, to: to.value,
    });
  });
  const rows = h("tbody", { id: "event-rows" }, list.items.map((e) => eventRow(name, e)));
  const live = h("input", { type: "checkbox", id: "live", checked: !params.get("page") && !range.to });
  const liveState = h("span", { id: "live-state", class: "help" }, "");
  const start = () => {
    stopLive();
    liveAbort = new AbortController();
    tail(name, filters, liveAbort.signal, rows, liveState);
  };
  live.addEventListener("change", () => (live.checked ? start() : (stopLive(), (liveState.textContent = "paused"))));
  const view = h("div", { "data-streams": true, onshown: () => live.checked && start() },
    h("h2", {}, "Events"),
    form,
    h("div", { class: "row" }, live, h("label", { for: "live" }, "Live tail"), liveState),
    h("div", { class: "scroll", role: "region", "aria-label": "Events", tabindex: "0" },
      h("table", { id: "events" },
        h("caption", { class: "visually-hidden" }, "Events, newest first"),
        h("thead", {}, h("tr", {}, ["Time", "Type", "Status", "Duration", "Installation"].map((c) => h("th", { scope: "col" }, c)))),
        rows)),
    list.items.length === 0 ? empty("No events match.") : "",
    pager(list, params, base));
  return view;
}

/** Reads the server-sent events stream with fetch() and prepends each event that matches. */
async function tail(name, filters, signal, rows, state) {
  const matches = (e) => !filters.type || e.type === filters.type;
  try {
    const response = await fetch(`/v1/integrations/${enc(name)}/events/stream${query({ status: filters.status, installation: filters.installation })}`, {
      headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" },
      credentials: "omit",
      signal,
    });
    if (!response.ok) {
      state.textContent = `live tail unavailable (${response.status})`;
      return;
    }
    state.textContent = "live";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (kind === "event" && data.length) {
          const raw = JSON.parse(data.join("\n"));
          if (matches(eventFields(raw))) {
            rows.prepend(eventRow(name, raw));
            while (rows.children.length > 200) rows.lastChild.remove();
          }
        } else if (kind === "lagged") {
          state.textContent = "live (some events were skipped; reload for all)";
        }
      }
    }
    state.textContent = "stream closed";
  } catch (error) {
    if (error.name !== "AbortError") state.textContent = `live tail stopped: ${error.message}`;
  }
}

async function eventView(name, id) {
  const raw = await api(`/v1/integrations/${enc(name)}/events/${enc(id)}`);
  const e = eventFields(raw);
  const logs = Array.isArray(e.logs) ? e.logs : [];
  return h("div", {},
    h("h2", {}, `Event ${e.id}`),
    h("p", {}, h("a", { href: `#/integrations/${enc(name)}/events` }, "← All events")),
    h("dl", { class: "facts", id: "event-facts" },
      h("dt", {}, "Status"), h("dd", {}, badge(e.status, e.status)),
      h("dt", {}, "Type"), h("dd", {}, e.type),
      h("dt", {}, "Time"), h("dd", {}, when(e.createdAt)),
      h("dt", {}, "Duration"), h("dd", {}, e.duration === undefined ? "—" : `${Number(e.duration).toFixed(3)} ms`),
      h("dt", {}, "Installation"), h("dd", {}, e.installation || "—"),
      h("dt", {}, "Response"), h("dd", {}, e.response ?? "—"),
      e.failed ? [h("dt", {}, "Failure"), h("dd", { class: "error" }, `${e.kind}${e.message ? `: ${e.message}` : ""}`)] : []),
    h("h3", {}, "Payload"),
    h("pre", { class: "json", id: "event-payload", tabindex: "0" }, e.payload === undefined ? "This server does not record payloads." : pretty(e.payload)),
    h("h3", {}, "Logs"),
    logs.length === 0 ? empty("No log lines.") : h("ol", { class: "logs", id: "event-logs" },
      logs.map((line) => h("li", { class: `log-${line.level || "info"}` },
        h("span", { class: "log-time" }, line.timestamp ? when(line.timestamp) : ""), " ",
        h("span", { class: "log-level" }, line.level || ""), " ",
        h("span", { class: "log-message" }, line.message ?? pretty(line))))));
}

// ---------- queue ----------

async function queueView(name, params) {
  const status = params.get("status") || "dead";
  const list = await api(`/v1/integrations/${enc(name)}/tasks${query({ status, limit: PAGE_SIZE, page: params.get("page") })}`);
  const nav = h("nav", { class: "tabs small", "aria-label": "Task states" },
    ["queued", "running", "dead"].map((s) => h("a", {
      href: `#/integrations/${enc(name)}/queue?status=${s}`, "aria-current": s === status ? "page" : undefined,
    }, s)));
  const runAgain = (task) => {
    const button = h("button", { type: "button", class: "run-again", "data-task": task.id }, "Run again");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const answer = await api(`/v1/integrations/${enc(name)}/tasks/${enc(task.id)}/retry`, { method: "POST" });
        say(`Task ${task.id} queued again (${answer.status}).`);
        button.closest("tr").remove();
      } catch (error) {
        button.disabled = false;
        say(error.message, "error");
      }
    });
    return button;
  };
  const columns = [
    ["Id", (t) => h("code", {}, t.id)],
    ["Installation", (t) => t.installation || "—"],
    ["Due", (t) => when(t.dueAt)],
    ["Attempts", (t) => t.attempts],
    ["Last error", (t) => (t.lastError ? h("span", { class: "error" }, t.lastError) : "—")],
    ["Task", (t) => h("pre", { class: "json small" }, pretty(t.event && t.event.task !== undefined ? t.event.task : t.event))],
  ];
  if (status === "dead") columns.push(["", runAgain]);
  return h("div", {},
    h("h2", {}, "Queue"),
    nav,
    list.items.length === 0 ? empty(`No ${status} tasks.`) : table(`${status} tasks`, columns, list.items),
    h("p", { class: "help" }, "Oldest due first."),
    pager({ next: list.next }, params, `integrations/${enc(name)}/queue`));
}

// ---------- charts ----------

const COLORS = { success: "#2e7d32", failed: "#b26a00", dead: "#b3261e", queued: "#1f4e79", running: "#6a1b9a" };

function legend(keys) {
  return h("ul", { class: "legend" }, keys.map((k) => h("li", {}, h("span", { class: `swatch swatch-${k}` }), k)));
}

function figure(title, summary, svg, extra) {
  return h("figure", { class: "chart" }, h("figcaption", {}, title), svg, extra || "", h("p", { class: "visually-hidden" }, summary));
}

function stackedBars(buckets, keys, label) {
  const width = 600, height = 160, pad = 24;
  const max = Math.max(1, ...buckets.map((b) => keys.reduce((sum, k) => sum + (b[k] || 0), 0)));
  const barWidth = (width - pad) / Math.max(1, buckets.length);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height + 16}`, role: "img", "aria-label": label, class: "svg" });
  svg.append(s("line", { x1: pad, y1: height, x2: width, y2: height, class: "axis" }));
  svg.append(s("text", { x: 0, y: 10, class: "tick" }, String(max)));
  svg.append(s("text", { x: 0, y: height, class: "tick" }, "0"));
  buckets.forEach((bucket, i) => {
    let y = height;
    for (const key of keys) {
      const value = bucket[key] || 0;
      if (!value) continue;
      const barHeight = (value / max) * (height - 8);
      y -= barHeight;
      svg.append(s("rect", { x: pad + i * barWidth, y, width: Math.max(1, barWidth - 1), height: barHeight, fill: COLORS[key] },
        s("title", {}, `${when(bucket.at)}: ${value} ${key}`)));
    }
  });
  return svg;
}

function lines(samples, keys, label) {
  const width = 600, height = 160, pad = 24;
  const max = Math.max(1, ...samples.flatMap((p) => keys.map((k) => p[k] || 0)));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height + 16}`, role: "img", "aria-label": label, class: "svg" });
  svg.append(s("line", { x1: pad, y1: height, x2: width, y2: height, class: "axis" }));
  svg.append(s("text", { x: 0, y: 10, class: "tick" }, String(max)));
  svg.append(s("text", { x: 0, y: height, class: "tick" }, "0"));
  const step = (width - pad) / Math.max(1, samples.length - 1);
  for (const key of keys) {
    const points = samples.map((p, i) => `${pad + i * step},${height - ((p[key] || 0) / max) * (height - 8)}`).join(" ");
    svg.append(s("polyline", { points, fill: "none", stroke: COLORS[key], "stroke-width": 2 }));
  }
  return svg;
}

function hbars(items, label, format) {
  const width = 600, row = 26;
  const max = Math.max(1e-9, ...items.map((i) => i.value));
  const svg = s("svg", { viewBox: `0 0 ${width} ${Math.max(row, items.length * row)}`, role: "img", "aria-label": label, class: "svg" });
  items.forEach((item, i) => {
    const barWidth = (item.value / max) * (width - 260);
    svg.append(s("text", { x: 0, y: i * row + 17, class: "label" }, item.name));
    svg.append(s("rect", { x: 150, y: i * row + 4, width: Math.max(1, barWidth), height: row - 8, fill: item.color || COLORS.dead }));
    svg.append(s("text", { x: 156 + barWidth, y: i * row + 17, class: "label" }, format(item.value)));
  });
  return svg;
}

/** `windowHref(w)`: the page's address with window `w`. */
async function chartsView(path, params, windowHref) {
  const span = params.get("window") === "day" ? "day" : "hour";
  const stats = await api(`${path}?window=${span}`);
  const buckets = stats.events.buckets;
  const unit = stats.bucketSeconds === 60 ? "minute" : `${stats.bucketSeconds / 60} minutes`;
  const switcher = h("nav", { class: "tabs small", "aria-label": "Window" },
    ["hour", "day"].map((w) => h("a", { href: windowHref(w), "aria-current": w === span ? "page" : undefined }, `Last ${w}`)));
  const d = stats.duration;
  const samples = [...stats.queue.samples, { ...stats.queue.now, at: stats.to }];
  return h("div", { class: "charts", id: "charts" },
    h("h2", {}, "Charts"),
    switcher,
    h("p", { class: "sub", id: "charts-summary" },
      `${stats.events.total} events, ${(stats.events.failureRate * 100).toFixed(1)} % failed; queue now: ` +
      `${stats.queue.now.queued} queued, ${stats.queue.now.running} running, ${stats.queue.now.dead} dead.`),
    figure(`Events per ${unit} by status`, `${stats.events.total} events`,
      stackedBars(buckets, ["success", "failed", "dead"], `Events per ${unit} by status`), legend(["success", "failed", "dead"])),
    figure("Duration percentiles", d ? `p50 ${d.p50} ms, p95 ${d.p95} ms, p99 ${d.p99} ms` : "no events",
      d ? hbars([{ name: "p50", value: d.p50, color: COLORS.queued }, { name: "p95", value: d.p95, color: COLORS.queued }, { name: "p99", value: d.p99, color: COLORS.queued }],
        "Duration percentiles in milliseconds", (v) => `${v.toFixed(2)} ms`) : empty("No events in this window.")),
    figure("Failure rate by kind", `${stats.failures.length} kinds`,
      stats.failures.length ? hbars(stats.failures.map((f) => ({ name: f.kind, value: f.rate })), "Failure rate by kind",
        (v) => `${(v * 100).toFixed(1)} %`) : empty("No failures in this window.")),
    figure("Queue depth (sampled each minute)", `now ${stats.queue.now.queued} queued`,
      lines(samples, ["queued", "running", "dead"], "Queue depth over time"), legend(["queued", "running", "dead"])));
}

async function overallChartsView(params) {
  if (session.admin) return h("section", {}, h("h1", {}, "Server charts"), await chartsView("/v1/stats", params, (w) => `#/charts?window=${w}`));
  const list = await api("/v1/user/integrations?limit=1000");
  const orgs = [...new Set(list.items.map((i) => i.organization).filter(Boolean))].sort();
  const org = params.get("org") || orgs[0];
  if (!org) return h("section", {}, h("h1", {}, "Charts"), empty("No organization to chart."));
  const picker = h("nav", { class: "tabs small", "aria-label": "Organization" },
    orgs.map((o) => h("a", { href: `#/charts?org=${enc(o)}`, "aria-current": o === org ? "page" : undefined }, o)));
  const charts = await chartsView(`/v1/orgs/${enc(org)}/stats`, params, (w) => `#/charts?org=${enc(org)}&window=${w}`);
  return h("section", {}, h("h1", {}, `Charts of ${org}`), picker, charts);
}

// ---------- applications ----------

async function applicationsView(params) {
  const skip = Number(params.get("skip") || 0);
  const list = await api(`/api/http/applications/paged${query({ $top: PAGE_SIZE, $skip: skip || "" })}`);
  const items = list.data || [];
  const nav = h("nav", { class: "pager", "aria-label": "Pages" });
  if (skip > 0) nav.append(h("a", { href: `#/applications?skip=${Math.max(0, skip - PAGE_SIZE)}` }, "← Previous"));
  nav.append(h("span", {}, `${list.totalCount ?? items.length} in all`));
  if (skip + items.length < (list.totalCount ?? 0)) nav.append(h("a", { href: `#/applications?skip=${skip + PAGE_SIZE}` }, "Next →"));
  return h("section", {},
    h("h1", {}, "Applications"),
    items.length === 0 ? empty("No applications this token can see.") : table("Applications", [
      ["Name", (a) => h("a", { href: `#/applications/${enc(a.id)}` }, a.name)],
      ["Organization", (a) => a.organization || ""],
      ["Status", (a) => badge(a.status || "active", a.status)],
      ["Client id", (a) => h("code", {}, a.clientId || "")],
    ], items),
    nav);
}

async function applicationView(id, params) {
  const app = await api(`/api/http/applications/${enc(id)}`);
  const webhooks = await api(`/api/http/applications/${enc(id)}/webhooks`);
  const skip = Number(params.get("skip") || 0);
  const deliveries = await api(`/api/http/applications/${enc(id)}/deliveries${query({ $top: PAGE_SIZE, $skip: skip || "" })}`);
  const hooks = (webhooks.data || webhooks || []).map((w) => ({ ...(w.webhook || w), subscriptions: w.subscriptions || [] }));
  const redeliver = (delivery) => {
    const button = h("button", { type: "button", class: "redeliver" }, "Redeliver");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api(`/api/http/applications/${enc(id)}/deliveries/${enc(delivery.id)}/redeliver`, { method: "POST" });
        say(`Delivery ${delivery.id} queued again.`);
        route();
      } catch (error) {
        button.disabled = false;
        say(error.message, "error");
      }
    });
    return button;
  };
  const items = deliveries.data || [];
  const nav = h("nav", { class: "pager", "aria-label": "Delivery pages" });
  if (skip > 0) nav.append(h("a", { href: `#/applications/${enc(id)}?skip=${Math.max(0, skip - PAGE_SIZE)}` }, "← Newer"));
  nav.append(h("span", {}, `${deliveries.totalCount ?? items.length} in all`));
  if (skip + items.length < (deliveries.totalCount ?? 0)) nav.append(h("a", { href: `#/applications/${enc(id)}?skip=${skip + PAGE_SIZE}` }, "Older →"));
  return h("section", {},
    h("h1", {}, app.name || id),
    h("p", { class: "sub" }, `${app.organization || ""} · ${app.status || ""}`),
    h("h2", {}, "Webhooks"),
    hooks.length === 0 ? empty("No webhooks.") : table("Webhooks", [
      ["Name", (w) => w.name],
      ["URL", (w) => h("code", {}, w.url || (w.endpoint && w.endpoint.url) || "")],
      ["Enabled", (w) => (w.archived ? "archived" : w.enabled === false ? "no" : "yes")],
      ["Subscriptions", (w) => w.subscriptions.map((sub) => sub.name).join(", ")],
    ], hooks),
    h("h2", {}, "Deliveries"),
    items.length === 0 ? empty("No deliveries.") : table("Deliveries", [
      ["Created", (d) => when(d.createdAt)],
      ["Kind", (d) => d.kind],
      ["Status", (d) => badge(d.status, d.status === "succeeded" ? "success" : d.status === "pending" ? "queued" : "dead")],
      ["Attempts", (d) => `${d.attempts}/${d.maxAttempts}`],
      ["Last code", (d) => d.lastStatusCode ?? "—"],
      ["Next retry", (d) => when(d.nextAttemptAt)],
      ["Last error", (d) => d.lastError || "—"],
      ["", (d) => (d.status === "pending" ? "" : redeliver(d))],
    ], items, { rowClass: (d) => (d.status === "failed" || d.status === "dead" ? "failed" : undefined) }),
    nav);
}

route();
