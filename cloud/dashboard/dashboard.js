// Wayline ops dashboard: polls /v1/dashboard/summary every 2 s (session cookie), draws the
// network on an inline SVG with an equirectangular projection, and lets ops approve or
// reject escalations. No external assets.
"use strict";

const POLL_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
let query = "";
let busy = false;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function ago(ms, now) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function pct(x) { return x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`; }

function fillRows(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows);
}

function drawMap(data) {
  const map = document.getElementById("map");
  const points = [];
  for (const d of data.depots) points.push([d.lat, d.lon]);
  for (const v of data.vehicles) if (v.lat !== null && v.lat !== undefined) points.push([v.lat, v.lon]);
  for (const r of data.routes) for (const s of r.stops) points.push([s[1], s[2]]);
  map.replaceChildren();
  if (!points.length) return;
  let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
  for (const [lat, lon] of points) {
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
  }
  // equirectangular: x = lon * cos(mid latitude), y = -lat, fitted into the view box
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const w = Math.max((maxLon - minLon) * k, 1e-3), h = Math.max(maxLat - minLat, 1e-3);
  const scale = Math.min(560 / w, 360 / h);
  const x = lon => 20 + ((lon - minLon) * k) * scale + (560 - w * scale) / 2;
  const y = lat => 20 + (maxLat - lat) * scale + (360 - h * scale) / 2;
  for (const r of data.routes) {
    const path = [r.depot, ...r.stops.map(s => [s[1], s[2]])];
    map.append(svg("polyline", {
      points: path.map(([la, lo]) => `${x(lo).toFixed(1)},${y(la).toFixed(1)}`).join(" "),
      fill: "none", stroke: "#1971c2", "stroke-width": 1.2, "stroke-opacity": 0.6,
      "data-route": r.route_id,
    }));
    for (const s of r.stops) {
      const done = s[3] !== "open";
      map.append(svg("circle", {
        cx: x(s[2]), cy: y(s[1]), r: 3, fill: done ? "#2f9e44" : "#fff",
        stroke: done ? "#2f9e44" : "#1971c2", "stroke-width": 1.5, "data-stop": s[0],
      }));
    }
  }
  for (const d of data.depots) {
    map.append(svg("rect", { x: x(d.lon) - 5, y: y(d.lat) - 5, width: 10, height: 10,
      fill: "#1d2430", "data-depot": d.depot_id }));
  }
  for (const v of data.vehicles) {
    if (v.lat === null || v.lat === undefined) continue;
    const g = svg("g", { class: "vehicle", "data-vehicle": v.vehicle_id,
      "data-lat": v.lat, "data-lon": v.lon });
    g.append(svg("circle", { cx: x(v.lon), cy: y(v.lat), r: 6, fill: "#d9480f" }));
    const label = svg("text", { x: x(v.lon) + 8, y: y(v.lat) + 4, "font-size": 11 });
    label.textContent = v.vehicle_id;
    g.append(label);
    map.append(g);
  }
}

async function decide(itemId, verb) {
  let why = "";
  if (verb === "reject") {
    why = window.prompt(`Why reject ${itemId}?`) || "";
    if (!why.trim()) return;
  }
  const r = await fetch(`/v1/exceptions/${encodeURIComponent(itemId)}/${verb}`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ why: why || "approved from the dashboard" }), credentials: "same-origin",
  });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    window.alert(body.error || body.detail || `HTTP ${r.status}`);
  }
  refresh();
}

async function finishTask(taskId) {
  const r = await fetch(`/v1/tasks/${encodeURIComponent(taskId)}/done`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ note: "done from the dashboard" }),
  });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    window.alert(body.error || body.detail || `HTTP ${r.status}`);
  }
  refresh();
}

function render(data) {
  const now = data.now_ms;
  document.getElementById("who").textContent = `${data.user.name} (${data.user.roles.join(", ")})`;
  document.getElementById("clock").textContent = new Date(now).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  document.getElementById("link").textContent = `broker ${data.sync.connected ? "connected" : "offline"}, ${data.sync.pending_down} down pending`;
  drawMap(data);
  fillRows(document.getElementById("vehicles"), data.vehicles.map(v => {
    const tr = el("tr", { "data-vehicle": v.vehicle_id });
    const pos = v.lat === null || v.lat === undefined ? "–" : `${v.lat.toFixed(5)}, ${v.lon.toFixed(5)}`;
    for (const t of [v.vehicle_id, v.fleet_id || "–", v.plan_status || "–", v.link_status || "unknown",
      ago(v.last_contact_ms, now), pos, String(v.pending_sync)]) tr.append(el("td", {}, t));
    tr.children[5].className = "position";
    return tr;
  }));
  const s = data.stats;
  document.getElementById("automation").textContent =
    `${s.incidents} exceptions, ${s.auto_resolved_share === null ? "–" : pct(s.auto_resolved_share)} resolved by policy`;
  document.getElementById("queue-empty").hidden = data.queue.length > 0;
  fillRows(document.getElementById("queue"), data.queue.map(item => {
    const tr = el("tr", { "data-item": item.item_id });
    tr.append(el("td", {}, item.item_id), el("td", {}, item.cls), el("td", {}, String(item.count)),
      el("td", { class: `status-${item.status}` }, item.status.replace("_", " ")),
      el("td", {}, `${item.decision.detail || ""} ${item.vehicle_id || item.carrier_id || ""}`.trim()),
      el("td", {}, `${item.recommended.label} (€${item.recommended.cost})`));
    const cell = el("td");
    const ok = el("button", { class: "approve", "data-item": item.item_id }, "Approve");
    ok.addEventListener("click", () => decide(item.item_id, "approve"));
    const no = el("button", { class: "reject", "data-item": item.item_id }, "Reject");
    no.addEventListener("click", () => decide(item.item_id, "reject"));
    cell.append(ok, " ", no);
    tr.append(cell);
    return tr;
  }));
  const actions = data.actions || [];
  document.getElementById("actions-empty").hidden = actions.length > 0;
  fillRows(document.getElementById("actions"), actions.map(a => {
    const tr = el("tr", { "data-action": a.action_id, "data-item": a.item_id, "data-status": a.status });
    for (const t of [new Date(a.updated_ms).toISOString().slice(11, 19), a.item_id, a.cls, a.label,
      a.by, a.status, (a.outcome && a.outcome.did) || "–"]) tr.append(el("td", {}, t));
    tr.children[5].className = `status-${a.status}`;
    tr.children[6].className = "outcome";
    return tr;
  }));
  const tasks = data.tasks || [];
  document.getElementById("tasks-empty").hidden = tasks.length > 0;
  fillRows(document.getElementById("tasks"), tasks.map(t => {
    const tr = el("tr", { "data-task": t.task_id });
    tr.append(el("td", {}, new Date(t.created_ms).toISOString().slice(11, 19)), el("td", {}, t.task_id),
      el("td", {}, t.text));
    const cell = el("td");
    const done = el("button", { class: "done", "data-task": t.task_id }, "Done");
    done.addEventListener("click", () => finishTask(t.task_id));
    cell.append(done);
    tr.append(cell);
    return tr;
  }));
  document.getElementById("orders").replaceChildren(
    ...Object.entries(data.orders).map(([k, n]) => el("li", { "data-state": k }, `${k}: ${n}`)));
  fillRows(document.getElementById("fleets"), data.fleets.map(f => {
    const tr = el("tr", { "data-fleet": f.fleet_id });
    for (const t of [f.fleet_id, f.kind, f.status, `${f.assigned} / ${f.capacity}`, pct(f.utilisation),
      f.delivered ? `${pct(f.on_time_rate)} of ${f.delivered}` : "–"]) tr.append(el("td", {}, t));
    return tr;
  }));
  fillRows(document.getElementById("decisions"), data.decisions.map(d => {
    const tr = el("tr", { "data-decision": d.decision_id });
    for (const t of [new Date(d.at_ms).toISOString().slice(11, 19), d.kind, d.rule, d.approved_by,
      d.status, d.decision_id]) tr.append(el("td", {}, t));
    return tr;
  }));
}

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const r = await fetch(`/v1/dashboard/summary?q=${encodeURIComponent(query)}`, { credentials: "same-origin" });
    if (r.status === 401) { window.location = "/dashboard/login"; return; }
    if (r.ok) render(await r.json());
  } catch (e) {
    document.getElementById("link").textContent = "coordinator unreachable";
  } finally {
    busy = false;
  }
}

document.getElementById("decision-search").addEventListener("input", e => {
  query = e.target.value; refresh();
});
refresh();
setInterval(refresh, POLL_MS);
