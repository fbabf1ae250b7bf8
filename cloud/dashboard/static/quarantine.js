// Quarantine: the messages the ingest refused, with the reason, filterable by reason and device.
"use strict";

const filters = {reason: param("reason") || "", device_id: param("device_id") || ""};

function setFilter(key, value) {
  filters[key] = value;
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  history.replaceState(null, "", `${location.pathname}${query.toString() ? "?" + query : ""}`);
  desk.refresh();
}

async function refresh() {
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  const [byReason, rows] = await Promise.all([api("/api/quarantine/counts"), api(`/api/quarantine?limit=200&${query}`)]);
  const total = Object.values(byReason).reduce((a, b) => a + b, 0);
  counts([[total, "refused in all", total ? "warn" : ""]]);
  if (document.activeElement && document.activeElement.name === "device_id") return;
  const reasons = el("div", {class: "chips"},
    el("button", {type: "button", class: filters.reason ? "chip" : "chip on"}, `all (${total})`),
    ...Object.entries(byReason).map(([reason, n]) => el("button", {type: "button", "data-reason": reason, class: filters.reason === reason ? "chip on" : "chip"}, `${reason} (${n})`)));
  for (const chip of reasons.children) chip.addEventListener("click", () => setFilter("reason", chip.dataset.reason || ""));
  const device = el("input", {type: "search", name: "device_id", value: filters.device_id, placeholder: "device id", "aria-label": "device id"});
  device.addEventListener("change", () => { device.blur(); setFilter("device_id", device.value.trim()); });
  document.getElementById("main").replaceChildren(
    el("h2", {}, "Quarantine"),
    el("p", {class: "muted"}, "Messages the ingest refused. Nothing here became a ticket or a reading; fix the sender, then the next message goes through."),
    el("div", {class: "filters"}, reasons, device),
    el("table", {id: "quarantine"},
      el("thead", {}, el("tr", {}, ...["Received", "Reason", "Device", "Topic", "Detail", "Payload"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(rows.length ? rows.map((r) => el("tr", {"data-quarantined": r.id},
        el("td", {}, clock(r.received_at)), el("td", {}, pill(r.reason, "warn")), el("td", {}, r.device_id || el("span", {class: "muted"}, "unknown")),
        el("td", {class: "mono"}, r.topic), el("td", {}, r.detail),
        el("td", {class: "mono payload", title: `${r.size} bytes`}, r.payload.length > 160 ? `${r.payload.slice(0, 160)}…` : r.payload)))
        : [el("tr", {}, el("td", {colspan: 6, class: "muted"}, "Nothing refused matches."))]))));
}

desk("quarantine", refresh);
