// The operator's board: tickets by state and the fleet, refreshed on every server-sent change.
"use strict";

const STATES = ["new", "dispatching", "escalated", "assigned", "en_route", "on_site"];
const LABELS = {new: "New", dispatching: "Dispatching", escalated: "Escalated", assigned: "Assigned",
                en_route: "En route", on_site: "On site"};
let technicians = [];

function age(iso) {
  const minutes = Math.round((Date.now() - Date.parse(iso)) / 60000);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function sla(ticket) {
  const left = Math.round((Date.parse(ticket.sla_arrive_by) - Date.now()) / 60000);
  if (ticket.on_site_at) return el("span", {class: "sla"}, "on site");
  if (left < 0) return el("span", {class: "sla breach"}, `SLA breached ${-left} min ago`);
  return el("span", {class: left < 12 ? "sla warn" : "sla"}, `on site due in ${left} min`);
}

function assignForm(ticket) {
  const select = el("select", {"aria-label": "technician"});
  for (const tech of technicians) select.append(el("option", {value: tech.id}, `${tech.name} (${tech.kind})`));
  const form = el("form", {}, select, el("button", {type: "submit"}, "Assign"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await post(`/api/tickets/${ticket.id}/assign`,
               {technician_id: select.value, reason: "assigned on the desk"});
    refresh();
  });
  return form;
}

function card(ticket) {
  const node = el("div", {class: `card ${ticket.priority}`, "data-ticket": ticket.id},
    el("div", {class: "title"}, `#${ticket.id} ${ticket.title}`),
    el("div", {class: "meta"}, `${ticket.priority} · ${ticket.category} · ${ticket.device_id || ticket.site_id}`),
    el("div", {class: "meta"}, `${age(ticket.opened_at)} old · `, sla(ticket)));
  if (ticket.technician_id) node.append(el("div", {class: "meta"}, `technician: ${ticket.technician_id}`));
  if (["new", "dispatching", "escalated"].includes(ticket.state) && technicians.length) node.append(assignForm(ticket));
  return node;
}

function renderBoard(tickets) {
  const board = document.getElementById("board");
  board.replaceChildren(...STATES.map((state) => {
    const mine = tickets.filter((t) => t.state === state);
    return el("div", {class: "column", "data-state": state},
      el("h3", {}, `${LABELS[state]} (${mine.length})`), ...mine.map(card));
  }));
}

function renderFleet(devices) {
  const rows = devices.map((d) => el("tr", {"data-device": d.id},
    el("td", {}, d.id), el("td", {}, d.site_id || ""), el("td", {}, d.profile || ""),
    el("td", {class: `presence ${d.presence}`}, d.presence),
    el("td", {}, d.last_seen_at ? `${age(d.last_seen_at)} ago` : "never")));
  document.querySelector("#fleet tbody").replaceChildren(...rows);
  const counts = {online: 0, stale: 0, offline: 0};
  for (const d of devices) if (d.presence in counts) counts[d.presence] += 1;
  return counts;
}

function renderCounts(counts, open) {
  const item = (n, label) => el("span", {class: "count"}, el("b", {}, String(n)), label);
  document.getElementById("counts").replaceChildren(
    item(counts.online, "online"), item(counts.stale, "stale"), item(counts.offline, "offline"),
    item(open, "open tickets"));
}

async function refresh() {
  const [page, devices, techs] = await Promise.all([
    api("/api/tickets?status=open&limit=500"), api("/api/devices"), api("/api/technicians")]);
  technicians = techs.filter((t) => t.available && !t.paused);
  renderBoard(page.items);
  renderCounts(renderFleet(devices), page.total);
}

async function start() {
  const me = await api("/api/auth/me");
  if (me.role === "technician") { location.href = "/ui/tech"; return; }
  document.getElementById("me").textContent = `${me.username} (${me.role})`;
  await refresh();
  const stream = new EventSource("/api/stream");
  const live = document.getElementById("live");
  stream.addEventListener("open", () => live.classList.add("on"));
  stream.addEventListener("error", () => live.classList.remove("on"));
  stream.addEventListener("change", () => refresh());
}

start();
