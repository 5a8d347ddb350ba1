// closeloop dashboard: reads the API's JSON with the user's bearer token and redraws itself.
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const S = boot.strings;
  const T = boot.terms;
  const TOKEN_KEY = "closeloop.dashboard.token";
  const DEPT_KEY = "closeloop.dashboard.department";
  const REFRESH_MS = 30000;
  const charts = {};
  let who = null;
  let timer = null;

  // ------------------------------------------------------------------ helpers
  const $ = (sel) => document.querySelector(sel);
  const term = (table, key) => (key && T[table] && T[table][key]) || key || "—";
  const deptName = (code) => (code && boot.departments[code]) || code || "—";
  const catName = (code) => (code && boot.categories[code]) || code || "—";
  const place = (code) => (code && boot.places[code]) || code || "";

  // The one formatting of a rate, used by the table and by the tests that compare with the API.
  function pct(rate) {
    return rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1) + "%";
  }

  function when(iso) {
    if (!iso) return "—";
    return new Date(iso).toLocaleString(boot.lang === "en" ? "en-GB" : "zh-CN", {
      timeZone: boot.timezone, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    });
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function levelCell(level) {
    const td = document.createElement("td");
    const span = document.createElement("span");
    span.className = "level l" + (level || 0);
    span.textContent = String(level || 0);
    td.appendChild(span);
    return td;
  }

  function fill(tableSel, items, row) {
    const body = $(tableSel + " tbody");
    body.replaceChildren();
    if (!items.length) {
      const tr = document.createElement("tr");
      const td = cell(S.none, "empty");
      td.colSpan = $(tableSel + " thead tr").children.length;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    for (const item of items) body.appendChild(row(item));
  }

  // A case number that opens the grievance's view (status and attachments).
  function numberCell(id, number) {
    const td = document.createElement("td");
    if (!id) {
      td.textContent = number || "—";
      return td;
    }
    const link = document.createElement("a");
    link.href = "#grievance";
    link.className = "number";
    link.textContent = number;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      showGrievance(id).catch((error) => say(S.failed + ": " + error.message));
    });
    td.appendChild(link);
    return td;
  }

  // Files are read with the bearer token, so they come as blobs, never as plain links.
  async function fetchBlob(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
    if (!response.ok) throw new ApiError(response.status, response.statusText);
    return URL.createObjectURL(await response.blob());
  }

  async function showGrievance(id) {
    const { thumbnail } = await import("/dashboard/static/workbench/thumbnail.js");
    const [g, files] = await Promise.all([
      api("/v1/grievances/" + id),
      api("/v1/grievances/" + id + "/attachments"),
    ]);
    $("#grievance-number").textContent = g.number;
    $("#grievance-status").textContent = term("status", g.status);
    fill("#attachment-table", files.items, (a) => {
      const tr = document.createElement("tr");
      const preview = document.createElement("td");
      if (a.thumbnail_url) {
        preview.appendChild(thumbnail(a, fetchBlob));
      } else {
        preview.textContent = a.media_type;
      }
      tr.appendChild(preview);
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = a.filename;
      link.addEventListener("click", async (event) => {
        event.preventDefault();
        const save = document.createElement("a");
        save.href = await fetchBlob(a.url);
        save.download = a.filename;
        save.click();
      });
      name.appendChild(link);
      tr.appendChild(name);
      tr.appendChild(cell(Math.ceil(a.size / 1024) + " KiB", "num"));
      tr.appendChild(cell(a.principal + " (" + term("role", a.role) + ")" + (a.department ? " · " + deptName(a.department) : "")));
      tr.appendChild(cell(when(a.at)));
      return tr;
    });
    $("#grievance").hidden = false;
    $("#grievance").scrollIntoView();
  }

  function token() {
    return localStorage.getItem(TOKEN_KEY) || "";
  }

  function say(text) {
    $("#message").textContent = text || "";
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, params) {
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    }
    url.searchParams.set("lang", boot.lang === "en" ? "en" : "zh");
    const response = await fetch(url, {
      headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, body.detail || body.title || response.statusText);
    return body;
  }

  // ------------------------------------------------------------------ charts
  function drawChart(id, config) {
    if (typeof window.Chart === "undefined") return;
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  const RATE_COLOURS = ["#c81e1e", "#0f7b6c", "#2563eb"];
  const RATE_KEYS = ["response_rate", "resolution_rate", "satisfaction_rate"];
  const percentAxis = { y: { min: 0, max: 100, ticks: { callback: (v) => v + "%" } } };
  const asPercent = (rate) => (rate === null || rate === undefined ? null : Math.round(rate * 1000) / 10);

  // ------------------------------------------------------------------ panels
  async function loadSupervisor() {
    // No dates: the API's default period (the last 30 days by the service's clock).
    const month = thisMonth();
    const [kpis, trend, overdue, spots, streets, bureaus] = await Promise.all([
      api("/v1/kpis"),
      api("/dashboard/data/trend", { weeks: 8 }),
      api("/v1/grievances", { overdue: "true", limit: 50 }),
      api("/dashboard/data/hotspots", { weeks: 8, limit: 15 }),
      api("/v1/rankings", { period: month, level: "street" }),
      api("/v1/rankings", { period: month, level: "bureau" }),
    ]);
    fillRanking("#ranking-street-table", streets, ["score"]);
    fillRanking("#ranking-bureau-table", bureaus, ["street_rating", "score"]);
    fill("#kpi-table", kpis.items, (k) => {
      const tr = document.createElement("tr");
      tr.dataset.department = k.department;
      tr.appendChild(cell(deptName(k.department)));
      for (const key of ["dispatched", "signed_for_in_time", "response_rate", "feedback_received",
        "resolution_rate", "satisfaction_rate", "returned", "overdue", "escalated"]) {
        const td = cell(key.endsWith("_rate") ? pct(k[key]) : k[key], "num");
        td.dataset.kpi = key;
        tr.appendChild(td);
      }
      return tr;
    });
    // 直办率: the dispatch centre's intake, per request type, then the total.
    const intake = kpis.intake ? [...kpis.intake.by_request_type, { ...kpis.intake, total: true }] : [];
    fill("#direct-answer-table", intake, (r) => {
      const tr = document.createElement("tr");
      const kind = r.total ? S.total : r.request_type ? term("request_type", r.request_type) : S.request_type_unknown;
      tr.dataset.requestType = r.total ? "total" : r.request_type || "";
      tr.appendChild(cell(kind));
      for (const key of ["received", "answered_at_intake", "direct_answer_rate"]) {
        tr.appendChild(cell(key.endsWith("_rate") ? pct(r[key]) : r[key], "num")).dataset.kpi = key;
      }
      return tr;
    });
    drawChart("kpi-chart", {
      type: "bar",
      data: {
        labels: kpis.items.map((k) => deptName(k.department)),
        datasets: RATE_KEYS.map((key, i) => ({
          label: S[key], backgroundColor: RATE_COLOURS[i], data: kpis.items.map((k) => asPercent(k[key])),
        })),
      },
      options: { scales: percentAxis },
    });
    drawChart("trend-chart", {
      type: "line",
      data: {
        labels: trend.items.map((w) => w.week_start),
        datasets: RATE_KEYS.map((key, i) => ({
          label: S[key], borderColor: RATE_COLOURS[i], backgroundColor: RATE_COLOURS[i],
          spanGaps: true, data: trend.items.map((w) => asPercent(w[key])),
        })),
      },
      options: { scales: percentAxis },
    });
    fillOverdue("#overdue-table", overdue.items);
    fill("#hotspot-table", spots.items, (h) => {
      const tr = document.createElement("tr");
      tr.appendChild(cell(catName(h.category)));
      tr.appendChild(cell([place(h.street), place(h.community)].filter(Boolean).join(" · ")));
      tr.appendChild(cell(h.grievances, "num"));
      return tr;
    });
  }

  // This month in the city's time zone, YYYY-MM.
  function thisMonth() {
    return new Intl.DateTimeFormat("en-CA", { timeZone: boot.timezone, year: "numeric", month: "2-digit" })
      .format(new Date()).slice(0, 7);
  }

  // 排名: the ranked units, then those with too few cases (unranked).
  function fillRanking(tableSel, ranking, scores) {
    fill(tableSel, [...ranking.ranked, ...ranking.below_minimum], (r) => {
      const tr = document.createElement("tr");
      tr.dataset.department = r.department;
      tr.appendChild(cell(r.rank === null ? S.below_minimum : r.rank, r.rank === null ? "apart" : "num"));
      tr.appendChild(cell(r.name));
      for (const key of RATE_KEYS) tr.appendChild(cell(pct(r[key]), "num")).dataset.kpi = key;
      for (const key of scores) tr.appendChild(cell(r[key] === null ? "—" : r[key].toFixed(1), "num")).dataset.kpi = key;
      return tr;
    });
  }

  function fillOverdue(tableSel, items) {
    fill(tableSel, items, (g) => {
      const tr = document.createElement("tr");
      tr.className = "late";
      const late = (g.overdue_deadlines && g.overdue_deadlines[0]) || g.next_deadline || {};
      tr.appendChild(numberCell(g.id, g.number));
      tr.appendChild(cell(term("status", g.status)));
      // Whoever owes the lapsed deadline (the lead, an assisting department or the centre).
      tr.appendChild(cell(deptName(late.department || g.lead_department)));
      tr.appendChild(cell(term("kind", late.kind) + " " + when(late.due)));
      tr.appendChild(levelCell(g.escalation_level));
      return tr;
    });
  }

  async function loadOperator() {
    const [received, classified, returned, callbacks, overdue] = await Promise.all([
      api("/v1/grievances", { status: "received", limit: 30 }),
      api("/v1/grievances", { status: "classified", limit: 30 }),
      api("/v1/grievances", { status: "returned", limit: 30 }),
      api("/v1/callbacks", { limit: 30 }),
      api("/v1/grievances", { overdue: "true", limit: 30 }),
    ]);
    const intake = received.items.concat(classified.items);
    fill("#intake-table", intake, (g) => {
      const tr = document.createElement("tr");
      tr.appendChild(numberCell(g.id, g.number));
      tr.appendChild(cell(term("status", g.status)));
      tr.appendChild(cell(catName(g.category)));
      tr.appendChild(cell(when(g.received_at)));
      return tr;
    });
    fill("#redispatch-table", returned.items, (g) => {
      const tr = document.createElement("tr");
      const next = g.next_deadline || {};
      if (g.overdue) tr.className = "late";
      tr.appendChild(numberCell(g.id, g.number));
      tr.appendChild(cell(deptName(g.lead_department)));
      tr.appendChild(cell(when(next.due)));
      return tr;
    });
    fill("#callback-table", callbacks.items, (c) => {
      const tr = document.createElement("tr");
      if (c.overdue) tr.className = "late";
      tr.appendChild(cell(c.number));
      tr.appendChild(cell(deptName(c.department)));
      tr.appendChild(cell(when(c.window_ends_at)));
      tr.appendChild(cell(c.attempts, "num"));
      return tr;
    });
    fillOverdue("#operator-overdue-table", overdue.items);
  }

  async function loadDepartment() {
    const own = who.role === "department";
    $("#department-form").hidden = own;
    const code = own ? who.department : $("#department-code").value.trim();
    $("#department-name").textContent = code ? deptName(code) : "";
    if (!code) {
      fill("#assignment-table", [], () => null);
      return;
    }
    const page = await api("/v1/assignments", { department: who.role === "department" ? "" : code, limit: 100 });
    $("#ranking-own").hidden = !own;
    if (own) fillRanking("#ranking-own-table", await api("/v1/rankings", { period: thisMonth() }), ["street_rating", "score"]);
    fill("#assignment-table", page.items, (a) => {
      const tr = document.createElement("tr");
      if (a.overdue) tr.className = "late";
      tr.appendChild(numberCell(a.grievance_id, a.number));
      tr.appendChild(cell(term("role", a.role)));
      tr.appendChild(cell(term("state", a.state)));
      tr.appendChild(cell(a.due ? term("kind", a.due_kind) + " " + when(a.due) : "—"));
      tr.appendChild(levelCell(a.escalation_level));
      return tr;
    });
  }

  const PANELS = {
    supervisor: { roles: ["supervisor"], load: loadSupervisor },
    operator: { roles: ["operator", "supervisor"], load: loadOperator },
    department: { roles: ["operator", "supervisor", "department"], load: loadDepartment },
  };

  function showTab(name) {
    for (const button of document.querySelectorAll("#tabs button")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === name));
    }
    for (const key of Object.keys(PANELS)) $("#" + key).hidden = key !== name;
    // Charts drawn while hidden have no size: redraw them when shown.
    for (const chart of Object.values(charts)) chart.resize();
  }

  async function refresh() {
    if (!token()) {
      say(S.need_token);
      return;
    }
    try {
      who = await api("/dashboard/data/me");
    } catch (error) {
      say(error.status === 401 ? S.bad_token : S.failed + ": " + error.message);
      return;
    }
    $("#who").textContent = S.signed_in_as + ": " + who.name + " (" + term("role", who.role) + ")";
    const allowed = Object.keys(PANELS).filter((k) => PANELS[k].roles.includes(who.role));
    for (const button of document.querySelectorAll("#tabs button")) {
      button.hidden = !allowed.includes(button.dataset.tab);
    }
    const selected = document.querySelector('#tabs button[aria-selected="true"]:not([hidden])');
    if (!selected && allowed.length) showTab(allowed[0]);
    const failures = [];
    await Promise.all(allowed.map((name) => PANELS[name].load().catch((error) => {
      failures.push(S["tab_" + name] + ": " + error.message);
    })));
    say(failures.length ? S.failed + " — " + failures.join("; ") : "");
    $("#updated").textContent = when(new Date().toISOString());
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  }

  function offerToken(offered) {
    const banner = $("#token-offer");
    banner.hidden = false;
    const close = () => { banner.hidden = true; };
    $("#token-offer-use").addEventListener("click", () => {
      localStorage.setItem(TOKEN_KEY, offered);
      $("#token").value = offered;
      close();
      refresh();
    }, { once: true });
    $("#token-offer-keep").addEventListener("click", close, { once: true });
  }

  function start() {
    for (const el of document.querySelectorAll("[data-s]")) el.textContent = S[el.dataset.s] || el.dataset.s;
    const params = new URLSearchParams(window.location.search);
    const offered = (params.get("token") || "").trim();
    if (params.has("token")) {
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
    }
    // A link's token is taken only where none is saved; one that differs from the saved
    // token is offered, never swapped in silently (a link could sign someone in as another).
    if (offered && !token()) localStorage.setItem(TOKEN_KEY, offered);
    if (offered && offered !== token()) offerToken(offered);
    const other = boot.lang === "en" ? "zh" : "en";
    $("#lang-switch").href = window.location.pathname + "?lang=" + other;
    $("#token").value = token();
    $("#department-code").value = localStorage.getItem(DEPT_KEY) || "";
    const list = $("#department-codes");
    for (const [code, name] of Object.entries(boot.departments)) {
      const option = document.createElement("option");
      option.value = code;
      option.label = name;
      list.appendChild(option);
    }
    $("#token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      localStorage.setItem(TOKEN_KEY, $("#token").value.trim());
      refresh();
    });
    $("#forget").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      $("#token").value = "";
      window.location.reload();
    });
    $("#department-form").addEventListener("submit", (event) => {
      event.preventDefault();
      localStorage.setItem(DEPT_KEY, $("#department-code").value.trim());
      loadDepartment().catch((error) => say(S.failed + ": " + error.message));
    });
    $("#refresh").addEventListener("click", refresh);
    $("#grievance-close").addEventListener("click", () => { $("#grievance").hidden = true; });
    for (const button of document.querySelectorAll("#tabs button")) {
      button.addEventListener("click", () => showTab(button.dataset.tab));
    }
    refresh();
    timer = window.setInterval(refresh, REFRESH_MS);
  }

  window.closeloopDashboard = { pct, refresh, stop: () => window.clearInterval(timer) };
  start();
})();
