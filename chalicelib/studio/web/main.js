// Reel Studio's page: CodeMirror 6 over the campaign's files, the problems `reel validate`
// reports at their lines, and a preview drawn by the render engine for the chosen recipient.
// Bundled by `make studio` (esbuild, packages pinned in package.json): no CDN.
import { EditorView, basicSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { keymap, hoverTooltip } from "@codemirror/view";
import { yaml, yamlLanguage } from "@codemirror/lang-yaml";
import { json } from "@codemirror/lang-json";
import { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { stateExtensions } from "codemirror-json-schema";
import { yamlCompletion, yamlSchemaHover } from "codemirror-json-schema/yaml";

const $ = (id) => document.getElementById(id);
const CHECK_DELAY = 250; // ms of quiet typing before the draft is checked and drawn
const POLL_CHANGES = 1000;

const state = {
  key: "",
  ws: "",
  version: null,
  folder: true,
  template: "",
  files: {}, // rel → {saved: text, state: EditorState}
  current: "",
  problems: [],
  records: [],
  record: null,
  duration: 30,
  revision: 0,
  schema: null,
};

// ── the API ───────────────────────────────────────────────────────────────────────────────

async function call(method, path, body, raw) {
  const headers = { "x-api-key": state.key };
  let payload;
  if (raw !== undefined) {
    payload = raw;
    headers["content-type"] = "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  const resp = await fetch(path, { method, headers, body: payload });
  const kind = resp.headers.get("content-type") || "";
  if (!resp.ok) {
    const err = kind.includes("json") ? (await resp.json()).error : { message: resp.statusText };
    const problem = new Error(err.message);
    problem.field = err.field;
    problem.status = resp.status;
    throw problem;
  }
  return kind.includes("json") ? resp.json() : resp;
}

const api = (path) => `/studio/api/${encodeURIComponent(state.ws)}/${path}`;
const withVersion = (body) => ({ ...body, version: state.version });

function drafts() {
  const out = {};
  for (const [rel, f] of Object.entries(state.files)) {
    const text = textOf(rel);
    if (text !== f.saved) out[rel] = text;
  }
  return out;
}

function textOf(rel) {
  if (rel === state.current) return view.state.doc.toString();
  return state.files[rel].state.doc.toString();
}

function status(text, bad) {
  const el = $("status");
  el.textContent = text;
  el.className = bad ? "error" : "muted";
}

// ── the editor ────────────────────────────────────────────────────────────────────────────

const nonce = document.querySelector('meta[name="csp-nonce"]')?.content || "";
const onChange = EditorView.updateListener.of((u) => {
  if (u.docChanged) {
    markTabs();
    scheduleRefresh();
  }
});

function schemaFor(rel) {
  if (!state.schema) return undefined;
  if (rel === state.template) return state.schema;
  if (rel.startsWith("scenes/")) return { $defs: state.schema.$defs, $ref: "#/$defs/Scene" };
  return undefined;
}

function extensionsFor(rel) {
  const exts = [basicSetup, onChange, lintGutter(), EditorView.cspNonce.of(nonce)];
  exts.push(keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (save(), true) }]));
  if (rel.endsWith(".json")) {
    exts.push(json());
  } else {
    exts.push(yaml());
    const schema = schemaFor(rel);
    if (schema) {
      exts.push(yamlLanguage.data.of({ autocomplete: yamlCompletion() }));
      exts.push(hoverTooltip(yamlSchemaHover()));
      exts.push(stateExtensions(schema));
    }
  }
  return exts;
}

const view = new EditorView({
  parent: $("editor"),
  state: EditorState.create({ extensions: [EditorView.cspNonce.of(nonce)] }),
});

function openFile(rel) {
  if (state.current && state.files[state.current]) {
    state.files[state.current].state = view.state;
  }
  state.current = rel;
  view.setState(state.files[rel].state);
  markTabs();
  showDiagnostics();
}

function markTabs() {
  const tabs = $("tabs");
  const dirty = drafts();
  tabs.replaceChildren(
    ...Object.keys(state.files).map((rel) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = rel;
      b.setAttribute("role", "tab");
      b.setAttribute("aria-selected", rel === state.current ? "true" : "false");
      b.dataset.file = rel;
      if (rel in dirty) b.classList.add("dirty");
      b.addEventListener("click", () => openFile(rel));
      return b;
    }),
  );
}

// The files' texts from the server: those changed since last seen replace their editors,
// unless they have unsaved edits (which win). Returns the paths replaced.
function loadFiles(texts) {
  const replaced = [];
  for (const [rel, text] of Object.entries(texts)) {
    const known = state.files[rel];
    if (known && (text === known.saved || textOf(rel) !== known.saved)) continue;
    const fresh = EditorState.create({ doc: text, extensions: extensionsFor(rel) });
    state.files[rel] = { saved: text, state: fresh };
    if (rel === state.current) view.setState(fresh);
    replaced.push(rel);
  }
  return replaced;
}

