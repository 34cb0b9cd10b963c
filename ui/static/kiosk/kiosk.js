// Kiosk liveness page: creates a liveness session, shows a mirrored live
// preview with an oval face guide and the session's one current instruction,
// and ends on an outcome screen.
//
// URL parameters (all optional):
//   camera=<id>       camera mode: the daemon's camera <id> is the source; the
//                     preview is its MJPEG stream and guidance comes from the
//                     session's server-sent events. Without it the browser's
//                     camera is the source ("frames" mode) and the page posts
//                     frames itself.
//   challenges=a,b    passed through to the session (e.g. blink,turn_left).
//   timeout_s=N       passed through to the session.
//   token=...         sent as "Authorization: Bearer ..." on every request
//                     (removed from the address bar once read).
//   fps=N             frames per second posted in frames mode (1-10, default 7).
//   mirror=0          do not mirror the preview.
//   reset_s=N         seconds the outcome screen stays before a new check
//                     starts by itself (default 30; 0 = only by the button).
//   lang=xx           language of strings.js.
//
// Frames are drawn from the video onto a canvas (the camera's own, unmirrored
// image, at most 640 px on the long side), encoded as JPEG and posted one at a
// time: while one is in flight the next capture is skipped, never queued.
// Nothing is kept once it has been sent.
"use strict";

