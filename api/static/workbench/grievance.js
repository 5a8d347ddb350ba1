// One grievance: what it is, its deadlines, assignments, attachments and history, and the
// forms of what the caller may do now. Which forms show is the API's answer (allowed_actions
// of the grievance and of the caller's own assignment, and the roles of each command route).
"use strict";
import {
  $, $$, S, api, blobUrl, boot, catName, categories, cell, clearProblems, deadlineCells, deptName, fill,
  loaded, placeName, post, say, showProblem, showSimilar, signIn, term, when,
} from "./core.js";
import { thumbnail } from "./thumbnail.js";

const id = $("#grievance").dataset.id;
const OPEN_STATES = ["dispatched", "signed_for"];
const SEP = S.notes_separator;
let who = null;
let g = null;
let suggestion = null;

const commandOf = (form) => boot.commands[form.dataset.action];
const onAssignment = (form) => commandOf(form).path.includes("{assignment_id}");

function ownAssignments() {
  if (who.role !== "department") return [];
  // The newest round first: after a reopen (重办) the new assignment is the one to work on.
  return g.assignments
    .filter((a) => a.department === who.department && a.allowed_actions.length)
    .sort((x, y) => y.round - x.round);
}

function currentAssignment() {
  const own = ownAssignments();
  return own.find((a) => a.id === $("#own-assignment").value) || own[0] || null;
}

function assignmentLabel(a) {
  return deptName(a.department) + " · " + term("role", a.role) + " · " + term("assignment_state", a.state) + " · #" + a.round;
}

// ------------------------------------------------------------------ what it is
function renderFacts() {
  document.title = g.number + " · " + document.title.split(" · ").slice(-1)[0];
  $("#g-number").textContent = g.number;
  $("#g-status").textContent = g.status_label || term("status", g.status);
  $("#g-status").dataset.status = g.status;
  $("#g-category").textContent = catName(g.category);
  $("#g-urgency").textContent = term("urgency", g.urgency);
  $("#g-lead").textContent = deptName(g.lead_department);
  $("#g-channel").textContent = term("channel", g.channel);
  $("#g-request-type").textContent = term("request_type", g.request_type);
  const answer = $("#g-answer");
  answer.hidden = !g.intake_answer;
  answer.textContent = g.intake_answer ? S.answer_given + ": " + g.intake_answer.answer : "";
  $("#g-citizen").textContent = g.citizen_name + " · " + g.citizen_phone;
  $("#g-place").textContent = placeName(g.location);
  $("#g-received").textContent = when(g.received_at);
  $("#g-reopened").textContent = String(g.reopen_count);
  $("#g-text").textContent = g.text;
  const resolution = $("#g-resolution");
  resolution.hidden = !g.resolution;
  resolution.textContent = g.resolution ? S.resolution + ": " + g.resolution : "";
  fill($("#g-deadlines"), g.open_deadlines, (d) => {
    const tr = document.createElement("tr");
    tr.appendChild(cell(term("deadline_kind", d.kind)));
    tr.appendChild(cell(deptName(d.department)));
    deadlineCells(tr, null, d.due);
    return tr;
  });
  fill($("#g-assignments"), g.assignments, (a) => {
    const tr = document.createElement("tr");
    tr.dataset.assignment = a.id;
    tr.appendChild(cell(deptName(a.department)));
    tr.appendChild(cell(term("role", a.role)));
    tr.appendChild(cell(term("assignment_state", a.state)));
    tr.appendChild(cell(a.round));
    const notes = [];
    if (a.return_reason) notes.push(S.return_reason + ": " + a.return_reason);
    if (a.extension_requested) notes.push(S.extension_waiting + " " + when(a.extension_requested));
    if (a.account) notes.push(a.account);
    tr.appendChild(cell(notes.join(SEP)));
    return tr;
  });
}

async function renderAttachments() {
  const list = $("#g-attachments");
  const files = await api("/v1/grievances/" + id + "/attachments");
  list.replaceChildren();
  for (const a of files.items) {
    const li = document.createElement("li");
    if (a.thumbnail_url) li.appendChild(thumbnail(a, blobUrl));
    const name = document.createElement("a");
    name.href = "#";
    name.textContent = a.filename;
    name.addEventListener("click", (event) => {
      event.preventDefault();
      download(a.url, a.filename);
    });
    li.appendChild(name);
    li.appendChild(document.createTextNode(" · " + a.principal + " · " + when(a.at)));
    list.appendChild(li);
  }
  if (!files.items.length) list.textContent = S.none;
}