// ── problems ──────────────────────────────────────────────────────────────────────────────

function showDiagnostics() {
  const doc = view.state.doc;
  const diagnostics = state.problems
    .filter((p) => p.file === state.current)
    .map((p) => {
      const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
      const from = Math.min(line.from + Math.max(p.column - 1, 0), line.to);
      return { from, to: Math.max(line.to, from), severity: "error", message: p.text };
    });
  view.dispatch(setDiagnostics(view.state, diagnostics));
  $("problem-count").textContent = String(state.problems.length);
  $("problems").replaceChildren(
    ...state.problems.map((p) => {
      const li = document.createElement("li");
      li.dataset.file = p.file;
      li.dataset.line = String(p.line);
      const where = document.createElement("span");
      where.className = "where";
      where.textContent = `${p.file}:${p.line}`;
      li.append(where, p.text);
      li.addEventListener("click", () => {
        openFile(p.file);
        const line = view.state.doc.line(Math.min(p.line, view.state.doc.lines));
        view.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
        view.focus();
      });
      return li;
    }),
  );
}

async function check() {
  const { problems } = await call("POST", api("check"), withVersion({ files: drafts() }));
  state.problems = problems;
  showDiagnostics();
}

// ── the preview: one frame at a time, only the latest asked for ──────────────────────────

let wanted = null;
let drawing = false;
let frameUrl = null;

function requestFrame() {
  if (!state.record) return;
  wanted = { at: Number($("playhead").value), record: state.record, files: drafts() };
  if (!drawing) drawLoop();
}

async function drawLoop() {
  drawing = true;
  try {
    while (wanted) {
      const ask = wanted;
      wanted = null;
      try {
        const resp = await call("POST", api("frame"), withVersion(ask));
        const blob = await resp.blob();
        if (frameUrl) URL.revokeObjectURL(frameUrl);
        frameUrl = URL.createObjectURL(blob);
        const img = $("frame");
        img.src = frameUrl;
        img.dataset.frame = resp.headers.get("x-reel-frame") || "";
        img.dataset.drawn = String(Number(img.dataset.drawn || 0) + 1);
        $("player").hidden = true;
        img.hidden = false;
        bindError(null);
      } catch (err) {
        bindError(err);
      }
    }
  } finally {
    drawing = false;
  }
}

function bindError(err) {
  const box = $("bind-error");
  box.hidden = !err;
  const named = err && err.field && !err.message.startsWith(err.field);
  box.textContent = err ? (named ? `${err.field}: ` : "") + err.message : "";
}

// ── the timeline ──────────────────────────────────────────────────────────────────────────

async function refreshTimeline() {
  if (!state.record) return;
  let layout;
  try {
    layout = await call("POST", api("timeline"), withVersion({ files: drafts(), record: state.record }));
  } catch (err) {
    bindError(err);
    return;
  }
  state.duration = layout.duration;
  const head = $("playhead");
  head.max = String(layout.duration);
  head.step = String(1 / layout.fps);
  const bar = $("timeline");
  const blocks = layout.scenes.map((s) => {
    const el = document.createElement("div");
    el.className = "scene" + (s.skipped ? " skipped" : "");
    el.dataset.scene = s.id;
    el.title = s.skipped
      ? `${s.id}: skipped for this recipient (when: ${s.when})`
      : `${s.id}: ${s.duration.toFixed(2)} s` + (s.personal ? " · personal" : "");
    if (!s.skipped) el.style.flex = `${s.duration} 1 0`;
    el.append(s.id);
    const t = document.createElement("span");
    t.className = "trans";
    t.textContent = s.skipped ? "skipped" : `${s.duration.toFixed(1)} s · ${s.transition.type}`;
    el.append(t);
    return el;
  });
  bar.replaceChildren(...blocks);
  for (const run of layout.runs.filter((r) => r.personal)) {
    const el = document.createElement("div");
    el.className = "run";
    el.dataset.start = String(run.start);
    bar.append(el);
  }
  const cursor = document.createElement("div");
  cursor.className = "cursor";
  bar.append(cursor);
  placeOverlays(layout);
  $("cost").textContent =
    `${layout.duration.toFixed(1)} s video · ${layout.personal_seconds.toFixed(1)} s personal ` +
    `for this recipient ≈ ${layout.estimated_cpu_seconds.toFixed(2)} CPU s each ` +
    `(≈ ${(layout.estimated_cpu_seconds * 1000 / 3600).toFixed(1)} CPU h per 1,000 recipients)`;
  state.layout = layout;
  if (!state.placed) {
    // First look: the middle of the first personal run, where this recipient's video differs.
    state.placed = true;
    const run = layout.runs.find((r) => r.personal);
    seek(run ? (run.start + run.end) / 2 : 0);
  }
}

