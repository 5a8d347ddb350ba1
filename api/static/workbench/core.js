// closeloop workbench: what every page shares. The words come in the boot JSON (the
// catalogue); reads and writes go to the API's own /v1 routes with the user's bearer token.
"use strict";

export const boot = JSON.parse(document.getElementById("boot").textContent);
export const S = boot.strings;
const T = boot.terms;
// The same storage as the dashboard: one token per browser and origin, for both pages.
const TOKEN_KEY = "closeloop.dashboard.token";
// The service's clock may differ from the browser's (a demo or drill clock): time left is
// measured on the service's clock.
const clockSkew = Date.parse(boot.now) - Date.now();

export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
export const term = (table, key) => (key !== null && key !== undefined && T[table] && T[table][key]) || key || "—";
export const deptName = (code) => (code && boot.departments[code]) || code || "—";
const leaves = {};
for (const top of boot.categories) for (const leaf of top.children) leaves[leaf.code] = { ...leaf, top };
export const categories = leaves;
export const catName = (code) => (code && leaves[code] ? leaves[code].top.name + " / " + leaves[code].name : code || "—");

// Place names in the page's language, from GET /v1/places (read once, at sign-in).
export const places = { tree: [], names: {} };

async function loadPlaces() {
  const answer = await api("/v1/places").catch(() => ({ items: [] }));
  places.tree = answer.items;
  const walk = (nodes) => {
    for (const node of nodes) {
      places.names[node.code] = node.name;
      walk(node.children || []);
    }
  };
  walk(places.tree);
}

export function placeName(location) {
  if (!location) return "—";
  const codes = [location.district, location.street, location.community, location.grid];
  const parts = codes.filter(Boolean).map((code) => places.names[code] || code);
  if (location.address) parts.push(location.address);
  return parts.join(" · ") || "—";
}

export function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(boot.lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
}

export function serviceNow() {
  return Date.now() + clockSkew;
}

function span(ms) {
  const units = T.time_unit;
  const sep = boot.lang === "en" ? " " : "";
  let minutes = Math.max(1, Math.round(Math.abs(ms) / 60000));
  const days = Math.floor(minutes / 1440);
  minutes -= days * 1440;
  const hours = Math.floor(minutes / 60);
  minutes -= hours * 60;
  const parts = [];
  if (days) parts.push(days + sep + units.days);
  if (hours) parts.push(hours + sep + units.hours);
  if (minutes && !days) parts.push(minutes + sep + units.minutes);
  return parts.join(sep);
}

// "剩余 2天3小时" or "超时 5小时" and whether it is overdue.
export function timeLeft(iso) {
  if (!iso) return { text: "—", late: false };
  const ms = Date.parse(iso) - serviceNow();
  return ms < 0 ? { text: S.late.replace("{span}", span(ms)), late: true } : { text: S.left.replace("{span}", span(ms)), late: false };
}

export function say(text) {
  $("#message").textContent = text || "";
}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || String(status));
    this.status = status;
    this.problem = problem;
  }
}

function url(path, params) {
  const u = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") u.searchParams.set(k, v);
  }
  u.searchParams.set("lang", boot.lang === "en" ? "en" : "zh");
  return u;
}

