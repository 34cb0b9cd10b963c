// Web console: three pages in one document, picked by the address's hash.
//
//   #cameras  a tile per camera: its live preview (GET /v1/cameras/{id}/stream,
//             MJPEG with the boxes and track ids drawn by the daemon), its
//             state (GET /cameras) and a sparkline of the faces and people in
//             view (GET /v1/in-view).
//   #events   the live events (GET /v1/events/stream, server-sent events with
//             the MQTT events' JSON), filtered by camera and kind on the server.
//   #system   models and delegates, MQTT, request statistics, version, uptime
//             and the effective config (GET /v1/system).
//
// Everything shown is text set with textContent, never markup built from data.
"use strict";

(function () {
  const MAX_EVENTS = 200;
  const $ = (id) => document.getElementById(id);
  const state = {
    page: "cameras",
    cameras: new Map(), // id -> {tile, els}
    events: [],
    source: null,
    lastSystem: null, // {at, http: Map(route -> requests)}
    inViewInterval: 5,
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  async function getJSON(path) {
    const resp = await fetch(path, {cache: "no-store"});
    if (!resp.ok) throw new Error(path + ": HTTP " + resp.status);
    return resp.json();
  }

  // Track ids are 16 hex digits of time then 8 of salt; the preview labels a
  // track with the 6 digits before the salt (ui.ShortTrackID).
  function shortTrack(id) {
    if (!id) return "";
    if (id.length === 24) return id.slice(10, 16);
    return id.length > 6 ? id.slice(-6) : id;
  }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  function ms(seconds) {
    if (!seconds) return "–";
    const v = seconds * 1000;
    return (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + " ms";
  }

  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
    return (n / (1 << 20)).toFixed(1) + " MiB";
  }

  // --- pages ---------------------------------------------------------------

  function showPage() {
    const page = (location.hash || "#cameras").slice(1);
    state.page = ["cameras", "events", "system"].includes(page) ? page : "cameras";
    document.body.dataset.page = state.page;
    for (const p of ["cameras", "events", "system"]) {
      $("page-" + p).hidden = p !== state.page;
      $("tab-" + p).setAttribute("aria-current", p === state.page ? "page" : "false");
    }
    syncPreviews();
    if (state.page === "system") refreshSystem();
  }

  // --- cameras ------------------------------------------------------------

  function tileFor(cam) {
    let t = state.cameras.get(cam.camera_id);
    if (t) return t;
    const node = $("tile-template").content.firstElementChild.cloneNode(true);
    node.dataset.camera = cam.camera_id;
    const q = (c) => node.querySelector("." + c);
    t = {
      node,
      name: q("tile-name"), status: q("tile-status"), img: q("tile-stream"), note: q("preview-note"),
      fps: q("s-fps"), dropped: q("s-dropped"), reconnects: q("s-reconnects"), inview: q("s-inview"),
      canvas: q("spark-canvas"), error: q("tile-error"), frames: 0, streaming: false,
    };
    t.name.textContent = cam.name || cam.camera_id;
    if (cam.name && cam.name !== cam.camera_id) t.name.appendChild(el("small", "", cam.camera_id));
    t.img.alt = "Live view of camera " + cam.camera_id;
    t.img.addEventListener("load", () => {
      t.frames++;
      t.note.textContent = "";
      node.dataset.preview = "live";
    });
    t.img.addEventListener("error", () => {
      if (!t.streaming) return; // stopped on purpose
      t.streaming = false;
      node.dataset.preview = "error";
      t.note.textContent = "preview unavailable; retrying";
      setTimeout(() => { if (previewsWanted()) startStream(t, cam.camera_id); }, 3000);
    });
    state.cameras.set(cam.camera_id, t);
    $("tiles").appendChild(node);
    addCameraOption(cam.camera_id);
    if (previewsWanted()) startStream(t, cam.camera_id);
    return t;
  }

  // Previews run only while the Cameras page is on screen: a preview costs
  // the daemon a JPEG per frame, and a camera serves few of them at once.
  function previewsWanted() {
    return state.page === "cameras" && document.visibilityState !== "hidden";
  }

  function startStream(t, id) {
    if (t.streaming) return;
    t.streaming = true;
    t.note.textContent = "waiting for frames…";
    t.img.src = "/v1/cameras/" + encodeURIComponent(id) + "/stream?t=" + Date.now();
  }

  function stopStream(t) {
    if (!t.streaming) return;
    t.streaming = false;
    t.img.removeAttribute("src");
    t.node.dataset.preview = "paused";
  }

  function syncPreviews() {
    const on = previewsWanted();
    for (const [id, t] of state.cameras) {
      if (on) startStream(t, id); else stopStream(t);
    }
  }

  function addCameraOption(id) {
    const sel = $("filter-camera");
    if ([...sel.options].some((o) => o.value === id)) return;
    const o = el("option", "", id);
    o.value = id;
    sel.appendChild(o);
  }

  async function refreshCameras() {
    let body;
    try {
      body = await getJSON("/cameras");
    } catch (e) {
      setConn("down");
      return;
    }
    const cams = body.cameras || [];
    $("cameras-empty").hidden = cams.length > 0;
    const seen = new Set();
    for (const cam of cams) {
      seen.add(cam.camera_id);
      const t = tileFor(cam);
      t.status.textContent = cam.status;
      t.status.dataset.status = cam.status;
      t.fps.textContent = (cam.fps || 0).toFixed(1);
      t.dropped.textContent = cam.frames_dropped || 0;
      t.reconnects.textContent = cam.reconnects || 0;
      t.error.hidden = !cam.last_error;
      t.error.textContent = cam.last_error ? "Last error" + (cam.last_error_at ? " (" + new Date(cam.last_error_at).toLocaleTimeString() + ")" : "") + ": " + cam.last_error : "";
    }
    for (const [id, t] of state.cameras) {
      if (!seen.has(id)) {
        t.img.removeAttribute("src");
        t.node.remove();
        state.cameras.delete(id);
      }
    }
  }

  async function refreshInView() {
    let body;
    try {
      body = await getJSON("/v1/in-view");
    } catch (e) {
      return;
    }
    state.inViewInterval = body.interval_s || 5;
    for (const [id, series] of Object.entries(body.cameras || {})) {
      const t = state.cameras.get(id);
      if (!t) continue;
      t.inview.textContent = series.faces_now + " faces, " + series.people_now + " people";
      drawSpark(t.canvas, series);
    }
  }

  function drawSpark(canvas, series) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 4;
    ctx.clearRect(0, 0, w, h);
    const n = Math.max(series.faces.length, series.people.length);
    if (n < 2) return;
    const top = Math.max(1, ...series.faces, ...series.people);
    const styles = getComputedStyle(document.documentElement);
    ctx.strokeStyle = styles.getPropertyValue("--line");
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, h - pad + 0.5);
    ctx.lineTo(w, h - pad + 0.5);
    ctx.stroke();
    const line = (values, colour) => {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      values.forEach((v, i) => {
        const x = (i / (n - 1)) * w;
        const y = h - pad - (v / top) * (h - 2 * pad);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    };
    line(series.people, styles.getPropertyValue("--people").trim());
    line(series.faces, styles.getPropertyValue("--faces").trim());
    ctx.fillStyle = styles.getPropertyValue("--muted").trim();
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("max " + top, 4, 12);
  }

  // --- events -------------------------------------------------------------

  function setConn(s) {
    const c = $("conn");
    c.dataset.state = s;
    c.textContent = {connecting: "connecting", live: "live", down: "disconnected"}[s] || s;
  }

  function openEvents() {
    if (state.source) state.source.close();
    state.events = [];
    $("events").replaceChildren();
    renderEventCount();
    const q = new URLSearchParams();
    if ($("filter-camera").value) q.set("camera", $("filter-camera").value);
    if ($("filter-kind").value) q.set("kind", $("filter-kind").value);
    const qs = q.toString();
    const src = new EventSource("/v1/events/stream" + (qs ? "?" + qs : ""));
    state.source = src;
    src.onopen = () => setConn("live");
    src.onerror = () => setConn(src.readyState === EventSource.CLOSED ? "down" : "connecting");
    src.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      addEvent(ev);
    };
    src.addEventListener("dropped", (m) => {
      try {
        const n = JSON.parse(m.data).dropped;
        $("events-note").textContent = n + " events were skipped because this page fell behind";
      } catch (e) { /* ignore */ }
    });
  }

  function addEvent(ev) {
    const tr = el("tr", "fresh");
    tr.dataset.kind = ev.type || "";
    tr.dataset.camera = ev.camera_id || "";
    const when = new Date(ev.time || Date.now());
    tr.appendChild(el("td", "mono", when.toLocaleTimeString()));
    tr.appendChild(el("td", "", ev.camera_id || ""));
    const kind = el("td");
    kind.appendChild(el("span", "kind " + (ev.type || ""), ev.type || "?"));
    tr.appendChild(kind);
    tr.appendChild(el("td", "", ev.class || ""));
    const track = el("td", "mono", shortTrack(ev.track_id));
    track.title = ev.track_id || "";
    tr.appendChild(track);
    tr.appendChild(el("td", "mono", typeof ev.score === "number" ? ev.score.toFixed(2) : ""));
    tr.appendChild(el("td", "attrs", describeAttributes(ev)));
    const shot = el("td");
    if (typeof ev.best_shot === "string" && ev.best_shot) {
      const img = el("img", "thumb");
      img.alt = "Best shot of track " + shortTrack(ev.track_id);
      img.src = "data:image/jpeg;base64," + ev.best_shot;
      shot.appendChild(img);
    }
    tr.appendChild(shot);
    const body = $("events");
    body.insertBefore(tr, body.firstChild);
    state.events.push(ev);
    while (body.childElementCount > MAX_EVENTS) body.lastElementChild.remove();
    if (state.events.length > MAX_EVENTS) state.events.shift();
    renderEventCount();
  }

  function describeAttributes(ev) {
    const parts = [];
    if (ev.hits) parts.push(ev.hits + " frames");
    if (ev.reason) parts.push("ended: " + ev.reason);
    const a = ev.attributes || {};
    for (const [k, v] of Object.entries(a)) {
      if (v === null || typeof v === "object") continue;
      parts.push(k + " " + (typeof v === "number" ? Math.round(v * 100) / 100 : v));
      if (parts.length > 8) break;
    }
    return parts.join(" · ");
  }

  function renderEventCount() {
    $("events-count").textContent = state.events.length;
    $("events-empty").hidden = state.events.length > 0;
    $("events-table").hidden = state.events.length === 0;
  }

  // --- system -------------------------------------------------------------

  function kv(dl, rows) {
    dl.replaceChildren();
    for (const [k, v, cls] of rows) {
      dl.appendChild(el("dt", "", k));
      dl.appendChild(el("dd", cls || "", v));
    }
  }

  function cell(tr, text, cls) {
    const td = el("td", cls || "", text);
    tr.appendChild(td);
    return td;
  }

  async function refreshSystem() {
    let s;
    try {
      s = await getJSON("/v1/system");
    } catch (e) {
      return;
    }
    $("version").textContent = "version " + s.version;
    $("uptime").textContent = "up " + duration(s.uptime_s);
    if (state.page !== "system") return;
    kv($("sys-daemon"), [
      ["Version", s.version],
      ["Started", new Date(s.started_at).toLocaleString()],
      ["Uptime", duration(s.uptime_s)],
      ["Cameras", (s.cameras || []).length + " (" + (s.cameras || []).filter((c) => c.connected).length + " connected)"],
      ["Models", s.models.length + " (" + s.models.filter((m) => m.loaded).length + " loaded)"],
    ]);
    const m = s.mqtt;
    kv($("sys-mqtt"), m.enabled ? [
      ["Broker", m.broker || "–"],
      ["Connection", m.connected ? "connected" : "disconnected", m.connected ? "good" : "bad"],
      ["Outbox", m.queue_depth + " events (" + bytes(m.queue_bytes) + ")", m.queue_depth > 100 ? "bad" : ""],
      ["Delivered", m.delivered],
      ["Dropped (outbox full)", m.dropped, m.dropped ? "bad" : ""],
    ] : [["MQTT", "disabled in the config"]]);

    const models = $("sys-models").tBodies[0];
    models.replaceChildren();
    for (const mo of s.models) {
      const tr = el("tr");
      tr.dataset.model = mo.name;
      if (mo.fallback) tr.className = "fallback";
      const name = cell(tr, mo.name);
      name.title = mo.file;
      cell(tr, mo.precision);
      const d = cell(tr, mo.loaded ? mo.delegate + (mo.fallback ? " (asked: " + mo.requested + ")" : "") : "not loaded yet");
      if (!mo.loaded) d.className = "attrs";
      cell(tr, mo.loaded && mo.nodes ? mo.delegated_nodes + " / " + mo.nodes : "–", "num");
      cell(tr, mo.inferences, "num");
      cell(tr, ms(mo.inference_mean_s), "num");
      const notes = cell(tr, "");
      if (mo.fallback) notes.appendChild(el("span", "reason", "fallback: " + mo.fallback));
      else if (mo.precision_note) notes.appendChild(el("span", "attrs", mo.precision_note));
      models.appendChild(tr);
    }

    const now = performance.now();
    const prev = state.lastSystem;
    const http = $("sys-http").tBodies[0];
    http.replaceChildren();
    const counts = new Map();
    for (const r of s.http || []) {
      counts.set(r.route, r.requests);
      const tr = el("tr");
      cell(tr, r.route, "mono");
      cell(tr, r.requests, "num");
      let rate = "–";
      if (prev && prev.http.has(r.route)) {
        const dt = (now - prev.at) / 1000;
        if (dt > 0) rate = ((r.requests - prev.http.get(r.route)) / dt).toFixed(2) + "/s";
      } else if (s.uptime_s > 0) {
        rate = (r.requests / s.uptime_s).toFixed(2) + "/s avg";
      }
      cell(tr, rate, "num");
      cell(tr, r.client_errors, "num");
      cell(tr, r.server_errors, "num" + (r.server_errors ? " bad" : ""));
      cell(tr, ms(r.mean_s), "num");
      // The quantiles are histogram bucket bounds: "under" is what is known.
      cell(tr, r.p50_s ? "≤ " + ms(r.p50_s) : "–", "num");
      cell(tr, r.p95_s ? "≤ " + ms(r.p95_s) : "–", "num");
      http.appendChild(tr);
    }
    state.lastSystem = {at: now, http: counts};
    $("sys-config").textContent = JSON.stringify(s.config, null, 2);
  }

  // --- links to the other pages --------------------------------------------
  // The kiosk and watchlist pages are linked when the daemon serves them
  // (the watchlist page comes with the watchlists feature).

  async function showLinks() {
    for (const [id, path] of [["link-kiosk", "/kiosk"], ["link-watchlists", "/watchlists"]]) {
      try {
        const resp = await fetch(path, {method: "HEAD", cache: "no-store"});
        if (resp.ok) $(id).href = path;
        $(id).hidden = !resp.ok;
      } catch (e) {
        $(id).hidden = true;
      }
    }
  }

  // --- start --------------------------------------------------------------

  window.addEventListener("hashchange", showPage);
  document.addEventListener("visibilitychange", syncPreviews);
  $("filter-camera").addEventListener("change", openEvents);
  $("filter-kind").addEventListener("change", openEvents);
  showPage();
  showLinks();
  refreshCameras().then(refreshInView);
  refreshSystem();
  openEvents();
  setInterval(refreshCameras, 2000);
  setInterval(refreshInView, 5000);
  setInterval(refreshSystem, 5000);
})();
