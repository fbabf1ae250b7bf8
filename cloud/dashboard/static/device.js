// A device: presence and health with their reasons, the last heartbeat, a chart per signal of
// the recent window, active faults, the fault history and the device's tickets.
"use strict";

const DEVICE = param("id");
let windowMin = Number(param("minutes")) || 60;

function facts(pairs) {
  return el("dl", {class: "facts"}, ...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]).flat());
}

function windowPicker() {
  const select = el("select", {"aria-label": "window"},
    ...[15, 60, 360].map((m) => el("option", {value: m, selected: m === windowMin}, `last ${minutesText(m)}`)));
  select.addEventListener("change", () => { windowMin = Number(select.value); desk.refresh(); });
  return select;
}

function ticketRows(items) {
  if (!items.length) return [el("tr", {}, el("td", {colspan: 5, class: "muted"}, "No tickets."))];
  return items.map((t) => el("tr", {"data-ticket-row": t.id},
    el("td", {}, el("a", {href: `/ui/ticket?id=${t.id}`}, `#${t.id}`)), el("td", {}, t.title),
    el("td", {}, pill(t.state)), el("td", {}, t.priority), el("td", {}, clock(t.opened_at))));
}

async function refresh() {
  if (!DEVICE) { document.getElementById("main").replaceChildren(el("p", {}, "No device given: open one from the desk.")); return; }
  const [device, telemetry, tickets] = await Promise.all([
    api(`/api/devices/${encodeURIComponent(DEVICE)}`),
    api(`/api/devices/${encodeURIComponent(DEVICE)}/telemetry?minutes=${windowMin}`),
    api(`/api/tickets?device_id=${encodeURIComponent(DEVICE)}&limit=50`)]);
  document.title = `crowdfix · ${device.id}`;
  const units = Object.fromEntries(device.readings.map((r) => [r.name, r.unit]));
  const charts = Object.entries(telemetry).map(([name, series]) =>
    el("figure", {class: "panel", "data-signal": name}, el("figcaption", {}, name), lineChart(series, {unit: units[name] || ""})));
  const latest = device.readings.map((r) => el("span", {class: "reading"}, el("b", {}, `${niceNumber(r.value)}${r.unit ? " " + r.unit : ""}`), ` ${r.name}`));
  counts([[device.presence, "presence", device.presence === "online" ? "ok" : "bad"],
          [device.health, "health", device.health === "ok" ? "ok" : device.health === "fault" ? "bad" : "warn"],
          [tickets.items.filter((t) => !["resolved", "closed", "cancelled"].includes(t.state)).length, "open tickets"]]);
  document.getElementById("main").replaceChildren(
    el("div", {class: "crumbs"}, el("a", {href: "/ui/"}, "Desk"), " › ", device.id),
    el("h2", {}, `${device.id}${device.name ? " · " + device.name : ""}`),
    el("div", {class: "grid2"},
      el("section", {class: "panel"}, el("h3", {}, "Device"),
        facts([["Site", device.site_id], ["Profile", device.profile], ["Criticality", device.criticality],
               ["Presence", el("span", {class: `presence ${device.presence}`}, `${device.presence} since ${clock(device.presence_since)}`)],
               ["Health", el("span", {class: `health ${device.health}`}, device.health)],
               ["Why", device.health_reasons.join("; ")],
               ["Maintenance", device.maintenance ? "yes: no tickets are opened" : null]])),
      el("section", {class: "panel", id: "heartbeat"}, el("h3", {}, "Last heartbeat"),
        facts([["Last seen", `${ago(device.last_seen_at)} (${clock(device.last_seen_at)})`],
               ["Agent version", device.agent_version || "unknown"],
               ["Heartbeat every", device.heartbeat_interval_s ? `${device.heartbeat_interval_s} s` : "unknown"],
               ["Backlog", device.backlog === null ? "unknown" : `${device.backlog} message(s)`],
               ["Oldest waiting", device.oldest_pending_s ? `${Math.round(device.oldest_pending_s)} s` : "none"],
               ["Telemetry dropped", device.telemetry_dropped === null ? "unknown" : String(device.telemetry_dropped)],
               ["Config", device.config_hash ? device.config_hash.slice(0, 12) : null]]))),
    el("section", {}, el("h3", {}, "Telemetry ", windowPicker(),
      desk.grafana ? el("a", {href: `${desk.grafana}?var-device=${encodeURIComponent(device.id)}`, target: "_blank", rel: "noopener"}, "history in Grafana ↗") : null),
      el("div", {class: "readings"}, ...latest),
      el("div", {class: "charts"}, ...(charts.length ? charts : [el("p", {class: "muted"}, "No readings in the window.")]))),
    el("div", {class: "grid2"},
      el("section", {}, el("h3", {}, "Faults"),
        el("table", {id: "faults"}, el("thead", {}, el("tr", {}, ...["Code", "Severity", "State", "Summary", "Raised", "Raises"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...(device.faults.length ? device.faults.map((f) => el("tr", {},
            el("td", {}, f.code), el("td", {class: `fault ${f.severity}`}, f.severity), el("td", {}, f.active ? pill("active", "bad") : pill("cleared", "ok")),
            el("td", {}, f.summary), el("td", {}, clock(f.raised_at)), el("td", {class: "num"}, String(f.raises))))
            : [el("tr", {}, el("td", {colspan: 6, class: "muted"}, "No faults reported."))])))),
      el("section", {}, el("h3", {}, "Fault history"),
        el("table", {id: "fault-history"}, el("thead", {}, el("tr", {}, ...["Time", "Code", "Change"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...(device.fault_history.length ? device.fault_history.map((t) => el("tr", {},
            el("td", {}, clock(t.at)), el("td", {}, t.code), el("td", {}, pill(t.state, t.state === "raised" ? "bad" : "ok"))))
            : [el("tr", {}, el("td", {colspan: 3, class: "muted"}, "Nothing raised or cleared yet."))]))))),
    el("section", {}, el("h3", {}, "Tickets"),
      el("table", {id: "tickets"}, el("thead", {}, el("tr", {}, ...["Ticket", "Title", "State", "Priority", "Opened"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...ticketRows(tickets.items)))));
}

desk("device", refresh);
