// The technician's page: whether they receive offers now (and why not), going online or
// offline, sharing where they are, their working hours; their own offers (with the time left
// to answer) and jobs, and the buttons to act on them (decline with a reason, on my way with
// an ETA, fixed with notes, give the job back or say it needs another skill); jobs taken from
// them lately (cancelled at the device, reassigned), with why. Polls every few seconds; the API
// only ever shows them their own.
"use strict";

const NEXT = {assigned: ["en_route", "On my way"], en_route: ["on_site", "I'm on site"],
              on_site: ["resolved", "Fixed"]};

function button(label, action) {
  const node = el("button", {type: "button"}, label);
  node.addEventListener("click", async () => {
    node.disabled = true;
    try { await action(); document.getElementById("error").textContent = ""; }
    catch (error) { document.getElementById("error").textContent = error.message; }
    finally { node.disabled = false; }  // the list may not be redrawn while they type
    refresh();
  });
  return node;
}

// What is open or typed on a card, kept across the redraws every few seconds: the decline and
// give-back choices shown, and the text of each field (by the field's key).
const open = {};
const drafts = {};
let skillsKnown = null;  // every skill crowdfix knows (GET /api/skills), read once
let mySkills = [];  // theirs (from their record, read with their status)

function draft(key, attrs) {
  const input = el("input", {type: "text", name: key.split(":")[0], value: drafts[key] || "", ...attrs});
  input.addEventListener("input", () => { drafts[key] = input.value; });
  return input;
}

function failed(message) {
  document.getElementById("error").textContent = message;
  throw new Error(message);
}

const DECLINE_REASONS = ["Too far", "Busy right now", "Not my kind of job"];

function declineChoice(offer) {
  // Why not: a tap on a common reason, or their own words.
  const decline = (reason) => post(`/api/offers/${offer.id}/decline`, {reason});
  const other = draft(`reason:${offer.id}`, {placeholder: "another reason", "aria-label": "why not"});
  return el("div", {class: "choice", "data-decline": offer.id},
    el("div", {class: "muted"}, "Why not? It helps us send you the right jobs."),
    el("div", {class: "actions"}, ...DECLINE_REASONS.map((reason) => button(reason, () => decline(reason)))),
    el("div", {class: "actions"}, other,
      button("Decline", () => decline(other.value.trim() || failed("Pick a reason, or write one."))),
      button("Back", () => { delete open[`decline:${offer.id}`]; })));
}

function placeLine(where, arriveBy) {
  // Where the job is (with a map to find it) and by when someone must be there.
  if (!where) return null;
  const map = where.map_url  // the deployment's map (CROWDFIX_MAP_URL)
    ? el("a", {href: where.map_url, target: "_blank", rel: "noopener", "data-map": ""}, "map") : null;
  return el("div", {class: "meta", "data-where": ""}, where.name, where.address ? `, ${where.address}` : "",
    map ? [" · ", map] : null, arriveBy ? ` · on site by ${clock(arriveBy)}` : null);
}

function offerCard(offer) {
  const left = Math.max(0, Math.round((Date.parse(offer.deadline) - Date.now()) / 1000));
  const card = el("div", {class: "card", "data-offer": offer.id},
    el("div", {class: "title"}, `#${offer.ticket_id} ${offer.title}`),
    el("div", {class: "meta"}, `about ${Math.round(offer.eta_min)} min away · answer within ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`));
  add(card, placeLine(offer.where, offer.arrive_by));
  if (open[`decline:${offer.id}`]) return add(card, declineChoice(offer));
  return add(card, el("div", {class: "actions"},
    button("Accept", () => post(`/api/offers/${offer.id}/accept`, {})),
    button("Decline", () => { open[`decline:${offer.id}`] = true; })));
}

