// 受理 during a call: the form files POST /v1/grievances, then the grievance's page opens on
// its classification (the category search has the focus).
"use strict";
import { $, api, boot, clearProblems, grievanceHref, loaded, post, showProblem, showSimilar, signIn } from "./core.js";

const P = boot.places;

function options(select, entries, blank) {
  select.replaceChildren();
  if (blank) select.appendChild(new Option("", ""));
  for (const [code, name] of entries) select.appendChild(new Option(name, code));
}

function placePicker() {
  const district = $("#district");
  const street = $("#street");
  const community = $("#community");
  options(district, Object.entries(P.districts), false);
  const streets = () => {
    options(street, Object.entries(P.streets).filter(([, s]) => s[0] === district.value).map(([c, s]) => [c, s[1]]), true);
    communities();
  };
  const communities = () => {
    options(community, Object.entries(P.communities).filter(([, c]) => c[0] === street.value).map(([c, n]) => [c, n[1]]), true);
  };
  district.addEventListener("change", streets);
  street.addEventListener("change", communities);
  streets();
}

function body(form) {
  const value = (name) => form.elements[name].value.trim();
  const location = { district: value("district") };
  for (const level of ["street", "community"]) if (value(level)) location[level] = value(level);
  if (value("address")) location.address = value("address");
  return {
    channel: value("channel"),
    citizen_name: value("citizen_name"),
    citizen_phone: value("citizen_phone"),
    text: form.elements.text.value,
    location,
  };
}

// Possible duplicates while the call is taken: as soon as the place names a community.
async function similar(form) {
  const place = body(form).location;
  const section = $("#similar");
  if (!place.community) {
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
  for (const name of ["district", "street", "community"]) form.elements[name].addEventListener("change", () => similar(form));
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
