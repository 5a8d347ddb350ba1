// The queues of the signed-in role, each row opening the grievance's page.
"use strict";
import {
  $, S, api, catName, cell, deadlineCells, deptName, fill, grievanceHref, link, loaded, placeName, say, signIn, term, when,
} from "./core.js";

const DEPT_KEY = "closeloop.workbench.department";

function numberCell(id, number) {
  const td = document.createElement("td");
  td.appendChild(link(grievanceHref(id), number));
  return td;
}

function grievanceRow(g) {
  const tr = document.createElement("tr");
  const next = g.next_deadline || {};
  tr.appendChild(numberCell(g.id, g.number));
  tr.appendChild(cell(term("status", g.status)));
  tr.appendChild(cell(catName(g.category)));
  tr.appendChild(cell(placeName(g.location)));
  deadlineCells(tr, next.kind, next.due);
  if (g.overdue) tr.classList.add("late");
  return tr;
}

function leveledRow(g) {
  const tr = grievanceRow(g);
  tr.appendChild(cell(g.escalation_level ? term("escalation_level", String(g.escalation_level)) : "—"));
  return tr;
}

function show(id, items, row) {
  const section = $("#" + id);
  section.hidden = false;
  $(".count", section).textContent = "(" + items.length + ")";
  fill($("table", section), items, row);
}

async function grievances(params) {
  return (await api("/v1/grievances", Object.assign({ limit: 50 }, params))).items;
}

async function operatorQueues(who) {
  const [received, classified, returned, callbacks, overdue] = await Promise.all([
    grievances({ status: "received" }),
    grievances({ status: "classified" }),
    grievances({ status: "returned" }),
    api("/v1/callbacks", { limit: 50 }),
    grievances({ overdue: "true" }),
  ]);
  show("q-received", received, grievanceRow);
  show("q-classified", classified, grievanceRow);
  show("q-returned", returned, grievanceRow);
  show("q-callbacks", callbacks.items, (c) => {
    const tr = document.createElement("tr");
    tr.appendChild(numberCell(c.grievance_id, c.number));
    tr.appendChild(cell(deptName(c.department)));
    deadlineCells(tr, "feedback", c.window_ends_at);
    tr.appendChild(cell(c.attempts, "num"));
    return tr;
  });
  show("q-overdue", overdue, leveledRow);
  if (who.role === "supervisor") await supervisorQueues();
}

async function supervisorQueues() {
  const levels = await Promise.all([1, 2, 3].map((level) => grievances({ escalation_level: level })));
  show("q-escalated", levels.flat(), leveledRow);
  // No list holds waiting extension requests: read the grievances in progress themselves.
  const working = await grievances({ status: "in_progress" });
  const full = await Promise.all(working.map((g) => api("/v1/grievances/" + g.id)));
  const waiting = [];
  for (const g of full) {
    for (const a of g.assignments) {
      if (a.extension_requested) waiting.push({ g, a });
    }
  }
  show("q-extensions", waiting, ({ g, a }) => {
    const tr = document.createElement("tr");
    tr.appendChild(numberCell(g.id, g.number));
    tr.appendChild(cell(deptName(a.department)));
    tr.appendChild(cell(term("deadline_kind", "resolve") + " " + when(a.resolve_deadline)));
    tr.appendChild(cell(when(a.extension_requested)));
    return tr;
  });
}

async function departmentQueue(who) {
  const own = who.role === "department";
  const code = own ? who.department : $("#department-code").value;
  const page = await api("/v1/assignments", { department: own ? "" : code, limit: 100 });
  const section = $("#q-assignments");
  $("h2", section).firstChild.textContent = (own ? S.queue_department : S.queue_of_department) + " · " + deptName(code) + " ";
  show("q-assignments", page.items, (a) => {
    const tr = document.createElement("tr");
    tr.dataset.assignment = a.assignment_id;
    tr.appendChild(numberCell(a.grievance_id, a.number));
    tr.appendChild(cell(term("role", a.role)));
    tr.appendChild(cell(term("assignment_state", a.state)));
    tr.appendChild(cell(catName(a.category)));
    deadlineCells(tr, a.due_kind, a.due);
    tr.appendChild(cell(a.escalation_level ? term("escalation_level", String(a.escalation_level)) : "—"));
    return tr;
  });
}

async function start() {
  const who = await signIn();
  if (!who) return;
  const picker = $("#department-form");
  picker.hidden = who.role === "department";
  // Staff look at a department's queue after their own.
  if (who.role !== "department") $("#main").append(picker, $("#q-assignments"));
  $("#department-code").value = localStorage.getItem(DEPT_KEY) || $("#department-code").value;
  picker.addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(DEPT_KEY, $("#department-code").value);
    departmentQueue(who).catch((error) => say(S.failed + ": " + error.message));
  });
  try {
    const work = [departmentQueue(who)];
    if (who.role !== "department") work.push(operatorQueues(who));
    await Promise.all(work);
    say("");
  } catch (error) {
    say(S.failed + ": " + error.message);
  }
  const first = document.querySelector("section.queue:not([hidden]) a");
  if (first) first.focus();
  loaded();
}

start();