async function call(path, init, params) {
  const headers = Object.assign({ Authorization: "Bearer " + token(), Accept: "application/json" }, init.headers || {});
  const response = await fetch(url(path, params), Object.assign({}, init, { headers, cache: "no-store" }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export function api(path, params) {
  return call(path, { method: "GET" }, params);
}

// A random v4 UUID (crypto.randomUUID needs a secure context; getRandomValues does not).
export function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// A command: POST with an Idempotency-Key kept on the form until it succeeds (a retry after
// a lost answer is harmless), and If-Match when the page knows the version it shows.
export function post(form, path, body, version) {
  form.dataset.key = form.dataset.key || uuid();
  const headers = { "Idempotency-Key": form.dataset.key };
  if (version !== undefined && version !== null) headers["If-Match"] = String(version);
  let payload = body;
  if (!(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  return call(path, { method: "POST", headers, body: payload }).then((answer) => {
    delete form.dataset.key;
    return answer;
  });
}

// Files are read with the bearer token, so they come as blobs, never as plain links.
export async function blobUrl(path) {
  const response = await fetch(url(path), { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, {});
  return URL.createObjectURL(await response.blob());
}

// The problem's words next to the field they are about, the detail next to the action.
export function showProblem(form, error) {
  clearProblems(form);
  const problem = (error && error.problem) || {};
  const detail = problem.detail || (error && error.message) || S.failed;
  const slot = (name) => $$("[data-error-for]", form).find((el) => el.dataset.errorFor === name);
  for (const item of problem.errors || [{ field: problem.field, message: detail }]) {
    if (!item.field) continue;
    const name = String(item.field);
    const target = slot(name) || slot(name.split(".").pop());
    if (target) target.textContent = item.message || detail;
  }
  slot("").textContent = detail;
  form.classList.add("refused");
}

export function clearProblems(form) {
  for (const el of $$("[data-error-for]", form)) el.textContent = "";
  form.classList.remove("refused");
}

export function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
  if (cls) td.className = cls;
  return td;
}

export function link(href, text) {
  const a = document.createElement("a");
  a.href = href + (boot.lang === "en" ? "?lang=en" : "");
  a.textContent = text;
  return a;
}

export function grievanceHref(id) {
  return "/workbench/grievances/" + id;
}

export function deadlineCells(tr, kind, due) {
  tr.appendChild(cell(due ? (kind ? term("deadline_kind", kind) + " " : "") + when(due) : "—"));
  const left = timeLeft(due);
  tr.appendChild(cell(left.text, left.late ? "late" : ""));
  if (left.late) tr.classList.add("late");
}

export function fill(table, items, row) {
  const body = $("tbody", table);
  body.replaceChildren();
  if (!items.length) {
    const tr = document.createElement("tr");
    const td = cell(S.none, "empty");
    td.colSpan = $$("thead th", table).length;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const item of items) body.appendChild(row(item));
}

// The token: typed into the form (or brought once by ?token=, which never replaces a stored
// token without the user saying so), checked against the API, shown as who is signed in.
export async function signIn() {
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    window.location.reload();
  });
  $("#forget").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    window.location.reload();
  });
  const params = new URLSearchParams(window.location.search);
  const offered = params.get("token");
  if (offered !== null) {
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
    if (!token()) localStorage.setItem(TOKEN_KEY, offered);
    else if (offered !== token()) {
      $("#token").value = offered;
      say(S.token_from_link);
      return null;
    }
  }
  if (!token()) {
    say(S.need_token);
    $("#token").focus();
    return null;
  }
  let who;
  try {
    who = await api("/dashboard/data/me");
  } catch (error) {
    say(error.status === 401 ? S.bad_token : S.failed + ": " + error.message);
    return null;
  }
  $("#token").hidden = true;
  $("#token-form button[type=submit]").hidden = true;
  $("label[for=token]").hidden = true;
  $("#who").textContent = S.signed_in_as + ": " + who.name + " (" + term("role", who.role) + (who.department ? " · " + deptName(who.department) : "") + ")";
  for (const el of $$("[data-roles]")) el.hidden = !el.dataset.roles.split(" ").includes(who.role);
  await loadPlaces();
  $("#main").hidden = false;
  return who;
}

// Alt+Q queues, Alt+N new intake (accesskeys in the nav) work everywhere; Ctrl+Enter sends
// the form the focus is in, also from a textarea.
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
    event.preventDefault();
    event.target.form.requestSubmit();
  }
});

// Possible duplicates (GET /v1/grievances/similar or /{id}/similar): each with why, a link
// to it, and, where the API offers one, the one call that merges them.
export function showSimilar(section, answer, merge) {
  const list = $("ul", section);
  list.replaceChildren();
  section.hidden = !answer.items.length;
  for (const item of answer.items) {
    const li = document.createElement("li");
    li.dataset.grievance = item.grievance_id;
    const open = link(grievanceHref(item.grievance_id), item.number || item.grievance_id);
    open.target = "_blank";
    open.rel = "noopener";
    li.appendChild(open);
    const score = Math.round(item.score * 100) + "%";
    li.appendChild(document.createTextNode(" · " + term("status", item.status) + " · " + catName(item.category) + " · " + S.similarity + " " + score + " · " + item.explanation));
    if (merge && item.merge) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = term("action", "merge");
      button.addEventListener("click", () => merge(item.merge, button));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(button);
    }
    list.appendChild(li);
  }
}

export function loaded() {
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}