async function download(path, filename) {
  const save = document.createElement("a");
  save.href = await blobUrl(path);
  save.download = filename;
  save.click();
}

const NOTE_KEYS = ["category", "lead", "department", "satisfaction", "account", "note", "comment", "filename", "new_deadline", "level"];

function eventNotes(e) {
  const notes = [];
  for (const key of NOTE_KEYS) {
    const value = e.data[key];
    if (value === null || value === undefined || value === "") continue;
    if (key === "category") notes.push(catName(value));
    else if (key === "lead" || key === "department") notes.push(deptName(value));
    else if (key === "satisfaction") notes.push(term("satisfaction", value));
    else if (key === "new_deadline") notes.push(when(value));
    else if (key === "level") notes.push(term("escalation_level", String(value)));
    else notes.push(String(value));
  }
  if (e.reason) notes.push(e.reason);
  return notes.join(SEP);
}

// Staff read the audit trail itself; a department, which may not, sees its assignments' steps.
async function renderHistory() {
  let rows;
  if (who.role === "department") {
    rows = [{ at: g.received_at, type: "Received" }];
    for (const a of g.assignments) {
      rows.push({ at: a.dispatched_at, type: "Dispatched", by: deptName(a.department) });
      if (a.signed_for_at) rows.push({ at: a.signed_for_at, type: "SignedFor", by: deptName(a.department) });
      if (a.finished_at) rows.push({ at: a.finished_at, label: term("assignment_state", a.state), by: deptName(a.department), notes: a.account || a.return_reason });
    }
    if (g.closed_at) rows.push({ at: g.closed_at, type: "Closed" });
    rows.sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
  } else {
    const events = await api("/v1/audit/grievances/" + id + "/events");
    rows = events.events.map((e) => ({
      at: e.at || e.timestamp, type: e.type, by: (e.principal || "") + (e.role ? " (" + term("role", e.role) + ")" : ""), notes: eventNotes(e),
    }));
  }
  fill($("#g-history"), rows, (r) => {
    const tr = document.createElement("tr");
    tr.appendChild(cell(when(r.at)));
    tr.appendChild(cell(r.label || term("event", r.type)));
    tr.appendChild(cell(r.by));
    tr.appendChild(cell(r.notes));
    return tr;
  });
}

// ------------------------------------------------------------------ what may be done
function assignmentChoices(action) {
  if (action === "arbitrate") return g.assignments.filter((a) => a.state === "returned");
  if (action === "decide_extension") return g.assignments.filter((a) => a.extension_requested);
  return g.assignments.filter((a) => OPEN_STATES.includes(a.state));
}

function showForms() {
  const own = ownAssignments();
  const picker = $("#own-assignment");
  const chosen = picker.value;
  picker.replaceChildren(...own.map((a) => new Option(assignmentLabel(a), a.id)));
  if (own.some((a) => a.id === chosen)) picker.value = chosen;
  $("#own-assignment-field").hidden = own.length < 2;
  const mine = currentAssignment();
  let shown = 0;
  for (const form of $$("form.action[data-action]")) {
    const action = form.dataset.action;
    const command = commandOf(form);
    let visible = !!command && command.roles.includes(who.role);
    if (visible) {
      visible = onAssignment(form)
        ? !!mine && mine.allowed_actions.includes(action)
        : g.allowed_actions.includes(action);
    }
    for (const select of $$('[data-kind="assignment"] select', form)) {
      const choices = assignmentChoices(action).map((a) => new Option(assignmentLabel(a), a.id));
      select.replaceChildren(...(select.required ? [] : [new Option("", "")]), ...choices);
      // Nothing to arbitrate or decide on: the status allows it, but no assignment waits.
      if (select.required && !choices.length) visible = false;
    }
    form.hidden = !visible;
    if (visible) shown += 1;
  }
  $("#no-actions").hidden = shown > 0;
  const answerForm = $("#form-answer_at_intake");
  if (answerForm && g.request_type === "consultation") $(".forms").prepend(answerForm);
  similar();
  const dispatch = $("#form-dispatch");
  if (dispatch && !dispatch.hidden) loadSuggestion(dispatch);
}

// Possible duplicates of this grievance, each merged in one click (POST …/merge, the
// route the API names for it).
async function similar() {
  const section = $("#similar");
  if (!g.allowed_actions.includes("merge") || !boot.commands.merge.roles.includes(who.role)) {
    section.hidden = true;
    return;
  }
  const answer = await api("/v1/grievances/" + id + "/similar").catch(() => ({ items: [] }));
  showSimilar(section, answer, async (merge, button) => {
    clearProblems(section);
    const own = merge.href.includes(id);
    try {
      await post(button, merge.href, merge.body, own ? g.version : null);
    } catch (error) {
      showProblem(section, error);
      return;
    }
    say(S.done.replace("{action}", term("action", "merge")));
    await load();
  });
}