function giveBackChoice(job) {
  // Handing the job on: why (always), and on site, the skills it turned out to need.
  const reason = draft(`giveback:${job.id}`, {placeholder: "why (the next technician reads it)", "aria-label": "why give it back"});
  const key = `needs:${job.id}`;
  const needs = job.state === "on_site" && skillsKnown
    ? skillsKnown.filter((s) => !job.skills.includes(s) && !mySkills.includes(s)).map((skill) => {
        const box = el("input", {type: "checkbox", name: "needs", value: skill, checked: (drafts[key] || []).includes(skill)});
        box.addEventListener("change", () => {
          const ticked = (drafts[key] || []).filter((s) => s !== skill);
          drafts[key] = box.checked ? [...ticked, skill] : ticked;
        });
        return el("label", {class: "skill"}, box, ` ${skill}`);
      })
    : [];
  return el("div", {class: "choice", "data-give-back": job.id},
    el("div", {class: "muted"}, needs.length ? "It goes to someone else. Tick what it needs that you lack, if that is why." : "It goes to someone else."),
    needs.length ? el("div", {class: "skills"}, ...needs) : null,
    el("div", {class: "actions"}, reason,
      button("Give the job back", () => post(`/api/jobs/${job.id}/give-back`, {
        reason: reason.value.trim() || failed("Say why first: the next technician reads it."),
        needs_skills: drafts[key] || []})),
      button("Back", () => { delete open[`giveback:${job.id}`]; })));
}

function nextStep(job) {
  // On my way (with how long), on site, fixed (with what was done).
  const [to, label] = NEXT[job.state];
  const eta = job.state === "assigned" ? draft(`eta:${job.id}`, {inputmode: "numeric", placeholder: "minutes away", "aria-label": "minutes away"}) : null;
  const notes = job.state === "on_site" ? draft(`notes:${job.id}`, {placeholder: "what you did", "aria-label": "what you did"}) : null;
  return el("div", {class: "actions"}, eta, notes,
    button(label, () => {
      const body = {state: to};
      if (eta && eta.value.trim()) {
        const minutes = Number(eta.value.trim());
        if (!Number.isInteger(minutes) || minutes <= 0) failed("Minutes away: a whole number, like 20.");
        body.eta_min = minutes;
      }
      if (notes && notes.value.trim()) body.notes = notes.value.trim();
      return post(`/api/jobs/${job.id}/progress`, body);
    }));
}

