// Watchlist page: the persons of one list, a page at a time, with their face
// count and the quality figures of each enrolled face; adds a person from a
// photo and deletes persons. It uses only the watchlist API:
//
//   GET    /v1/watchlists                          the lists (the selector and the summary)
//   GET    /v1/watchlists/{list}/persons?after=&limit=   a page of persons, "next" for the following one
//   POST   /v1/watchlists/{list}/persons           {"name"} -> {"id"} (the list is created on first use)
//   POST   /v1/watchlists/{list}/persons/{id}/faces   multipart "image" -> {"face_id", "quality"}, or 400 saying why not
//   DELETE /v1/watchlists/{list}/persons/{id}      erases the person and their templates
//
// A person is added only with a face: when the photo is refused, the person
// just created for it is deleted again and the API's reason is shown.
// The list in view is the address's hash (/watchlists#door).
//
// Everything shown is text set with textContent, never markup built from data.
"use strict";

(function () {
  const PAGE_SIZE = 25;
  const LIST_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
  const $ = (id) => document.getElementById(id);
  const state = {
    lists: [], // summaries from GET /v1/watchlists
    extra: new Set(), // names chosen here that have no person yet
    list: "",
    cursors: [""], // the "after" of each page seen so far
    page: 0,
    next: "",
    persons: [],
    pending: null, // the person the confirm dialog asks about
  };

  class APIError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = {method, cache: "no-store", headers: {}};
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(path, init);
    let data = null;
    try {
      data = await resp.json();
    } catch (e) { /* not JSON: say the status below */ }
    if (!resp.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : "HTTP " + resp.status;
      throw new APIError(resp.status, detail);
    }
    return data;
  }

  const listPath = (name) => "/v1/watchlists/" + encodeURIComponent(name);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function say(id, kind, text) {
    const s = $(id);
    s.dataset.kind = kind;
    s.textContent = text;
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  // --- lists ---------------------------------------------------------------

  function wantedList() {
    let h = "";
    try {
      h = decodeURIComponent(location.hash.slice(1));
    } catch (e) { /* a malformed hash picks the default */ }
    return LIST_NAME.test(h) ? h : "";
  }

  async function loadLists() {
    try {
      const body = await api("GET", "/v1/watchlists");
      state.lists = Array.isArray(body.watchlists) ? body.watchlists : [];
    } catch (e) {
      document.body.dataset.state = e.status === 404 ? "disabled" : "error";
      say("list-status", "error", "Cannot read the watchlists: " + e.message);
      return false;
    }
    const names = state.lists.map((l) => l.name);
    for (const n of state.extra) if (!names.includes(n)) names.push(n);
    let pick = wantedList() || state.list || (names.length ? names[0] : "default");
    if (!names.includes(pick)) {
      state.extra.add(pick);
      names.push(pick);
    }
    const sel = $("list");
    sel.replaceChildren();
    for (const n of names.sort()) {
      const known = state.lists.some((l) => l.name === n);
      const o = el("option", "", known ? n : n + " (new)");
      o.value = n;
      sel.appendChild(o);
    }
    sel.value = pick;
    if (pick !== state.list) {
      state.list = pick;
      state.cursors = [""];
      state.page = 0;
    }
    renderSummary();
    return true;
  }

  function renderSummary() {
    const dl = $("summary");
    dl.replaceChildren();
    const l = state.lists.find((x) => x.name === state.list);
    const rows = l ? [
      ["Persons", l.persons],
      ["Faces", l.faces],
      ["Target false-accept rate", l.fa_r],
      ["Match threshold (distance)", typeof l.threshold === "number" ? l.threshold.toFixed(3) : l.threshold],
    ] : [["", "A new list: it is created with its first person."]];
    for (const [k, v] of rows) {
      const div = el("div");
      if (k) div.appendChild(el("dt", "", k));
      div.appendChild(el("dd", "", v));
      dl.appendChild(div);
    }
  }

  function chooseList(name) {
    if (name === state.list) return;
    history.replaceState(null, "", "#" + encodeURIComponent(name));
    state.list = name;
    state.cursors = [""];
    state.page = 0;
    say("add-status", "", "");
    refresh();
  }

  // --- persons --------------------------------------------------------------

  async function loadPersons() {
    const q = new URLSearchParams({limit: String(PAGE_SIZE)});
    const after = state.cursors[state.page];
    if (after) q.set("after", after);
    let body;
    try {
      body = await api("GET", listPath(state.list) + "/persons?" + q.toString());
    } catch (e) {
      if (e.status === 404 && !state.lists.some((l) => l.name === state.list)) {
        body = {persons: []}; // a list with no person yet does not exist
      } else {
        say("list-status", "error", "Cannot read the persons: " + e.message);
        return;
      }
    }
    state.persons = Array.isArray(body.persons) ? body.persons : [];
    state.next = typeof body.next === "string" ? body.next : "";
    if (state.persons.length === 0 && state.page > 0) { // the last page emptied
      state.page--;
      return loadPersons();
    }
    renderPersons();
  }

  function qualityText(q) {
    if (!q || typeof q !== "object") return "enrolled from a template (no photo figures)";
    const parts = [];
    const num = (v, d) => (typeof v === "number" ? v.toFixed(d) : "?");
    if ("sharpness" in q) parts.push("sharpness " + num(q.sharpness, 0));
    if ("eyes_distance" in q) parts.push("eyes " + num(q.eyes_distance, 0) + " px apart");
    if ("yaw" in q) parts.push("yaw " + num(q.yaw, 0) + "°");
    if ("pitch" in q) parts.push("pitch " + num(q.pitch, 0) + "°");
    if ("detection" in q) parts.push("detection " + num(q.detection, 2));
    return parts.join(" · ");
  }

  function renderPersons() {
    const body = $("persons");
    body.replaceChildren();
    const tpl = $("row-template").content.firstElementChild;
    for (const p of state.persons) {
      const tr = tpl.cloneNode(true);
      const faces = Array.isArray(p.faces) ? p.faces : [];
      const q = (c) => tr.querySelector("." + c);
      tr.dataset.person = p.id;
      tr.dataset.faces = String(faces.length);
      q("p-name").textContent = p.name;
      q("p-faces").textContent = faces.length;
      const qual = q("p-quality");
      if (faces.length === 0) qual.appendChild(el("span", "warn", "no face: this person cannot be identified"));
      for (const f of faces) qual.appendChild(el("div", "face", qualityText(f.quality)));
      q("p-created").textContent = p.created ? new Date(p.created).toLocaleString() : "";
      q("p-id").textContent = p.id;
      const photo = q("p-photo");
      photo.setAttribute("aria-label", "Add a photo of " + p.name);
      photo.addEventListener("change", () => {
        const file = photo.files && photo.files[0];
        photo.value = "";
        if (file) addFace(p, file);
      });
      const del = q("p-delete");
      del.setAttribute("aria-label", "Delete " + p.name);
      del.addEventListener("click", () => askDelete(p));
      body.appendChild(tr);
    }
    const empty = state.persons.length === 0;
    $("persons-empty").hidden = !empty || state.page > 0;
    $("persons-table").hidden = empty;
    $("prev").disabled = state.page === 0;
    $("next").disabled = !state.next;
    const first = state.page * PAGE_SIZE + 1;
    $("page-no").textContent = empty ? "" : "persons " + first + "–" + (first + state.persons.length - 1);
    document.body.dataset.state = "ready";
  }

  async function refresh() {
    if (await loadLists()) await loadPersons();
  }

  // --- adding ---------------------------------------------------------------

  function photoForm(file) {
    const fd = new FormData();
    fd.append("image", file, file.name || "photo");
    return fd;
  }

  async function addPerson(ev) {
    ev.preventDefault();
    const name = $("add-name").value.trim();
    const file = $("add-photo").files && $("add-photo").files[0];
    if (!name || !file) {
      say("add-status", "error", "Give a name and choose a photo.");
      return;
    }
    const list = state.list;
    $("add-submit").disabled = true;
    say("add-status", "busy", "Adding " + name + "…");
    let id = "";
    try {
      id = (await api("POST", listPath(list) + "/persons", {name})).id;
      const face = await api("POST", listPath(list) + "/persons/" + encodeURIComponent(id) + "/faces", photoForm(file));
      say("add-status", "ok", "Added " + name + ": " + qualityText(face.quality) + ".");
      $("add").reset();
      showPreview(null);
    } catch (e) {
      let text = (id ? "The photo was refused: " : "Could not add " + name + ": ") + e.message + ".";
      if (id) {
        try {
          await api("DELETE", listPath(list) + "/persons/" + encodeURIComponent(id));
          text += " " + name + " was not added.";
        } catch (e2) {
          text += " " + name + " was added without a face (" + e2.message + ").";
        }
      }
      say("add-status", "error", text);
    } finally {
      $("add-submit").disabled = false;
    }
    state.extra.delete(list);
    await refresh();
  }

  async function addFace(p, file) {
    say("list-status", "busy", "Adding a photo of " + p.name + "…");
    try {
      const face = await api("POST", listPath(state.list) + "/persons/" + encodeURIComponent(p.id) + "/faces", photoForm(file));
      say("list-status", "ok", "Added a face to " + p.name + ": " + qualityText(face.quality) + ".");
    } catch (e) {
      say("list-status", "error", "The photo of " + p.name + " was refused: " + e.message + ".");
    }
    await refresh();
  }

  let previewURL = "";
  function showPreview(file) {
    if (previewURL) URL.revokeObjectURL(previewURL);
    previewURL = file ? URL.createObjectURL(file) : "";
    const img = $("add-preview");
    img.hidden = !file;
    if (file) img.src = previewURL; else img.removeAttribute("src");
  }

  // --- deleting -------------------------------------------------------------

  function askDelete(p) {
    state.pending = p;
    const n = Array.isArray(p.faces) ? p.faces.length : 0;
    $("confirm-title").textContent = "Delete " + p.name + "?";
    $("confirm-text").textContent = "This erases " + p.name + " and " + plural(n, "face template", "face templates") +
      " from the list " + state.list + " at once. It cannot be undone.";
    $("confirm").showModal();
  }

  async function confirmDelete() {
    const p = state.pending;
    state.pending = null;
    $("confirm").close();
    if (!p) return;
    try {
      await api("DELETE", listPath(state.list) + "/persons/" + encodeURIComponent(p.id));
      say("list-status", "ok", "Deleted " + p.name + ".");
    } catch (e) {
      say("list-status", "error", "Could not delete " + p.name + ": " + e.message + ".");
    }
    await refresh();
  }

  // --- start ----------------------------------------------------------------

  $("list").addEventListener("change", (e) => chooseList(e.target.value));
  window.addEventListener("hashchange", () => {
    const w = wantedList();
    if (w) chooseList(w);
  });
  $("new-list").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("new-list-name").value.trim();
    if (!LIST_NAME.test(name)) {
      say("list-status", "error", "A list name is 1 to 64 letters, digits, '_', '.' or '-'.");
      return;
    }
    $("new-list-name").value = "";
    state.extra.add(name);
    chooseList(name);
  });
  $("add").addEventListener("submit", addPerson);
  $("add-photo").addEventListener("change", () => showPreview($("add-photo").files[0] || null));
  $("confirm-delete").addEventListener("click", confirmDelete);
  $("confirm-cancel").addEventListener("click", () => { state.pending = null; $("confirm").close(); });
  $("confirm").addEventListener("close", () => { state.pending = null; });
  $("prev").addEventListener("click", () => {
    if (state.page > 0) state.page--;
    loadPersons();
  });
  $("next").addEventListener("click", () => {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page++;
    loadPersons();
  });
  refresh();
})();
