// 受理 during a call: the form files POST /v1/grievances, then the grievance's page opens on
// its classification (the category search has the focus).
"use strict";
import {
  $, api, boot, clearProblems, grievanceHref, loaded, places, post, showProblem, showSimilar, signIn,
} from "./core.js";

function options(select, nodes, blank) {
  select.replaceChildren();
  if (blank) select.appendChild(new Option("", ""));
  for (const node of nodes) select.appendChild(new Option(node.name, node.code));
}

// District → street → community → grid, from GET /v1/places: each choice lists the next.
function placePicker() {
  const levels = ["district", "street", "community", "grid"].map((id) => $("#" + id));
  const children = (index) => {
    let nodes = places.tree;
    for (let i = 0; i < index; i += 1) {
      const chosen = nodes.find((n) => n.code === levels[i].value);
      nodes = chosen ? chosen.children || [] : [];
    }
    return nodes;
  };
  const refill = (from) => {
    for (let i = from; i < levels.length; i += 1) options(levels[i], children(i), i > 0);
  };
  levels.forEach((select, i) => select.addEventListener("change", () => refill(i + 1)));
  refill(0);
}

function body(form) {
  const value = (name) => form.elements[name].value.trim();
  const location = { district: value("district") };
  for (const level of ["street", "community", "grid"]) if (value(level)) location[level] = value(level);
  if (value("address")) location.address = value("address");
  const made = {
    channel: value("channel"),
    citizen_name: value("citizen_name"),
    citizen_phone: value("citizen_phone"),
    text: form.elements.text.value,
    location,
  };
  if (value("request_type")) made.request_type = value("request_type");
  return made;
}

// Possible duplicates while the call is taken: as soon as the place names a community.
async function similar(form) {
  const place = body(form).location;
  const section = $("#similar");
  if (!place.community && !place.grid) {
    section.hidden = true;
    return;
  }
  try {
    showSimilar(section, await api("/v1/grievances/similar", place));
  } catch (error) {
    section.hidden = true;
  }
}

async function start() {
  if (!(await signIn())) return;
  placePicker();
  const form = $("#intake");
  for (const name of ["district", "street", "community", "grid"]) {
    form.elements[name].addEventListener("change", () => similar(form));
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    try {
      const made = await post(form, "/v1/grievances", body(form));
      window.location.assign(grievanceHref(made.id) + (boot.lang === "en" ? "?lang=en" : "") + "#next");
    } catch (error) {
      showProblem(form, error);
    }
  });
  $("#citizen_name").focus();
  loaded();
}

start();