// Time ↔ x over the scenes that play (skipped ones are drawn but take no time).
function timeToX(t) {
  const layout = state.layout;
  if (!layout) return 0;
  for (const el of $("timeline").querySelectorAll(".scene:not(.skipped)")) {
    const s = layout.scenes.find((x) => x.id === el.dataset.scene);
    if (t <= s.start + s.duration || el === $("timeline").querySelector(".scene:not(.skipped):last-of-type")) {
      const frac = Math.min(Math.max((t - s.start) / s.duration, 0), 1);
      return el.offsetLeft + frac * el.offsetWidth;
    }
  }
  return 0;
}

function placeOverlays(layout) {
  const bar = $("timeline");
  for (const el of bar.querySelectorAll(".run")) {
    const run = layout.runs.find((r) => String(r.start) === el.dataset.start);
    const a = timeToX(run.start);
    el.style.left = `${a}px`;
    el.style.width = `${Math.max(timeToX(run.end) - a, 2)}px`;
  }
  const cursor = bar.querySelector(".cursor");
  if (cursor) cursor.style.left = `${timeToX(Number($("playhead").value))}px`;
}

$("timeline").addEventListener("click", (ev) => {
  const el = ev.target.closest(".scene");
  if (!el || el.classList.contains("skipped") || !state.layout) return;
  const s = state.layout.scenes.find((x) => x.id === el.dataset.scene);
  const frac = (ev.clientX - el.getBoundingClientRect().left) / el.offsetWidth;
  seek(s.start + frac * s.duration);
});

function seek(t) {
  const head = $("playhead");
  head.value = String(Math.min(Math.max(t, 0), state.duration));
  $("time").textContent = `${Number(head.value).toFixed(2)} s`;
  if (state.layout) placeOverlays(state.layout);
  requestFrame();
}

$("playhead").addEventListener("input", () => seek(Number($("playhead").value)));

// ── recipients ────────────────────────────────────────────────────────────────────────────

async function loadRecipients() {
  const found = await call("POST", api("recipients"), withVersion({}));
  state.records = found.recipients;
  const select = $("recipient");
  select.replaceChildren(
    ...found.recipients.map((r, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      const name = r.record ? r.record.first_name || r.record.name || "" : "";
      o.textContent = `${r.id}${name ? " · " + name : ""}${r.error ? " ⚠ " + r.error.message : ""}`;
      return o;
    }),
  );
  if (found.recipients.length) chooseRecipient(0);
}

function chooseRecipient(index) {
  const r = state.records[index];
  if (!r) return;
  if (r.error) {
    state.record = null;
    bindError({ field: r.error.field, message: r.error.message });
    return;
  }
  useRecord(r.record);
}

function useRecord(record) {
  state.record = record;
  bindError(null);
  refreshTimeline();
  requestFrame();
}

$("recipient").addEventListener("change", (ev) => chooseRecipient(Number(ev.target.value)));
$("use-paste").addEventListener("click", async () => {
  try {
    const { record } = await call("POST", api("record"), { text: $("paste").value });
    useRecord(record);
  } catch (err) {
    bindError(err);
  }
});

// ── refreshing as the designer types ──────────────────────────────────────────────────────

let refreshTimer = null;
let refreshing = 0;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    refreshing += 1;
    try {
      await refresh();
    } finally {
      refreshing -= 1;
    }
  }, CHECK_DELAY);
}

async function refresh() {
  try {
    await check();
  } catch (err) {
    status(err.message, true);
    return;
  }
  await refreshTimeline();
  requestFrame();
}

// ── saving, playing, assets, changes on disk ──────────────────────────────────────────────

async function save() {
  const files = drafts();
  if (!Object.keys(files).length) {
    status("nothing to save");
    return;
  }
  try {
    const done = await call("POST", api("save"), withVersion({ files }));
    for (const rel of done.saved) state.files[rel].saved = files[rel];
    if (done.version) state.version = done.version;
    const note = done.problems ? ` — ${done.problems} problem(s): saved as work in progress` : "";
    status(`saved ${done.saved.join(", ")}${done.version ? " as version " + done.version : ""}${note}`);
    markTabs();
  } catch (err) {
    status(`not saved: ${err.message}`, true);
  }
}