function jobCard(job) {
  const card = el("div", {class: "card", "data-job": job.id},
    el("div", {class: "title"}, `#${job.id} ${job.title}`),
    el("div", {class: "meta"}, `${job.state.replace("_", " ")} · ${job.category}`));
  if (NEXT[job.state]) {  // an open job: where, by when, and what is wrong
    const what = el("details", {class: "what", open: open[`what:${job.id}`] || null},
      el("summary", {}, "What is wrong"), el("div", {class: "description"}, job.description));
    what.addEventListener("toggle", () => { open[`what:${job.id}`] = what.open; });  // kept open across refreshes
    add(card, placeLine(job.where, job.sla_arrive_by), what);
    card.append(open[`giveback:${job.id}`] ? giveBackChoice(job) : nextStep(job));
    if (!open[`giveback:${job.id}`]) card.append(el("div", {class: "actions secondary"},
      button(job.state === "on_site" ? "Can't fix it" : "Can't do it", () => { open[`giveback:${job.id}`] = true; })));
  }
  if (job.state === "on_site" || (job.state === "resolved" && job.rating === null)) {
    card.append(links[job.id]
      ? el("div", {class: "rating-link"}, "Let the customer rate this job: ",
           el("a", {href: links[job.id].url, target: "_blank", rel: "noopener"}, "rating link"),
           el("img", {class: "qr", alt: "QR code of the rating link",
                      src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(links[job.id].qr_svg)}`}),
           el("div", {class: "muted"}, "They scan it with their phone's camera, or you send them the link; it works once, for 7 days."))
      : el("div", {class: "actions"}, button("Rating link for the customer", async () => {
          links[job.id] = await post(`/api/jobs/${job.id}/rating-link`, {});
        })));
  }
  return card;
}

const links = {};  // job id → the rating link made on this page (kept across redraws)

function setAvailability(technicianId, change) {
  return put(`/api/technicians/${encodeURIComponent(technicianId)}/availability`, change);
}

function receiving(tech) {
  // Whether offers reach them now, and if not, what would change it.
  const until = tech.shift_changes_at ? ` until ${clock(tech.shift_changes_at)}` : "";
  if (tech.paused) return ["bad", `Paused: ${tech.paused_reason}. An operator will review it with you.`];
  if (!tech.available) return ["muted", "Offline: you get no offers until you go online."];
  if (tech.on_leave) return ["muted", `On leave (${tech.on_leave})${until}: no offers until then.`];
  if (!tech.on_shift) return ["muted", `Off shift${until}: no offers until your next shift.`];
  return ["ok", `Receiving offers${until}.`];
}

function shareLocation(technicianId) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error("This browser cannot tell where you are.")); return; }
    navigator.geolocation.getCurrentPosition(
      (where) => setAvailability(technicianId, {lat: where.coords.latitude, lon: where.coords.longitude})
        .then(resolve, reject),
      (error) => reject(new Error(`Location not shared: ${error.message}`)), {timeout: 10000});
  });
}

function statusNow(tech) {
  const [kind, text] = receiving(tech);
  const where = tech.position_at ? `location shared ${ago(tech.position_at)}` : "offers are measured from your home base";
  return el("div", {id: "status-now"},
    el("p", {class: `status ${kind}`, "data-receiving": kind === "ok" ? "yes" : "no"}, text),
    el("div", {class: "actions"},
      tech.available ? button("Go offline", () => setAvailability(tech.id, {available: false}))
                     : button("Go online", () => setAvailability(tech.id, {available: true})),
      button("Share my location", () => shareLocation(tech.id))),
    el("p", {class: "muted", "data-location": tech.position_at ? "shared" : "home"}, where),
    certificationsDue(tech));
}

let hoursShown = null;  // the hours as last drawn ("shifts|time off|zone"); null: saved, draw anew
let hoursOpen = null;  // the section as they left it (null: open while no hours are set)

function hoursForm(tech) {
  // Drawn anew only when the server's hours change and nothing typed would be lost.
  const zoneNow = tech.shifts.length ? tech.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone;
  const hours = el("input", {type: "text", name: "shifts", value: tech.shifts.join("; "),
                             placeholder: "e.g. mon-fri 07:00-19:00; sat 08:00-12:00", "aria-label": "working hours"});
  const zone = el("input", {type: "text", name: "timezone", "aria-label": "time zone", value: zoneNow});
  const away = el("input", {type: "text", name: "time_off", value: timeOffAhead(tech).join("; "),
                            placeholder: "time off, e.g. 2026-12-22..2027-01-05; 2027-02-12", "aria-label": "time off"});
  const save = el("button", {type: "button"}, "Save hours");
  save.addEventListener("click", async () => {
    save.disabled = true;
    const list = (input) => input.value.split(";").map((s) => s.trim()).filter(Boolean);
    try {
      await setAvailability(tech.id, {shifts: list(hours), time_off: list(away), timezone: zone.value.trim() || "UTC"});
      document.getElementById("error").textContent = "";
      hoursShown = null;  // saved: draw what the server now has
    } catch (error) { document.getElementById("error").textContent = error.message; }
    finally { save.disabled = false; }
    refresh();
  });
  const open = hoursOpen === null ? !tech.shifts.length : hoursOpen;
  const ahead = timeOffAhead(tech);
  const leave = ahead.length ? `; time off: ${ahead.join(", ")}` : "";
  const section = el("details", {id: "status-hours", open: open || null},
    el("summary", {}, (tech.shifts.length ? `Working hours: ${tech.shifts.join(", ")} (${tech.timezone})` : "Working hours: whenever you are online") + leave),
    el("div", {class: "row"}, hours, zone),
    el("div", {class: "row"}, away, save),
    el("p", {class: "muted"}, "Leave empty to get offers whenever you are online. Days: mon-sun, a range (mon-fri) or a list (sat,sun); a shift may run past midnight (fri 22:00-06:00). Time off is whole days, first and last (both off), in the same time zone: no offers on them, online or not."));
  section.addEventListener("toggle", () => { hoursOpen = section.open; });
  return section;
}

function typing() {
  const form = document.getElementById("status-hours");
  if (!form) return false;
  const inputs = [...form.querySelectorAll("input")];
  return form.contains(document.activeElement) || inputs.some((i) => i.value !== i.defaultValue);
}

async function status() {
  if (!me || !me.technician_id) return;
  const tech = await api(`/api/technicians/${encodeURIComponent(me.technician_id)}`);
  mySkills = tech.skills;
  const panel = document.getElementById("status");
  const now = statusNow(tech);
  const drawn = `${tech.shifts.join("; ")}|${tech.time_off.join("; ")}|${tech.timezone}`;
  if (!panel.firstChild) { panel.append(now, hoursForm(tech)); hoursShown = drawn; return; }
  document.getElementById("status-now").replaceWith(now);
  // Just saved (null), or changed elsewhere while nothing is being typed: draw the server's.
  if (hoursShown === null || (drawn !== hoursShown && !typing())) {
    document.getElementById("status-hours").replaceWith(hoursForm(tech));
    hoursShown = drawn;
  }
}

const RECENT_MS = 12 * 3600 * 1000;  // finished jobs stay here for the customer's rating link
const RECORD_EVERY_MS = 30000;  // their record is read again this often, or when a job goes
let me = null;
let held = "";  // the open jobs' ids at the last poll
let recordAt = 0;

function calledOffCard(job) {
  const how = job.ending === "cancelled" ? "cancelled" : "taken off you";
  return el("div", {class: "card", "data-called-off": job.ticket_id},
    el("div", {class: "title"}, `#${job.ticket_id} ${job.title}`),
    el("div", {class: "meta"}, `${how} ${ago(job.ended_at)}: ${job.end_reason || job.ended_by}`));
}

async function calledOff(jobs) {
  const ids = jobs.map((j) => j.id).join(",");
  if (!me || !me.technician_id) return;  // an account not bound to a technician has no record
  if (ids === held && Date.now() - recordAt < RECORD_EVERY_MS) return;
  held = ids;
  recordAt = Date.now();
  const record = await api(`/api/technicians/${encodeURIComponent(me.technician_id)}/history?limit=50&days=1`);
  const lately = record.jobs.filter((j) => ["cancelled", "handed on"].includes(j.ending)
    && j.ended_by !== me.technician_id && Date.now() - Date.parse(j.ended_at) < RECENT_MS);
  document.getElementById("called-off").replaceChildren(
    ...(lately.length ? lately.map(calledOffCard) : [el("p", {class: "muted"}, "Nothing called off lately.")]));
}

function typingOn(id, attribute) {
  // The card of this list whose field has the cursor (redrawing now would take it away), or
  // null.
  const field = document.activeElement;
  if (!document.getElementById(id).contains(field) || field.tagName !== "INPUT" || field.type !== "text") return null;
  return Number(field.closest(`[${attribute}]`).getAttribute(attribute));
}

async function refresh() {
  const [offers, jobs, all] = await Promise.all([
    api("/api/offers?state=pending&brief=true"), api("/api/jobs"), api("/api/jobs?status=all")]);
  if (skillsKnown === null && jobs.length) skillsKnown = await api("/api/skills");
  const done = all.filter((j) => j.state === "resolved" && j.resolved_at && Date.now() - Date.parse(j.resolved_at) < RECENT_MS);
  const offerList = document.getElementById("offers");
  // A page left in the background still says an offer waits, and for how long.
  const soonest = Math.min(...offers.map((o) => Date.parse(o.deadline)));
  document.title = offers.length
    ? `(${offers.length}) offer · ${minutesText(Math.max(0, soonest - Date.now()) / 60000)} left · crowdfix`
    : "crowdfix · my jobs";
  const offerTyped = typingOn("offers", "data-offer");
  if (!offers.some((o) => o.id === offerTyped)) {  // not typing, or that offer is gone
    offerList.replaceChildren(...(offers.length ? offers.map(offerCard) : [el("p", {class: "muted"}, "No offers right now.")]));
  }
  const jobList = document.getElementById("jobs");
  const jobTyped = typingOn("jobs", "data-job");
  if (!jobs.some((j) => j.id === jobTyped)) {
    jobList.replaceChildren(...(jobs.length ? jobs.map(jobCard) : [el("p", {class: "muted"}, "No open jobs.")]));
  }
  document.getElementById("done").replaceChildren(...(done.length ? done.map(jobCard) : [el("p", {class: "muted"}, "Nothing finished lately.")]));
  await Promise.all([calledOff(jobs), status()]);
}

async function start() {
  me = await api("/api/auth/me");
  document.getElementById("me").textContent = me.username;
  await refresh();
  setInterval(refresh, 3000);
}

start();