async function loadSuggestion(form) {
  const line = $("#routing-suggestion");
  suggestion = null;
  try {
    suggestion = await api("/workbench/data/grievances/" + id + "/routing");
  } catch (error) {
    line.textContent = S.no_suggestion + ": " + error.message;
    return;
  }
  const assisting = suggestion.assisting.map(deptName).join(boot.terms.word.list_separator) || S.none;
  line.textContent = S.suggestion.replace("{lead}", deptName(suggestion.lead)).replace("{assisting}", assisting);
  form.elements.lead.value = suggestion.lead;
  for (const option of form.elements.assisting.options) option.selected = suggestion.assisting.includes(option.value);
}

function collect(form) {
  const fields = $$(".field[data-field]", form);
  if (fields.some((f) => f.dataset.kind === "file")) return new FormData(form);
  const body = {};
  for (const field of fields) {
    const name = field.dataset.field;
    const kind = field.dataset.kind;
    const input = form.elements[name];
    if (kind === "articles") {
      body[name] = $$("input[type=checkbox]:checked", field).map((box) => ({
        article_id: box.value, revision: Number(box.dataset.revision),
      }));
      continue;
    }
    if (kind === "departments") {
      const chosen = Array.from(input.selectedOptions, (o) => o.value);
      if (chosen.length) body[name] = chosen;
      continue;
    }
    const value = input.value.trim();
    if (!value) continue;
    if (kind === "bool") body[name] = value === "true";
    else if (kind === "datetime") body[name] = value + (value.length === 16 ? ":00" : "") + boot.utc_offset;
    else if (name === "level") body[name] = Number(value);
    else body[name] = value;
  }
  if (form.dataset.action === "dispatch") return dispatchBody(body);
  return body;
}

// The suggestion taken as it is: no body, so the routing rules decide (and are recorded as
// the reason); anything changed is the operator's own choice.
function dispatchBody(body) {
  if (!body.lead) return body.reason ? { reason: body.reason } : null;
  const same = suggestion && body.lead === suggestion.lead
    && JSON.stringify([...(body.assisting || [])].sort()) === JSON.stringify([...suggestion.assisting].sort());
  if (same && !body.reason) return null;
  return Object.assign({ assisting: [] }, body);
}

async function submit(form) {
  clearProblems(form);
  const action = form.dataset.action;
  let path = commandOf(form).path.replace("{grievance_id}", id);
  if (onAssignment(form)) path = path.replace("{assignment_id}", currentAssignment().id);
  try {
    await post(form, path, collect(form), g.version);
  } catch (error) {
    showProblem(form, error);
    if (error.status === 409 || error.status === 412) await load().catch(() => {});
    return;
  }
  form.reset();
  say(S.done.replace("{action}", term("action", action)));
  await load();
  focusNext();
}

// The first form shown is the next step (the template orders them so): its first empty
// search or required field, or its button when everything is filled in (a routing
// suggestion).
function focusNext() {
  const form = $$("form.action[data-action]").find((f) => !f.hidden);
  if (!form) return;
  const fields = $$("input:not([type=hidden]), select, textarea", form);
  const empty = fields.find((el) => (el.required || el.type === "search") && !el.value);
  (empty || $("button[type=submit]", form)).focus();
}

