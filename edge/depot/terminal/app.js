/* Wayline depot terminal: a keyboard-wedge scanner types into #scan, always focused.
 * A terminal not paired with the depot agent (401 with "pair") asks for its code once. */
"use strict";

const $ = (id) => document.getElementById(id);
const scan = $("scan");
let queue = Promise.resolve();
let statusTimer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await res.json(); } catch (e) { data = { error: `HTTP ${res.status}` }; }
  if (res.status === 401 && data.pair) showPairing();
  return { ok: res.ok, status: res.status, data };
}

/* -- pairing with the depot agent --------------------------------------------------------- */

function showPairing() {
  const dlg = $("pairing");
  if (dlg.open) return;
  $("pair-error").hidden = true;
  dlg.showModal();
  $("pair-code").focus();
}

$("pair-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const code = $("pair-code").value.trim();
  if (!code) return;
  let res = null, data = {};
  try {
    res = await fetch("/api/pair", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }),
    });
    try { data = await res.json(); } catch (e) { data = {}; }
  } catch (e) { res = null; }
  if (res && res.ok) {
    $("pair-code").value = "";
    $("pairing").close();
    refocus();
    refresh();
    return;
  }
  $("pair-error").textContent = res ? (data.error || `HTTP ${res.status}`) : "the depot agent does not answer";
  $("pair-error").hidden = false;
});

/* -- the scan field: always focused; Enter or Tab ends a read --------------------------- */

function refocus() {
  if (document.querySelector("dialog[open]")) return;
  setTimeout(() => { if (document.activeElement !== scan) scan.focus(); }, 0);
}
scan.addEventListener("blur", refocus);
window.addEventListener("focus", refocus);
document.addEventListener("click", refocus);

scan.addEventListener("keydown", (ev) => {
  if (ev.key !== "Enter" && ev.key !== "Tab") return;
  ev.preventDefault();
  const code = scan.value;
  scan.value = "";
  if (code.trim() === "") return;
  queue = queue.then(() => submit(code));
});
$("scan-form").addEventListener("submit", (ev) => ev.preventDefault());

async function submit(code) {
  let answer;
  try {
    answer = await api("POST", "/api/scan", { code });
  } catch (e) {
    answer = { ok: false, status: 0, data: { error: "the depot agent does not answer" } };
  }
  show(code, answer);
  document.body.dataset.scans = String(Number(document.body.dataset.scans) + 1);
  scheduleStatus(400);
}

function show(code, answer) {
  const dest = $("dest");
  const d = answer.data;
  if (answer.ok) {
    dest.dataset.tone = d.tone;
    dest.dataset.result = d.result;
    if (d.colour === null || d.colour === undefined || d.tone === "stop") delete dest.dataset.colour;
    else dest.dataset.colour = String(d.colour);
    $("dest-title").textContent = d.title;
    $("dest-action").textContent = d.action;
    $("dest-code").textContent = d.barcode || code.trim();
  } else {
    dest.dataset.tone = "error";
    dest.dataset.result = "refused";
    delete dest.dataset.colour;
    $("dest-title").textContent = "NOT A BARCODE";
    $("dest-action").textContent = d.error || "refused";
    $("dest-code").textContent = JSON.stringify(code);
  }
  const li = el("li", { class: answer.ok ? d.tone : "error" },
    `${new Date().toLocaleTimeString()}  ${(answer.ok ? d.barcode || code : code).trim()}  ` +
    `${answer.ok ? d.title : "refused"}`);
  const recent = $("recent");
  recent.prepend(li);
  while (recent.children.length > 8) recent.lastChild.remove();
}

/* -- status: vehicles, re-sorts, exceptions ----------------------------------------------- */

function scheduleStatus(ms) {
  if (statusTimer !== null) return;
  statusTimer = setTimeout(async () => { statusTimer = null; await refresh(); }, ms);
}

async function refresh() {
  if ($("pairing").open) return;
  let r;
  try { r = await api("GET", "/api/status"); } catch (e) { return; }
  if (!r.ok) return;
  const s = r.data;
  $("depot").textContent = `Depot ${s.depot_id}`;
  const online = s.connected && s.cloud_online !== false;
  $("conn").textContent = online ? "Online" : "Offline";
  $("conn").className = `pill ${online ? "online" : "offline"}`;
  $("pending").textContent = `${s.pending_sync} to sync`;
  const c = s.counts;
  $("counts").textContent = Object.keys(c).sort().map((k) => `${k} ${c[k]}`).join(" · ");
  renderVehicles(s.vehicles);
  renderResorts(s.resorts);
  renderExceptions(s.exceptions);
}

