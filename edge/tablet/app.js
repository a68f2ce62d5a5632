/* Wayline driver tablet. Plain JS, no framework, nothing from the network but the gateway.
 *
 * Polls /api/status every 2 s. Every POST carries an event_id made when the driver starts
 * the action, so a retried tap or a retried request after a lost answer records once.
 * A tablet not paired with the gateway (401 with "pair") asks for its pairing code once. */
"use strict";

const POLL_MS = 2000;
const RETRIES = 3;
const SIGNATURE_MAX = 32000;
const REASONS = {
  absent: "Nobody home", address_problem: "Address problem", refused: "Refused",
  damaged: "Damaged", no_access: "No access", other: "Other",
};
const STATUS_WORDS = { delivered: "Delivered", picked_up: "Picked up", failed: "Failed", skipped: "Skipped" };

const $ = (id) => document.getElementById(id);
let state = null;        // the last /api/status answer
let busy = false;        // a POST is in flight: no second one

// -- ids ---------------------------------------------------------------------------------

function newEventId() {
  // crypto.randomUUID exists only in secure contexts; the tablet may reach the gateway
  // over plain http on the van's Wi-Fi, where getRandomValues still works.
  if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// -- talking to the gateway --------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function request(method, path, body) {
  const init = { method, headers: {} };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let lastError = null;
  for (let attempt = 0; attempt <= (method === "GET" ? 0 : RETRIES); attempt++) {
    if (attempt) await new Promise((r) => setTimeout(r, 400 * attempt));
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {          // no answer: safe to send again, the event_id makes it once
      lastError = err;
      continue;
    }
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (res.status === 401 && data && data.pair) showPairing();
    if (!res.ok) {
      const msg = (data && (data.error || (typeof data.detail === "string" && data.detail))) || res.statusText;
      throw new ApiError(res.status, msg);
    }
    return data;
  }
  throw new ApiError(0, "Cannot reach the van's gateway" + (lastError ? "" : ""));
}

const HINTS = {
  0: "No connection to the van",
  401: "Not paired with the van",
  404: "Not on this route",
  409: "Already done",
  413: "Photo too large",
  422: "Check the details",
};

function showError(err) {
  const hint = HINTS[err.status] || "Something went wrong";
  banner(`${hint}: ${err.message}`, "error");
}

function banner(text, kind) {
  $("banner-text").textContent = text;
  $("banner").className = "banner" + (kind === "info" ? " info" : "");
  $("banner").hidden = false;
  $("banner").dataset.kind = kind;
}

function hideBanner() { $("banner").hidden = true; }

async function act(method, path, body, doneText) {
  if (busy) return null;
  busy = true;
  setButtons();
  try {
    const answer = await request(method, path, body);
    if (answer && answer.remaining) render({ ...state, ...answer });
    if (doneText) banner(doneText, "info"); else hideBanner();
    poll();
    return answer;
  } catch (err) {
    showError(err);
    return null;
  } finally {
    busy = false;
    setButtons();
  }
}

// -- pairing with the gateway ------------------------------------------------------------

function pairingShown() { return !$("sheet-pair").hidden; }

function showPairing() {
  if (pairingShown()) return;
  closeSheets();
  $("pair-error").hidden = true;
  $("sheet-pair").hidden = false;
  $("pair-code").focus();
}

async function submitPairing(ev) {
  ev.preventDefault();
  const code = $("pair-code").value.trim();
  if (!code) return;
  let res, data = null;
  try {
    res = await fetch("/api/pair", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }),
    });
    try { data = await res.json(); } catch (_) { data = null; }
  } catch (err) {
    res = null;
  }
  if (res && res.ok) {
    $("pair-code").value = "";
    $("sheet-pair").hidden = true;
    banner("Tablet paired with the van", "info");
    poll();
    return;
  }
  $("pair-error").textContent = res ? ((data && data.error) || res.statusText) : "Cannot reach the van's gateway";
  $("pair-error").hidden = false;
}

async function poll() {
  if (pairingShown()) return;
  try {
    render(await request("GET", "/api/status"));
  } catch (err) {
    const conn = $("conn");
    conn.textContent = "No gateway";
    conn.className = "pill offline";
  }
}

// -- rendering ---------------------------------------------------------------------------