// ------------------------------------------------------------------ category search
function categoryPicker(field) {
  const input = $("input[type=search]", field);
  const hidden = $("input[type=hidden]", field);
  const list = $("ul", field);
  const chosen = $(".chosen", field);
  let matches = [];
  let active = -1;

  function render() {
    list.replaceChildren();
    let group = null;
    matches.forEach((leaf, index) => {
      if (leaf.top !== group) {
        group = leaf.top;
        const head = document.createElement("li");
        head.className = "group";
        head.setAttribute("role", "presentation");
        head.textContent = group.name;
        list.appendChild(head);
      }
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = input.id + "-" + leaf.code;
      li.dataset.code = leaf.code;
      li.textContent = leaf.name;
      li.setAttribute("aria-selected", String(index === active));
      li.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pick(leaf);
      });
      list.appendChild(li);
    });
    input.setAttribute("aria-expanded", String(matches.length > 0));
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", input.id + "-" + matches[active].code);
      document.getElementById(input.id + "-" + matches[active].code).scrollIntoView({ block: "nearest" });
    }
  }

  function search() {
    const words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    matches = Object.values(categories).filter((leaf) => {
      const text = (leaf.top.name + " " + leaf.name + " " + leaf.code).toLowerCase();
      return words.every((w) => text.includes(w));
    });
    active = matches.length ? 0 : -1;
    render();
  }

  function pick(leaf) {
    hidden.value = leaf.code;
    input.value = leaf.name;
    chosen.textContent = S.chosen + ": " + catName(leaf.code);
    matches = [];
    active = -1;
    render();
  }

  input.addEventListener("input", () => {
    hidden.value = "";
    chosen.textContent = "";
    search();
  });
  input.addEventListener("focus", () => { if (!hidden.value) search(); });
  input.addEventListener("blur", () => {
    matches = [];
    active = -1;
    render();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!matches.length) search();
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + matches.length) % matches.length;
      render();
    } else if (event.key === "Enter" && active >= 0 && matches.length) {
      event.preventDefault();
      pick(matches[active]);
    } else if (event.key === "Escape") {
      matches = [];
      active = -1;
      render();
    }
  });
  field.closest("form").addEventListener("reset", () => {
    hidden.value = "";
    chosen.textContent = "";
  });
}

// ------------------------------------------------------------------ knowledge base
// GET /v1/knowledge/search as the operator types; a ticked article is quoted (its revision
// in force) and, while the answer is empty, its text becomes the answer to read out.
function knowledgePicker(field) {
  const input = $("input[type=search]", field);
  const list = $("ul", field);
  const answer = field.closest("form").elements.answer;
  let timer = null;

  async function search() {
    const q = input.value.trim();
    const ticked = $$("input:checked", list).map((box) => box.closest("li"));
    if (!q) {
      list.replaceChildren(...ticked);
      return;
    }
    const found = await api("/v1/knowledge/search", { q, limit: 8 }).catch((error) => ({ items: [], error }));
    const keep = new Set(ticked.map((li) => li.dataset.article));
    const rows = found.items.filter((hit) => !keep.has(hit.id)).map((hit) => {
      const li = document.createElement("li");
      li.dataset.article = hit.id;
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = hit.id;
      box.dataset.revision = String(hit.revision);
      box.addEventListener("change", () => { if (box.checked) quote(hit); });
      const title = document.createElement("strong");
      title.textContent = hit.title;
      label.append(box, " ", title, " · ", hit.snippet);
      li.appendChild(label);
      return li;
    });
    list.replaceChildren(...ticked, ...rows);
    if (!rows.length && !ticked.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = found.error ? S.failed + ": " + found.error.message : S.kb_none;
      list.appendChild(li);
    }
  }

  async function quote(hit) {
    if (answer.value.trim()) return;
    const article = await api("/v1/knowledge/articles/" + hit.id);
    const text = article.revisions.find((r) => r.revision === hit.revision);
    if (text && !answer.value.trim()) answer.value = text.body;
  }

  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(search, 250);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault(); // Enter searches now; the form is sent from its button
    window.clearTimeout(timer);
    search();
  });
  field.closest("form").addEventListener("reset", () => list.replaceChildren());
}

// ------------------------------------------------------------------ case file, audit events
function auditLinks() {
  $("#audit-links").hidden = who.role === "department";
  $("#open-casefile").addEventListener("click", () => {
    download("/v1/audit/grievances/" + id + "/casefile", g.number + ".html").catch((e) => say(S.failed + ": " + e.message));
  });
  $("#open-events").addEventListener("click", () => {
    download("/v1/audit/grievances/" + id + "/events", g.number + ".json").catch((e) => say(S.failed + ": " + e.message));
  });
}

async function load() {
  g = await api("/v1/grievances/" + id);
  renderFacts();
  showForms();
  await Promise.all([renderAttachments(), renderHistory()]);
  loaded();
}

async function start() {
  who = await signIn();
  if (!who) return;
  for (const field of $$('[data-kind="category"]')) categoryPicker(field);
  for (const field of $$('[data-kind="articles"]')) knowledgePicker(field);
  for (const form of $$("form.action[data-action]")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit(form);
    });
  }
  $("#own-assignment").addEventListener("change", showForms);
  auditLinks();
  try {
    await load();
  } catch (error) {
    say(S.failed + ": " + error.message);
    return;
  }
  if (window.location.hash === "#next") focusNext();
}

start();