(function () {
  const API = "/v1/liveness/sessions";
  const TERMINAL = new Set(["succeeded", "failed", "expired", "canceled"]);
  const CHALLENGES = new Set(["blink", "turn_left", "turn_right", "look_up", "look_down", "smile", "move_closer"]);
  const GOOD = new Set(["hold_still", "done"]);
  const MAX_SIDE = 640;
  const JPEG_QUALITY = 0.85;
  const MAX_ERRORS = 5;

  const params = new URLSearchParams(location.search);
  const cfg = {
    camera: params.get("camera") || "",
    challenges: (params.get("challenges") || "").split(",").map((s) => s.trim()).filter(Boolean),
    timeout: numberParam("timeout_s", null),
    token: params.get("token") || "",
    fps: Math.min(10, Math.max(1, numberParam("fps", 7))),
    mirror: params.get("mirror") !== "0",
    resetS: Math.max(0, numberParam("reset_s", 30)),
  };
  if (params.has("token")) {
    params.delete("token");
    const q = params.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
  }

  const S = pickStrings(params.get("lang"));
  const $ = (id) => document.getElementById(id);
  const el = {
    video: $("video"),
    stream: $("stream"),
    oval: $("oval"),
    ring: $("ring-fill"),
    instruction: $("instruction"),
    icon: $("instruction-icon"),
    text: $("instruction-text"),
    progress: $("progress"),
    dots: $("dots"),
    steps: $("steps"),
    outcome: $("outcome"),
    outcomeIcon: $("outcome-icon"),
    outcomeTitle: $("outcome-title"),
    outcomeText: $("outcome-text"),
    restart: $("restart"),
  };
  document.title = S.ui.page_title;
  el.restart.textContent = S.ui.restart;
  el.restart.addEventListener("click", () => start());
  el.video.classList.toggle("mirror", cfg.mirror);
  el.stream.classList.toggle("mirror", cfg.mirror);

  let media = null; // the browser camera's MediaStream, kept across sessions
  let run = null; // the current session run
  let resetTimer = 0;

  function numberParam(name, def) {
    const v = params.get(name);
    if (v === null || v === "") return def;
    const n = Number(v);
    return Number.isFinite(n) ? n : def;
  }

  function pickStrings(lang) {
    const all = window.KIOSK_STRINGS || {};
    const want = [lang, ...(navigator.languages || [navigator.language])]
      .filter(Boolean)
      .flatMap((l) => [l, String(l).split("-")[0]]);
    const base = all.en || { instruction: {}, ui: {}, reason: {} };
    for (const l of want) {
      if (all[l]) {
        const s = all[l];
        return {
          instruction: Object.assign({}, base.instruction, s.instruction),
          ui: Object.assign({}, base.ui, s.ui),
          reason: Object.assign({}, base.reason, s.reason),
        };
      }
    }
    return base;
  }

  // sessionTokens holds the token each session was created with (when the
  // daemon requires tokens): it opens that session's routes and nothing
  // else, so the page's own token is sent only to create sessions.
  const sessionTokens = new Map();

  function tokenFor(path) {
    if (path.startsWith(API + "/")) {
      const id = decodeURIComponent(path.slice(API.length + 1).split("/")[0]);
      if (sessionTokens.has(id)) return sessionTokens.get(id);
    }
    return cfg.token;
  }

  function headers(path) {
    const h = {};
    const token = tokenFor(path);
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  // request sends one API request and returns [status, parsed JSON or null].
  async function request(method, path, body, signal, keepalive) {
    const init = { method, headers: headers(path), signal, keepalive: !!keepalive, cache: "no-store", credentials: "same-origin" };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const res = await fetch(path, init);
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    return [res.status, data];
  }

  function sessionPath(r, tail) {
    return API + "/" + encodeURIComponent(r.id) + (tail || "");
  }

  // ---- display ----

  function showInstruction(code, serverText) {
    code = code || "unknown";
    const text = S.instruction[code] || serverText || S.instruction.unknown;
    if (el.instruction.dataset.code === code && el.text.textContent === text) return;
    el.instruction.dataset.code = code;
    el.icon.setAttribute("href", document.getElementById("i-" + code) ? "#i-" + code : "#i-unknown");
    el.text.textContent = text;
  }

  function showProgress(step, steps, progress) {
    const p = Math.max(0, Math.min(1, Number(progress) || 0));
    el.ring.setAttribute("stroke-dasharray", (p * 100).toFixed(1) + " 100");
    el.ring.classList.toggle("empty", p === 0); // a round cap would draw a dot
    el.progress.setAttribute("aria-valuenow", String(Math.round(p * 100)));
    steps = Math.max(0, Math.floor(Number(steps) || 0));
    step = Math.max(0, Math.floor(Number(step) || 0));
    if (el.dots.childElementCount !== steps) {
      el.dots.replaceChildren(...Array.from({ length: steps }, () => document.createElement("li")));
    }
    // step counts the challenges done; the one after them is current.
    Array.from(el.dots.children).forEach((li, i) => {
      li.className = i < step ? "done" : i === step ? "current" : "";
    });
    el.steps.textContent = steps > 0 ? S.ui.step.replace("{step}", String(Math.min(step + 1, steps))).replace("{steps}", String(steps)) : "";
  }

  function ovalState(g) {
    if (!g.face) return g.status === "running" || g.status === "waiting" ? "warn" : "idle";
    const code = g.instruction && g.instruction.code;
    if (CHALLENGES.has(code) || GOOD.has(code)) return "ok";
    return "warn";
  }

  function showGuidance(r, g) {
    if (!g || typeof g !== "object") return;
    if (g.face) r.sawFace = true;
    const code = g.instruction && g.instruction.code;
    // A new step or a finished session shows at once; other changes must
    // hold for two answers in a row, so a borderline hint does not flicker.
    const immediate = g.step !== r.lastStep || TERMINAL.has(g.status) || r.shown === null;
    if (immediate || code === r.pending) {
      showInstruction(code, g.instruction && g.instruction.text);
      r.shown = code;
    }
    r.pending = code;
    r.lastStep = g.step;
    showProgress(g.step, g.steps, g.progress);
    el.oval.dataset.state = ovalState(g);
    if (TERMINAL.has(g.status)) finish(r, g);
  }

  function showOutcome(kind, title, text) {
    document.body.dataset.phase = kind === "error" ? "error" : "outcome";
    el.outcome.dataset.kind = kind;
    el.outcomeIcon.setAttribute("href", "#i-" + kind);
    el.outcomeTitle.textContent = title;
    el.outcomeText.textContent = text || "";
    el.restart.textContent = kind === "success" ? S.ui.again : S.ui.restart;
    el.outcome.hidden = false;
    el.restart.focus({ preventScroll: true });
    clearTimeout(resetTimer);
    if (cfg.resetS > 0) resetTimer = setTimeout(() => start(), cfg.resetS * 1000);
  }

  function fail(r, message) {
    if (r !== run || r.stopped) return;
    stop(r, true);
    showOutcome("error", S.ui.error_title, message);
  }

  // ---- session lifecycle ----

  async function finish(r, g) {
    if (r.finished) return;
    r.finished = true;
    r.status = g.status;
    stop(r, false);
    if (g.status === "expired" && !r.sawFace && !cfg.camera) {
      // Nobody came: start a fresh session quietly instead of telling no one.
      start();
      return;
    }
    let result = g.result;
    for (let i = 0; !result && i < 3 && r === run; i++) {
      try {
        const [code, s] = await request("GET", sessionPath(r));
        if (code === 200 && s) result = s.result;
      } catch (e) {
        // fall through: show the outcome without details
      }
      if (!result) await sleep(300);
    }
    if (r !== run) return;
    const value = result && result.liveness && result.liveness.value;
    const ok = g.status === "succeeded" && (value === "REAL" || (!value && !result));
    const reason = result && result.reason ? S.reason[result.reason] || "" : "";
    if (ok) {
      showInstruction("done");
      showOutcome("success", S.ui.success_title, S.ui.success_text);
    } else if (g.status === "expired") {
      showOutcome("retry", S.ui.expired_title, reason || S.ui.retry_text);
    } else if (g.status === "canceled") {
      showOutcome("retry", S.ui.canceled_title, reason || S.ui.retry_text);
    } else {
      showOutcome("retry", S.ui.retry_title, reason || S.ui.retry_text);
    }
  }

  // stop ends r's capture or event stream; cancel also deletes the session
  // on the server when it has not finished.
  function stop(r, cancel) {
    if (!r || r.stopped) return;
    r.stopped = true;
    clearInterval(r.timer);
    clearInterval(r.poll);
    if (r.events) r.events.close();
    r.abort.abort();
    if (cancel && r.id && !r.finished) {
      request("DELETE", sessionPath(r), undefined, undefined, true).catch(() => {});
    }
  }

  async function start() {
    clearTimeout(resetTimer);
    stop(run, true);
    const r = {
      id: "",
      t0: 0,
      stopped: false,
      finished: false,
      inFlight: false,
      errors: 0,
      dropped: 0,
      sawFace: false,
      shown: null,
      pending: null,
      lastStep: null,
      abort: new AbortController(),
      timer: 0,
      poll: 0,
      events: null,
    };
    run = r;
    document.body.dataset.phase = "starting";
    el.outcome.hidden = true;
    el.outcome.dataset.kind = "";
    el.oval.dataset.state = "idle";
    showInstruction("starting");
    showProgress(0, 0, 0);

    if (cfg.camera) {
      el.video.hidden = true;
      el.stream.hidden = false;
      if (!el.stream.src) el.stream.src = "/v1/cameras/" + encodeURIComponent(cfg.camera) + "/stream";
    } else {
      el.stream.hidden = true;
      try {
        await openCamera();
      } catch (e) {
        fail(r, S.ui.error_camera);
        return;
      }
    }
    if (r !== run) return;

    const body = { source: cfg.camera ? "camera:" + cfg.camera : "frames" };
    if (cfg.challenges.length) body.challenges = cfg.challenges;
    if (cfg.timeout !== null) body.timeout_s = cfg.timeout;
    let code, s;
    try {
      [code, s] = await request("POST", API, body, r.abort.signal);
    } catch (e) {
      if (r === run) fail(r, S.ui.error_network);
      return;
    }
    if (r !== run) return;
    if (code !== 201 || !s || !s.id) {
      fail(r, S.ui.error_service);
      return;
    }
    r.id = s.id;
    if (s.token) {
      if (sessionTokens.size >= 8) sessionTokens.delete(sessionTokens.keys().next().value);
      sessionTokens.set(s.id, s.token);
    }
    r.t0 = performance.now();
    document.body.dataset.phase = "running";
    document.body.dataset.session = s.id;
    // The session's own state says how many steps it has and what comes
    // first; without it, count one step per challenge.
    let v = null;
    try {
      const [c, got] = await request("GET", sessionPath(r), undefined, r.abort.signal);
      if (c === 200 && got) v = got;
    } catch (e) {
      if (r !== run) return;
    }
    if (r !== run) return;
    v = v || s;
    showGuidance(r, {
      status: v.status,
      step: v.step || 0,
      steps: v.steps || (v.challenges || []).length,
      progress: v.progress || 0,
      instruction: v.instruction && v.instruction.code ? v.instruction : { code: "center_face" },
      face: null,
    });
    if (r.finished) return;
    if (cfg.camera) follow(r);
    else r.timer = setInterval(() => sendFrame(r), 1000 / cfg.fps);
  }

  async function openCamera() {
    if (media && media.getVideoTracks().some((t) => t.readyState === "live")) return;
    media = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    el.video.srcObject = media;
    el.video.hidden = false;
    await el.video.play().catch(() => {});
  }

  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { alpha: false });

  function captureFrame() {
    const v = el.video;
    const w = v.videoWidth;
    const h = v.videoHeight;
    const k = Math.min(1, MAX_SIDE / Math.max(w, h));
    const cw = Math.round(w * k);
    const ch = Math.round(h * k);
    if (canvas.width !== cw || canvas.height !== ch) {
      canvas.width = cw;
      canvas.height = ch;
    }
    ctx.drawImage(v, 0, 0, cw, ch); // unmirrored: the camera's own image
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  }

  async function sendFrame(r) {
    if (r.stopped || r !== run) return;
    if (r.inFlight) {
      r.dropped++;
      return;
    }
    const v = el.video;
    if (v.readyState < 2 || !v.videoWidth) return;
    r.inFlight = true;
    try {
      const tMs = Math.max(0, Math.round(performance.now() - r.t0));
      const blob = await captureFrame();
      if (!blob || r.stopped) return;
      const form = new FormData();
      form.append("image", blob, "frame.jpg");
      form.append("t_ms", String(tMs));
      const [code, g] = await request("POST", sessionPath(r, "/frames"), form, r.abort.signal);
      if (r.stopped) return;
      if (code === 200 && g) {
        r.errors = 0;
        showGuidance(r, g);
        return;
      }
      await frameRefused(r);
    } catch (e) {
      if (r.stopped) return;
      if (++r.errors >= MAX_ERRORS) fail(r, S.ui.error_network);
    } finally {
      r.inFlight = false;
    }
  }

  // frameRefused asks the session why a frame was refused: a finished
  // session ends the run; otherwise the refusal counts as an error.
  async function frameRefused(r) {
    try {
      const [c, s] = await request("GET", sessionPath(r), undefined, r.abort.signal);
      if (c === 200 && s && TERMINAL.has(s.status)) {
        showGuidance(r, s);
        return;
      }
      if (c === 404) {
        fail(r, S.ui.error_service);
        return;
      }
    } catch (e) {
      if (r.stopped) return;
    }
    // One refused frame (a busy server, an undecodable capture) is not fatal.
    if (++r.errors >= MAX_ERRORS) fail(r, S.ui.error_service);
  }

  // follow reads a camera-mode session's guidance: server-sent events, or
  // polling when the page has a token but the session none (EventSource
  // cannot send an Authorization header; a session token, which opens only
  // this session, goes in the query instead) or the event stream closes.
  function follow(r) {
    const st = sessionTokens.get(r.id);
    if ((!cfg.token || st) && window.EventSource) {
      const es = new EventSource(sessionPath(r, "/events") + (st ? "?token=" + encodeURIComponent(st) : ""));
      r.events = es;
      es.onmessage = (ev) => {
        let g = null;
        try {
          g = JSON.parse(ev.data);
        } catch (e) {
          return;
        }
        r.errors = 0;
        showGuidance(r, g);
      };
      es.onerror = () => {
        if (r.stopped) return;
        if (es.readyState === EventSource.CLOSED) {
          r.events = null;
          poll(r);
        }
      };
      return;
    }
    poll(r);
  }

  function poll(r) {
    let busy = false;
    r.poll = setInterval(async () => {
      if (busy || r.stopped) return;
      busy = true;
      try {
        const [code, s] = await request("GET", sessionPath(r), undefined, r.abort.signal);
        if (r.stopped) return;
        if (code === 200 && s) {
          r.errors = 0;
          showGuidance(r, s);
        } else if (code === 404 || ++r.errors >= MAX_ERRORS) {
          fail(r, S.ui.error_service);
        }
      } catch (e) {
        if (!r.stopped && ++r.errors >= MAX_ERRORS) fail(r, S.ui.error_network);
      } finally {
        busy = false;
      }
    }, 250);
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  window.addEventListener("pagehide", () => stop(run, true));
  start();
})();