function hhmm(epochS) {
  if (epochS === null || epochS === undefined) return "–";
  const d = new Date(epochS * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

function windowText(s) {
  if (s.window_start == null && s.window_end == null) return "any time";
  return `${hhmm(s.window_start)}–${hhmm(s.window_end)}`;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function isLate(s) { return s.eta != null && s.window_end != null && s.eta > s.window_end; }

function render(s) {
  state = s;
  const online = s.connected && s.cloud_online !== false;
  const conn = $("conn");
  conn.textContent = online ? "Online" : "Offline";
  conn.className = "pill " + (online ? "online" : "offline");
  const pending = $("pending");
  pending.textContent = `${s.pending_sync} to sync`;
  pending.className = "pill" + (s.pending_sync ? " waiting" : "");
  const done = s.done.length;
  const total = done + s.remaining.length;
  $("progress").textContent = s.route ? `${done}/${total} done` : "";

  renderNext(s);
  $("remaining-count").textContent = `(${s.remaining.length})`;
  $("done-count").textContent = `(${done})`;
  $("remaining").replaceChildren(...s.remaining.map((stop, i) => remainingItem(stop, i, s.remaining.length)));
  $("done").replaceChildren(...s.done.map(doneItem));
  setButtons();
}

function renderNext(s) {
  const box = $("next");
  const n = s.next;
  if (!s.route) { box.replaceChildren(el("p", { class: "muted" }, "Waiting for today's route…")); return; }
  if (!n) { box.replaceChildren(el("p", { class: "address" }, "All stops done"), el("p", { class: "muted" }, "Drive back to the depot.")); return; }
  const parcels = n.parcels || [];
  box.dataset.stopId = n.stop_id;
  box.replaceChildren(...[
    el("div", { class: "tag" }, n.kind === "pickup" ? "Next: pick-up" : "Next stop", n.committed_next ? " · chosen by you" : ""),
    el("div", { class: "address", "data-testid": "next-address" }, n.address || `${n.lat.toFixed(5)}, ${n.lon.toFixed(5)}`),
    el("div", { class: "customer" }, n.customer || ""),
    el("div", { class: "facts" },
      el("span", {}, "ETA ", el("b", { class: isLate(n) ? "late" : "" }, hhmm(n.eta))),
      el("span", {}, "Window ", el("b", {}, windowText(n))),
      el("span", {}, el("b", {}, String(parcels.length)), parcels.length === 1 ? " parcel" : " parcels"),
      n.status === "arrived" ? el("span", {}, el("b", {}, "Arrived")) : null),
    n.note ? el("div", { class: "muted" }, n.note) : null,
    parcels.length ? el("ul", { class: "parcels" }, parcels.map((p) => el("li", {}, p.barcode))) : null,
  ].filter(Boolean));
}

function remainingItem(stop, i, count) {
  const pos = i + 1;
  return el("li", { class: "stop" + (i === 0 ? " first" : ""), "data-stop-id": stop.stop_id },
    el("span", { class: "pos" }, String(pos)),
    el("div", { class: "what" },
      el("div", { class: "address" }, stop.address || stop.stop_id),
      el("div", { class: "when" },
        stop.customer ? `${stop.customer} · ` : "",
        "ETA ", el("b", { class: isLate(stop) ? "late" : "" }, hhmm(stop.eta)),
        " · ", windowText(stop))),
    el("div", { class: "tools" },
      i > 0 ? el("button", { type: "button", class: "btn", "aria-label": `Do ${stop.address || stop.stop_id} next`, onclick: () => doNext(stop) }, "Next") : null,
      el("button", { type: "button", class: "btn", "aria-label": "Move up", disabled: i === 0, onclick: () => openMove(stop, pos - 1) }, "▲"),
      el("button", { type: "button", class: "btn", "aria-label": "Move down", disabled: pos === count, onclick: () => openMove(stop, pos + 1) }, "▼")),
    stop.manual_reason ? el("div", { class: "manual" }, `Moved: ${stop.manual_reason}`) : null,
  );
}

function doneItem(stop) {
  return el("li", { class: "stop", "data-stop-id": stop.stop_id },
    el("div", { class: "what" },
      el("div", { class: "address" }, stop.address || stop.stop_id),
      el("div", { class: "when" }, stop.customer || "")),
    el("span", { class: `status ${stop.status}` }, STATUS_WORDS[stop.status] || stop.status));
}

function setButtons() {
  const n = state && state.next;
  for (const id of ["btn-deliver", "btn-fail", "btn-arrive"]) $(id).disabled = busy || !n;
  if (n) $("btn-arrive").disabled = busy || n.status === "arrived";
  const route = state && state.route;
  const breakDone = !route || !route.break_duration_s || route.break_taken_at != null;
  $("btn-break").disabled = busy || breakDone;
  $("btn-break").textContent = route && route.break_taken_at != null ? "Break taken" : "Break";
  for (const b of document.querySelectorAll(".stop .tools .btn")) if (busy) b.disabled = true;
  $("deliver-confirm").disabled = busy;
  $("move-confirm").disabled = busy;
}

// -- sheets ------------------------------------------------------------------------------

let current = null;      // {stop, eventId, ...} of the open sheet

function openSheet(id) {
  for (const s of document.querySelectorAll(".sheet")) s.hidden = s.id !== id;
}

function closeSheets() {
  for (const s of document.querySelectorAll(".sheet:not(#sheet-pair)")) s.hidden = true;
  current = null;
}

function where(stop) { return `${stop.address || stop.stop_id}${stop.customer ? " · " + stop.customer : ""}`; }

// deliver ---------------------------------------------------------------------------------

const signature = { strokes: [], drawing: false };

function openDeliver() {
  const stop = state && state.next;
  if (!stop) return;
  current = { stop, eventId: newEventId(), codes: [] };
  $("deliver-title").textContent = stop.kind === "pickup" ? "Pick up" : "Deliver";
  $("deliver-where").textContent = where(stop);
  $("form-deliver").reset();
  $("photo-preview").hidden = true;
  renderCodes();
  openSheet("sheet-deliver");
  sizeCanvas();
  clearSignature();
}

function sizeCanvas() {
  const c = $("signature");
  const ratio = window.devicePixelRatio || 1;
  c.width = Math.round(c.clientWidth * ratio);
  c.height = Math.round(c.clientHeight * ratio);
  const ctx = c.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.lineWidth = 3;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#000";
}

function clearSignature() {
  signature.strokes = [];
  const c = $("signature");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
}

function canvasPoint(ev) {
  const r = $("signature").getBoundingClientRect();
  return [Math.round(ev.clientX - r.left), Math.round(ev.clientY - r.top)];
}

function bindSignature() {
  const c = $("signature");
  c.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    c.setPointerCapture(ev.pointerId);
    signature.drawing = true;
    signature.strokes.push([canvasPoint(ev)]);
  });
  c.addEventListener("pointermove", (ev) => {
    if (!signature.drawing) return;
    ev.preventDefault();
    const stroke = signature.strokes[signature.strokes.length - 1];
    const [x0, y0] = stroke[stroke.length - 1];
    const [x, y] = canvasPoint(ev);
    if (x === x0 && y === y0) return;
    stroke.push([x, y]);
    const ctx = c.getContext("2d");
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const end = () => { signature.drawing = false; };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointercancel", end);
}

/** The signature as SVG path data ("M x y L x y …"), thinned to fit the wire's limit. */
function signaturePath() {
  let step = 1;
  for (;;) {
    const parts = [];
    for (const stroke of signature.strokes) {
      const pts = stroke.filter((_, i) => i % step === 0 || i === stroke.length - 1);
      parts.push(pts.map(([x, y], i) => `${i ? "L" : "M"}${x} ${y}`).join(" "));
    }
    const d = parts.join(" ");
    if (d.length <= SIGNATURE_MAX || step > 64) return d.slice(0, SIGNATURE_MAX);
    step *= 2;
  }
}

function addCode(raw) {
  const code = raw.trim();
  if (!code || !current) return;
  if (!current.codes.includes(code)) current.codes.push(code);
  renderCodes();
}

function renderCodes() {
  const known = new Set(((current && current.stop.parcels) || []).map((p) => p.barcode));
  const codes = current ? current.codes : [];
  $("barcodes").replaceChildren(...codes.map((code) =>
    el("li", { class: known.has(code) ? "known" : "unknown", title: known.has(code) ? "on this stop" : "not a parcel of this stop" },
      known.has(code) ? `✓ ${code}` : `? ${code}`,
      el("button", { type: "button", "aria-label": `Remove ${code}`, onclick: () => { current.codes = current.codes.filter((c) => c !== code); renderCodes(); } }, "✕"))));
}

async function submitDeliver(ev) {
  ev.preventDefault();
  if (!current) return;
  addCode($("barcode").value);
  $("barcode").value = "";
  const form = new FormData();
  form.append("event_id", current.eventId);
  const recipient = $("recipient").value.trim();
  if (recipient) form.append("recipient", recipient);
  if (signature.strokes.length) form.append("signature_svg", signaturePath());
  if (current.codes.length) form.append("barcodes", current.codes.join("\n"));
  const photo = $("photo").files[0];
  if (photo) form.append("photo", photo, photo.name || "photo.jpg");
  const stop = current.stop;
  const verb = stop.kind === "pickup" ? "Picked up" : "Delivered";
  const answer = await act("POST", `/api/stops/${encodeURIComponent(stop.stop_id)}/deliver`, form, `${verb}: ${stop.address || stop.stop_id}`);
  if (answer) closeSheets();
}

// fail ------------------------------------------------------------------------------------

function openFail() {
  const stop = state && state.next;
  if (!stop) return;
  current = { stop, eventId: newEventId() };
  $("fail-where").textContent = where(stop);
  openSheet("sheet-fail");
}

async function submitFail(reason) {
  if (!current) return;
  const stop = current.stop;
  const answer = await act("POST", `/api/stops/${encodeURIComponent(stop.stop_id)}/fail`,
    { reason, event_id: current.eventId }, `Failed (${REASONS[reason] || reason}): ${stop.address || stop.stop_id}`);
  if (answer) closeSheets();
}

// move ------------------------------------------------------------------------------------

function openMove(stop, position) {
  current = { stop, position, eventId: newEventId() };
  $("move-title").textContent = `Move to position ${position}`;
  $("move-where").textContent = where(stop);
  $("move-reason").value = "";
  openSheet("sheet-move");
}

async function submitMove(ev) {
  ev.preventDefault();
  if (!current) return;
  const reason = $("move-reason").value.trim();
  if (!reason) { $("move-reason").focus(); banner("Give a reason for moving the stop", "error"); return; }
  const { stop, position, eventId } = current;
  const answer = await act("POST", `/api/stops/${encodeURIComponent(stop.stop_id)}/move`,
    { position, reason, event_id: eventId }, `Moved ${stop.address || stop.stop_id} to ${position}`);
  if (answer) closeSheets();
}

// simple actions -------------------------------------------------------------------------

function doNext(stop) {
  act("POST", `/api/stops/${encodeURIComponent(stop.stop_id)}/next`, { event_id: newEventId() },
    `Next: ${stop.address || stop.stop_id}`);
}

function arrive() {
  const stop = state && state.next;
  if (!stop) return;
  act("POST", `/api/stops/${encodeURIComponent(stop.stop_id)}/arrive`, { event_id: newEventId() },
    `Arrived: ${stop.address || stop.stop_id}`);
}

function takeBreak() {
  act("POST", "/api/break", { event_id: newEventId() }, "Break recorded: the route is planned around it");
}

// -- wiring ------------------------------------------------------------------------------

function wire() {
  $("btn-deliver").addEventListener("click", openDeliver);
  $("btn-fail").addEventListener("click", openFail);
  $("btn-arrive").addEventListener("click", arrive);
  $("btn-break").addEventListener("click", takeBreak);
  $("banner-close").addEventListener("click", hideBanner);
  for (const b of document.querySelectorAll(".sheet-cancel")) b.addEventListener("click", closeSheets);
  for (const b of document.querySelectorAll(".reason")) b.addEventListener("click", () => submitFail(b.dataset.reason));
  for (const b of document.querySelectorAll(".quick-reason")) b.addEventListener("click", () => { $("move-reason").value = b.textContent; });
  $("form-deliver").addEventListener("submit", submitDeliver);
  $("form-move").addEventListener("submit", submitMove);
  $("form-pair").addEventListener("submit", submitPairing);
  $("sig-clear").addEventListener("click", clearSignature);
  $("barcode").addEventListener("keydown", (ev) => {
    // a keyboard-wedge scanner types the code and Enter: add it, do not submit the form
    if (ev.key === "Enter") { ev.preventDefault(); addCode(ev.target.value); ev.target.value = ""; }
  });
  $("photo").addEventListener("change", () => {
    const f = $("photo").files[0];
    const img = $("photo-preview");
    if (img.src) URL.revokeObjectURL(img.src);
    if (f) { img.src = URL.createObjectURL(f); img.hidden = false; } else img.hidden = true;
  });
  bindSignature();
}

wire();
poll();
setInterval(poll, POLL_MS);