function renderVehicles(vehicles) {
  const ul = $("vehicles");
  ul.replaceChildren(...vehicles.map((v) => {
    const pct = v.parcels ? Math.round((100 * v.sorted) / v.parcels) : 0;
    const swatches = v.containers.map((k) =>
      el("span", { title: k.container_id }, el("span", { class: `swatch c${k.colour % 8}` }), `${k.container_id} `));
    const released = v.released_ms !== null;
    return el("li", { class: "vehicle", "data-vehicle": v.vehicle_id },
      el("div", { class: "name" }, `${v.vehicle_id} `,
        el("span", { class: "meta" }, `${v.route_id} v${v.version}`)),
      el("div", { class: "bar" }, el("span", { style: `width:${pct}%` })),
      el("div", { class: "meta", "data-testid": `progress-${v.vehicle_id}` },
        `${v.sorted}/${v.parcels} sorted · ${v.missing} missing` +
        (v.overflow ? ` · ${v.overflow} overflow` : "") +
        (v.resorts ? ` · ${v.resorts} to re-sort` : "") + (released ? " · RELEASED" : "")),
      el("div", { class: "meta" }, ...swatches),
      el("div", {},
        el("button", { class: "btn", type: "button", onclick: () => openChecklist(v.vehicle_id) }, "Checklist"),
        el("button", { class: "btn primary", type: "button", "data-testid": `release-${v.vehicle_id}`,
          onclick: () => release(v.vehicle_id) }, released ? "Released" : "Release load")));
  }));
}

function renderResorts(resorts) {
  $("resort-count").textContent = resorts.length || "";
  $("resorts").replaceChildren(...resorts.map((r) => el("li", { "data-parcel": r.parcel_id },
    r.kind === "pull"
      ? `${r.barcode}: pull from ${r.from_vehicle} ${r.from_container} → returns`
      : `${r.barcode}: ${r.from_vehicle} ${r.from_container} #${r.from_position} → ` +
        `${r.to_vehicle} ${r.to_container} #${r.to_position}`)));
}

function renderExceptions(items) {
  $("exception-count").textContent = items.length || "";
  $("exceptions").replaceChildren(...items.map((x) => el("li", { "data-category": x.category },
    el("span", { class: "cat" }, x.category.replace(/_/g, " ")), ` ${x.detail} `,
    el("div", { class: "meta" }, x.action || ""),
    el("button", { class: "btn", type: "button", onclick: async () => {
      await api("POST", `/api/exceptions/${encodeURIComponent(x.exception_id)}/handled`);
      refresh();
    } }, "Handled"))));
}

async function release(vehicleId) {
  let r = await api("POST", `/api/vehicles/${encodeURIComponent(vehicleId)}/release`, { force: false });
  if (r.status === 409 && /missing|re-sort/.test(r.data.error || "")) {
    if (window.confirm(`${r.data.error}.\nRelease ${vehicleId} anyway?`)) {
      r = await api("POST", `/api/vehicles/${encodeURIComponent(vehicleId)}/release`, { force: true });
    }
  }
  const dest = $("dest");
  delete dest.dataset.colour;
  dest.dataset.tone = r.ok ? "ok" : "warn";
  dest.dataset.result = r.ok ? "released" : "release_refused";
  $("dest-title").textContent = r.ok ? `${vehicleId} READY` : `${vehicleId} NOT RELEASED`;
  $("dest-action").textContent = r.ok
    ? `${r.data.loaded} parcels loaded, ${r.data.missing.length} missing: the cloud has been told.`
    : r.data.error;
  $("dest-code").textContent = "";
  refresh();
  refocus();
}

async function openChecklist(vehicleId) {
  const r = await api("GET", `/api/vehicles/${encodeURIComponent(vehicleId)}/checklist`);
  if (!r.ok) return;
  $("checklist-title").textContent =
    `${vehicleId}: ${r.data.sorted} sorted, ${r.data.missing} missing (deepest last)`;
  $("checklist-rows").replaceChildren(...r.data.parcels.map((p) => el("li", { class: p.state },
    `${p.barcode} · ${p.container} #${p.position} · stop ${p.stop_index} · ${p.state}`)));
  const dlg = $("checklist");
  dlg.addEventListener("close", refocus, { once: true });
  dlg.showModal();
}

refresh();
setInterval(refresh, 2000);
scan.focus();
