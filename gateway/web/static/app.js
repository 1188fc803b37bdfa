// The installer's live page: one snapshot a second from /api/events (server-sent events),
// drawn with the DOM and inline SVG. Every text from the gateway goes in through textContent,
// never as HTML: device details and log lines come from outside.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const RSSI_MIN = -90;
const RSSI_MAX = -20;

const ui = { view: "store", antenna: null, source: null, last: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function fill(parent, children) {
  parent.replaceChildren(...children);
}

function fmt(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function duration(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function bytes(n) {
  if (n < 1 << 20) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

// How a subject is named: customers by (a short form of) their pseudonym, items by GTIN+serial.
function subjectText(subject) {
  if (!subject) return "";
  if (subject.kind === "customer") {
    return subject.id ? `customer ${subject.id.slice(0, 12)}` : "customer";
  }
  if (subject.gtin) return `GTIN ${subject.gtin} · ${subject.serial}`;
  return `EPC ${subject.epc}`;
}

function stateCell(state) {
  return el("td", { class: `state state-${state}` }, state);
}

function drawDevices(devices) {
  const rows = devices.map((d) =>
    el("tr", { "data-device": d.id }, el("td", {}, d.id), stateCell(d.state),
      el("td", {}, d.detail || "")));
  fill(document.querySelector("#devices tbody"), rows);
}

function drawOutbox(outbox) {
  const pairs = [
    ["broker", outbox.connected ? "connected" : "not connected"],
    ["backlog", `${outbox.backlog} events`],
    ["oldest", outbox.backlog ? duration(outbox.oldest_age_s) : "–"],
    ["delivered", `${fmt(outbox.delivered_per_s)} events/s (${outbox.delivered} in all)`],
    ["storage", `${outbox.storage}, ${bytes(outbox.bytes)} of ${bytes(outbox.max_bytes)}`],
  ];
  fill(document.getElementById("outbox"),
    pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)]));
}

function drawErrors(errors) {
  const items = errors.length ? errors.map((e) =>
    el("li", { class: e.level }, el("span", { class: "ts" }, e.ts.slice(11, 19)),
      `${e.source}: ${e.message}`)) : [el("li", {}, "none since the page started")];
  fill(document.getElementById("errors"), items);
}

function histogram(counts, edges) {
  const width = 140, height = 28, gap = 1;
  const bar = width / counts.length;
  const top = Math.max(1, ...counts);
  const chart = svg("svg", { class: "hist", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img" });
  const title = svg("title");
  title.textContent = counts.map((n, i) => `${edges[i]}..${edges[i + 1]} dBm: ${n}`).join("\n");
  chart.append(title, svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
  counts.forEach((n, i) => {
    const h = n ? Math.max(1, (n / top) * (height - 2)) : 0;
    chart.append(svg("rect", { x: i * bar + gap / 2, y: height - 1 - h, width: bar - gap,
      height: h }));
  });
  return chart;
}

function tagChip(tag) {
  const strength = tag.rssi === null ? "" : ` ${fmt(tag.rssi, 0)} dBm`;
  return el("span", { class: `tag ${tag.kind}`, title: `${tag.reads} reads` },
    subjectText(tag) + strength);
}

function drawAntennas(state) {
  const edges = state.rssi_edges;
  document.getElementById("rssi-range").textContent = `${edges[0]} to ${edges[edges.length - 1]}`;
  const rows = state.antennas.map((a) => {
    const more = a.tags_now_total > a.tags_now.length ?
      el("span", { class: "tag" }, `+${a.tags_now_total - a.tags_now.length} more`) : null;
    return el("tr", { "data-antenna": a.key },
      el("td", {}, a.key),
      el("td", {}, a.zone),
      el("td", { class: "figure rate" }, fmt(a.reads_per_s)),
      el("td", {}, histogram(a.rssi_hist, edges)),
      el("td", {}, el("div", { class: "tags" }, ...a.tags_now.map(tagChip), more)));
  });
  fill(document.querySelector("#antennas tbody"), rows);
}

function presentList(subjects, total) {
  const items = subjects.map((s) =>
    el("li", {}, el("span", { class: "mono" }, subjectText(s)),
      el("span", { class: "figure" }, duration(s.dwell_s))));
  if (total > subjects.length) items.push(el("li", {}, `and ${total - subjects.length} more`));
  return el("ul", {}, ...items);
}

function drawZones(zones) {
  const cards = zones.map((z) =>
    el("div", { class: "zone", "data-zone": z.id },
      el("h3", {}, z.id),
      el("div", { class: "counts" },
        el("span", { class: "count-customers" }, z.customers_total), " customers, ",
        el("span", { class: "count-items" }, z.items_total), " items"),
      presentList(z.customers, z.customers_total),
      presentList(z.items, z.items_total)));
  fill(document.getElementById("zones"), cards);
}

function eventText(e) {
  if (e.action) {
    const result = e.action.ok ? "ok" : `failed: ${e.action.error || "?"}`;
    return `rule ${e.action.rule}: ${e.action.do} on ${e.action.output}, ${result}`;
  }
  if (e.device) {
    return `${e.device.id} ${e.device.state}${e.device.detail ? `: ${e.device.detail}` : ""}`;
  }
  return [e.zone, subjectText(e.subject)].filter(Boolean).join(" · ");
}

function drawEvents(events) {
  const items = events.length ? events.map((e) =>
    el("li", { class: e.action && !e.action.ok ? "failed" : null },
      el("span", { class: "ts" }, e.ts.slice(11, 23)),
      el("strong", {}, e.type), " ", eventText(e))) : [el("li", {}, "no events yet")];
  fill(document.getElementById("events"), items);
}

function sparkline(reads, rssi) {
  const width = 360, height = 40;
  const step = width / reads.length;
  const top = Math.max(1, ...reads);
  const chart = svg("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}` });
  chart.append(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
  reads.forEach((n, i) => {
    if (!n) return;
    const h = Math.max(1, (n / top) * (height - 2));
    chart.append(svg("rect", { x: i * step, y: height - 1 - h, width: step - 0.5, height: h }));
  });
  const points = [];
  rssi.forEach((r, i) => {
    if (r === null) return;
    const y = height - 1 - ((r - RSSI_MIN) / (RSSI_MAX - RSSI_MIN)) * (height - 2);
    points.push(`${(i + 0.5) * step},${Math.min(height - 1, Math.max(1, y)).toFixed(1)}`);
  });
  if (points.length) chart.append(svg("polyline", { points: points.join(" ") }));
  return chart;
}

function drawTuning(state) {
  const pick = document.getElementById("antenna-pick");
  const keys = state.antennas.map((a) => a.key);
  if (pick.options.length !== keys.length) {
    fill(pick, state.antennas.map((a) => el("option", { value: a.key }, `${a.key} (${a.zone})`)));
    if (ui.antenna === null && keys.length) selectAntenna(keys[0]);
    pick.value = ui.antenna;
  }
  const antenna = state.antennas.find((a) => a.key === ui.antenna);
  document.getElementById("tuning-rate").textContent =
    antenna ? `${fmt(antenna.reads_per_s)} reads/s now` : "";
  const tuning = state.tuning;
  const body = document.querySelector("#tuning tbody");
  if (!tuning || tuning.antenna !== ui.antenna) {
    fill(body, [el("tr", {}, el("td", { colspan: 4 }, "waiting for this antenna's figures"))]);
    return;
  }
  const rows = tuning.tags.map((t) =>
    el("tr", { "data-tag": subjectText(t) },
      el("td", { class: "mono" }, subjectText(t)),
      el("td", {}, t.home_zone || "–", " ", t.bleed ? el("span", { class: "bleed" }, "bleed") : null),
      el("td", { class: "figure" }, t.reads),
      el("td", {}, sparkline(t.reads_per_s, t.rssi))));
  fill(body, rows.length ? rows :
    [el("tr", {}, el("td", { colspan: 4 }, "no tag read on this antenna in the last minute"))]);
}

function draw(state) {
  ui.last = state;
  document.getElementById("site").textContent = `${state.store} / ${state.gateway}`;
  drawDevices(state.devices);
  drawOutbox(state.outbox);
  drawErrors(state.errors);
  drawAntennas(state);
  drawZones(state.zones);
  drawEvents(state.events);
  drawTuning(state);
}

function connect() {
  if (ui.source) ui.source.close();
  const query = ui.view === "tuning" && ui.antenna ?
    `?antenna=${encodeURIComponent(ui.antenna)}` : "";
  const source = new EventSource(`api/events${query}`);
  const live = document.getElementById("live");
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  source.onmessage = (message) => draw(JSON.parse(message.data));
  ui.source = source;
}

function selectAntenna(key) {
  ui.antenna = key;
  if (ui.view === "tuning") connect();
}

function show(view) {
  ui.view = view;
  document.getElementById("view-store").hidden = view !== "store";
  document.getElementById("view-tuning").hidden = view !== "tuning";
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.view === view);
  }
  if (ui.last) drawTuning(ui.last);
  connect();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => show(tab.dataset.view));
  }
  document.getElementById("antenna-pick").addEventListener("change", (event) => {
    selectAntenna(event.target.value);
  });
  connect();
});