async function play(preview) {
  if (!state.record) return;
  const bar = $("progress");
  bar.hidden = false;
  bar.value = 0;
  try {
    const started = await call("POST", api("play"), withVersion({ files: drafts(), record: state.record, preview }));
    for (let i = 0; i < 1200; i++) {
      const r = await call("GET", `/renders/${started.render_id}`);
      bar.value = r.progress;
      if (r.status === "failed") throw new Error(r.error ? r.error.message : "the render failed");
      if (r.status === "done") {
        const player = $("player");
        player.src = r.urls.video;
        player.hidden = false;
        $("frame").hidden = true;
        const link = $("download");
        link.href = r.urls.video;
        link.hidden = false;
        link.textContent = preview ? "preview MP4" : "full-quality MP4";
        player.play().catch(() => {});
        status(preview ? "preview rendered" : "full-quality video rendered");
        return;
      }
      await new Promise((ok) => setTimeout(ok, 400));
    }
  } catch (err) {
    status(`cannot play: ${err.message}`, true);
  } finally {
    bar.hidden = true;
  }
}

$("save").addEventListener("click", save);
$("play").addEventListener("click", () => play(true));
$("full").addEventListener("click", () => play(false));

async function loadAssets(assets) {
  const list = $("assets");
  list.replaceChildren();
  for (const a of assets) {
    const li = document.createElement("li");
    li.dataset.path = a.path;
    if (a.kind === "image" || a.kind === "video") {
      const img = document.createElement("img");
      img.alt = a.path;
      li.append(img);
      const q = new URLSearchParams({ path: a.path });
      if (state.version) q.set("version", state.version);
      call("GET", api(`thumbnail?${q}`))
        .then((resp) => resp.blob())
        .then((blob) => (img.src = URL.createObjectURL(blob)))
        .catch(() => {});
    }
    li.append(`${a.path} (${a.kind}, ${Math.round(a.bytes / 1024)} KB)`);
    list.append(li);
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  for (const file of ev.dataTransfer.files) await upload(file);
});

$("pick").addEventListener("change", async (ev) => {
  for (const file of ev.target.files) await upload(file);
  ev.target.value = "";
});

async function upload(file) {
  try {
    const added = await call("PUT", api(`assets/${encodeURIComponent(file.name)}`), undefined, file);
    uploadNote(`added ${added.path}`, false);
    await reloadFiles();
  } catch (err) {
    uploadNote(`${file.name} refused: ${err.message}`, true);
  }
}

function uploadNote(text, bad) {
  const note = $("upload-note");
  note.textContent = text;
  note.className = bad ? "error" : "muted";
}

async function reloadFiles() {
  const q = state.version ? `?version=${encodeURIComponent(state.version)}` : "";
  const found = await call("GET", api(`files${q}`));
  state.template = found.template;
  state.folder = found.folder;
  state.revision = found.revision;
  found.replaced = loadFiles(found.files);
  markTabs();
  loadAssets(found.assets);
  return found;
}

async function watchDisk() {
  if (!state.folder) return;
  try {
    const seen = await call("GET", api(`changes?since=${state.revision}`));
    if (seen.revision !== state.revision) {
      state.revision = seen.revision;
      const found = await reloadFiles();
      if (found.replaced.length) {
        status(`reloaded from disk: ${found.replaced.join(", ")}`);
        await refresh();
      }
    }
  } catch (err) {
    status(err.message, true);
  }
  setTimeout(watchDisk, POLL_CHANGES);
}

// ── start ─────────────────────────────────────────────────────────────────────────────────

async function askKey() {
  const dialog = $("key-dialog");
  dialog.showModal();
  await new Promise((ok) => dialog.addEventListener("close", ok, { once: true }));
  return $("key-input").value;
}

async function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("key")) {
    sessionStorage.setItem("reel-studio-key", hash.get("key"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  state.key = sessionStorage.getItem("reel-studio-key") || (await askKey());
  sessionStorage.setItem("reel-studio-key", state.key);
  const query = new URLSearchParams(location.search);
  state.schema = await (await fetch("/schema/template")).json();
  if (query.get("template")) {
    state.ws = query.get("template");
    state.version = query.get("version");
  } else {
    const { workspaces } = await call("GET", "/studio/api/workspaces");
    if (!workspaces.length) {
      status("open a template: /studio?template=ID", true);
      return;
    }
    state.ws = workspaces[0].id;
  }
  const found = await reloadFiles();
  $("workspace").textContent = state.folder ? found.name : `${found.name} v${found.version}`;
  openFile(found.template);
  await loadRecipients();
  await refresh();
  document.body.dataset.ready = "1";
  setTimeout(watchDisk, POLL_CHANGES);
}

start().catch((err) => status(err.message, true));
// For tests and the curious: nothing is waiting to be checked or drawn when idle() is true.
const idle = () => refreshTimer === null && refreshing === 0 && !drawing && !wanted;
window.reelStudio = { view, state, seek, drafts, idle };
