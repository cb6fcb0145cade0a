// The page of `ottex serve`: a form made from the server's method registry (/api/schema), uploads,
// live progress from the server's event stream (/api/events), the queue and the gallery.
// Plain JavaScript, no build step.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = {
  schema: null,
  task: "synthesis",
  uploads: { style: [], content: null },
  masks: {},               // option name -> upload info
  finishedCount: -1,
  running: new Map(),      // job id -> element
  galleryLimit: 24,        // results shown (More adds a page)
  gallery: [],             // the finished runs shown, newest first
  earlier: { role: "style", offset: 0 },
  view: null,              // index in state.gallery of the result in the lightbox
  restoring: false,
};
const STORE = "ottex.form";        // the form, kept across reloads (localStorage)
const PRESETS = "ottex.presets";   // named settings

// ---------------------------------------------------------------------------------------------------------
// Talking to the server

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (body instanceof Blob) {
      init.body = body;
      init.headers["content-type"] = body.type || "application/octet-stream";
    } else {
      init.body = JSON.stringify(body);
      init.headers["content-type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw Object.assign(new Error("the server cannot be reached; is `ottex serve` still running?"), { option: null });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || `the server answered ${response.status}`;
    throw Object.assign(new Error(message), { option: data ? data.option : null });
  }
  return data;
}

// ---------------------------------------------------------------------------------------------------------
// Messages

function showError(message, option) {
  const box = $("#form-error");
  box.textContent = message;
  box.hidden = !message;
  document.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  if (option) {
    const field = document.querySelector(`[data-option="${CSS.escape(option)}"]`) ||
      ($(`#${CSS.escape(option)}`) && $(`#${CSS.escape(option)}`).closest(".row")) ||
      $(`#${CSS.escape(option)}-drop`);
    if (field) field.classList.add("invalid");
  }
}

let noticeTimer = null;

function notice(message, seconds = 0) {
  const box = $("#notice");
  box.textContent = message;
  box.hidden = !message;
  clearTimeout(noticeTimer);
  if (message && seconds) noticeTimer = setTimeout(() => { box.hidden = true; }, seconds * 1000);
}

// ---------------------------------------------------------------------------------------------------------
// The form, from the schema

function currentMethod() {
  if (state.task === "color") return null;
  return state.schema.methods.find((m) => m.name === $("#method").value) || null;
}

function buildTasks() {
  const field = $("#task-field");
  for (const task of state.schema.tasks) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    Object.assign(input, { type: "radio", name: "task", value: task.name, checked: task.name === state.task });
    input.addEventListener("change", () => { state.task = task.name; taskChanged(); });
    label.append(input, " ", task.label);
    field.append(label);
  }
  for (const mode of state.schema.preserve_color) {
    $("#preserve_color").append(new Option(mode, mode));
  }
  const d = state.schema.defaults;
  $("#width").value = d.width;
  $("#height").value = d.height;
  $("#size").value = d.size;
  $("#seed").value = d.seed;
  $("#rotations").value = state.schema.color.rotations.default;
  $("#rotations-help").textContent = state.schema.color.rotations.help;
  const clip = state.schema.clip || { temporal: [], containers: [] };
  for (const mode of clip.temporal) $("#temporal").append(new Option(mode, mode));
  for (const c of clip.containers) $("#container").append(new Option(c === "webm" ? "WebM (VP9)" : `${c.toUpperCase()} (H.264)`, c));
  $("#temporal").addEventListener("change", temporalHelp);
  temporalHelp();
}

// A clip's settings (ottex video's --temporal, --blend, --frames; the result's container): shown, and sent,
// only when the content of a style transfer is a clip.
const TEMPORAL_HELP = {
  consistent: "each frame starts from the previous result moved along the optical flow (ot); other methods blend",
  blend: "each frame styled on its own, then blended with the previous result where the flow is reliable",
  "per-frame": "each frame styled on its own, with the same seed (fastest; may flicker)",
};

function temporalHelp() {
  $("#temporal-help").textContent = TEMPORAL_HELP[$("#temporal").value] || "";
}

function isClip() {
  return state.task === "transfer" && !!(state.uploads.content && state.uploads.content.frames);
}

function clipChanged() {
  const on = isClip();
  document.querySelectorAll("[data-clip]").forEach((el) => {
    el.hidden = !on;
    el.querySelectorAll("input, select").forEach((input) => { input.disabled = !on; });
  });
}

function taskChanged() {
  const task = state.task;
  document.querySelectorAll("[data-for]").forEach((el) => { el.hidden = el.dataset.for !== task; });
  $("#content-drop").hidden = task === "synthesis";
  $("#method-row").hidden = task === "color";
  $("#options").hidden = task === "color";
  $("#style-title").textContent = task === "color" ? "Colours from" : "Style";
  $("#content-title").textContent = task === "color" ? "Image to recolour" : "Content";
  const select = $("#method");
  const previous = select.value;
  select.textContent = "";
  for (const m of state.schema.methods.filter((m) => m.tasks.includes(task))) {
    select.append(new Option(m.name, m.name));
  }
  const names = [...select.options].map((o) => o.value);
  select.value = names.includes(previous) ? previous : (names.includes(state.schema.default_method) ? state.schema.default_method : names[0] || "");
  methodChanged();
  clipChanged();
}

function methodChanged() {
  const method = currentMethod();
  $("#method-help").textContent = method ? method.description : "";
  $("#options-method").textContent = method ? method.name : "";
  const many = state.task === "synthesis" && method && method.mixes;
  $("#style-input").multiple = !!many;
  $("#style-hint").textContent = many ? "Drop one image, or several to mix them, here or" : "Drop an image here or";
  if (!many && state.uploads.style.length > 1) state.uploads.style = state.uploads.style.slice(0, 1);
  renderUploads("style");
  buildOptions();
}

function optionInput(opt) {
  let input;
  if (opt.widget === "bool") {
    input = Object.assign(document.createElement("input"), { type: "checkbox", checked: !!opt.default });
  } else if (opt.widget === "choice") {
    input = document.createElement("select");
    for (const c of opt.choices) input.append(new Option(c, c));
    input.value = opt.default;
  } else if (opt.widget === "mask") {
    input = Object.assign(document.createElement("input"), { type: "file", accept: "image/*" });
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (!file) return;
      try {
        state.masks[opt.name] = await uploadFile(file);
        showError("");
      } catch (err) {
        input.value = "";
        delete state.masks[opt.name];
        showError(err.message, opt.name);
      }
      renderMask(opt.name);
    });
  } else {
    input = document.createElement("input");
    input.type = opt.widget === "text" ? "text" : "number";
    if (opt.widget === "float") input.step = "any";
    if (opt.default !== null && opt.default !== undefined) input.value = opt.default;
    if (opt.optional) input.placeholder = "auto";
    if (opt.metavar && opt.widget === "text") input.placeholder = opt.metavar;
  }
  input.id = `opt-${opt.name}`;
  input.dataset.name = opt.name;
  return input;
}

function buildOptions() {
  const box = $("#option-fields");
  box.textContent = "";
  state.masks = {};
  const method = currentMethod();
  if (!method) return;
  for (const opt of method.options.filter((o) => o.tasks.includes(state.task))) {
    const wrap = document.createElement("div");
    wrap.className = `option ${opt.widget}`;
    wrap.dataset.option = opt.name;
    const label = document.createElement("label");
    label.htmlFor = `opt-${opt.name}`;
    const input = optionInput(opt);
    if (opt.widget === "bool") {
      label.append(input, " ", opt.label);
      wrap.append(label);
    } else {
      label.textContent = opt.label;
      wrap.append(label, input);
    }
    if (opt.widget === "mask") {
      const chosen = document.createElement("div");
      chosen.className = "thumbs mask-thumbs";
      wrap.append(chosen);
    }
    const help = document.createElement("p");
    help.className = "help";
    help.textContent = opt.help;
    help.title = `${opt.flag} on the command line`;
    wrap.append(help);
    box.append(wrap);
  }
}

function renderMask(name) {
  const box = document.querySelector(`[data-option="${CSS.escape(name)}"] .mask-thumbs`);
  if (!box) return;
  box.textContent = "";
  const info = state.masks[name];
  if (info) box.append(uploadThumb(info, () => {
    delete state.masks[name];
    $(`#opt-${CSS.escape(name)}`).value = "";
    renderMask(name);
  }));
}

function optionValues() {
  const method = currentMethod();
  const out = {};
  if (!method) return out;
  for (const opt of method.options.filter((o) => o.tasks.includes(state.task))) {
    const input = $(`#opt-${CSS.escape(opt.name)}`);
    if (!input) continue;
    if (opt.widget === "mask") {
      if (state.masks[opt.name]) out[opt.name] = state.masks[opt.name].id;
    } else if (opt.widget === "bool") {
      if (input.checked !== !!opt.default) out[opt.name] = input.checked;
    } else {
      const value = input.value.trim();
      const dflt = opt.default === null || opt.default === undefined ? "" : String(opt.default);
      if (value !== dflt && value !== "") out[opt.name] = opt.widget === "int" || opt.widget === "float" ? Number(value) : value;
    }
  }
  return out;
}

function settings() {
  const s = { task: state.task, style: state.uploads.style.map((u) => u.id), seed: $("#seed").value === "" ? 0 : $("#seed").value };
  if (state.task !== "synthesis") s.content = state.uploads.content ? state.uploads.content.id : null;
  if (state.task === "color") {
    s.rotations = $("#rotations").value;
    return s;
  }
  s.method = $("#method").value;
  if (state.task === "synthesis") {
    s.width = $("#width").value;
    s.height = $("#height").value;
  } else {
    s.size = $("#size").value;
    s.preserve_color = $("#preserve_color").value || null;
    if (isClip()) {
      s.temporal = $("#temporal").value;
      s.blend = $("#blend").value;
      s.frames = $("#frames").value.trim();
      s.container = $("#container").value;
    }
  }
  s.options = optionValues();
  return s;
}

// Put a recorded run's settings back into the form ("Edit" in the gallery).
async function loadSettings(record, scroll = true) {
  state.task = record.task;
  document.querySelectorAll("input[name=task]").forEach((r) => { r.checked = r.value === record.task; });
  taskChanged();
  if (record.method && [...$("#method").options].some((o) => o.value === record.method)) {
    $("#method").value = record.method;
    methodChanged();
  }
  const info = async (id) => (id ? { id, name: "", ...(await api(`/api/uploads/${id}/info`).catch(() => ({ gone: true }))) } : null);
  state.uploads.style = (await Promise.all((record.style || []).map(info))).filter((u) => u && !u.gone);
  state.uploads.content = await info(record.content);
  if (state.uploads.content && state.uploads.content.gone) state.uploads.content = null;
  renderUploads("style");
  renderUploads("content");
  for (const key of ["width", "height", "size", "seed", "rotations"]) {
    if (record[key] !== undefined) $(`#${key}`).value = record[key] === null ? "" : record[key];
  }
  if ("preserve_color" in record) $("#preserve_color").value = record.preserve_color || "";
  const clip = state.schema.clip || { temporal: [""], containers: [""] };
  $("#temporal").value = record.temporal || clip.temporal[0];
  $("#container").value = record.container || clip.containers[0];
  $("#blend").value = record.blend === null || record.blend === undefined ? "" : record.blend;
  $("#frames").value = record.frames || "";
  temporalHelp();
  const method = currentMethod();
  for (const [name, value] of Object.entries(record.options || {})) {
    const opt = method && method.options.find((o) => o.name === name);
    const input = $(`#opt-${CSS.escape(name)}`);
    if (!opt || !input) continue;
    if (opt.widget === "mask") { state.masks[name] = await info(value); renderMask(name); }
    else if (opt.widget === "bool") input.checked = !!value;
    else input.value = Array.isArray(value) ? value.join(",") : value;
  }
  if (Object.keys(record.options || {}).length) $("#options").open = true;
  if (state.syncSize) state.syncSize();
  if (scroll) $(".form-scroll").scrollTo({ top: 0, behavior: "smooth" });
  saveForm();
}

// ---------------------------------------------------------------------------------------------------------
// Uploads

async function uploadFile(file) {
  return api(`/api/uploads?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
}

function uploadThumb(info, onRemove) {
  const box = document.createElement("div");
  box.className = "upload";
  box.dataset.id = info.id;
  const img = Object.assign(document.createElement("img"), { src: `/api/uploads/${info.id}/thumb`, alt: info.name || "upload" });
  const name = Object.assign(document.createElement("div"), { className: "name", textContent: info.name || "" });
  if (info.width) name.title = `${info.name} (${info.width}x${info.height}${info.frames ? `, ${info.frames} frames` : ""})`;
  const remove = Object.assign(document.createElement("button"), { type: "button", className: "remove", textContent: "x", title: "remove" });
  remove.addEventListener("click", onRemove);
  box.append(img, name, remove);
  return box;
}

function renderUploads(role) {
  const box = $(`#${role}-thumbs`);
  box.textContent = "";
  if (role === "content") clipChanged();
  const list = role === "style" ? state.uploads.style : (state.uploads.content ? [state.uploads.content] : []);
  for (const info of list) {
    box.append(uploadThumb(info, () => {
      if (role === "style") state.uploads.style = state.uploads.style.filter((u) => u !== info);
      else state.uploads.content = null;
      renderUploads(role);
      saveForm();
    }));
  }
}

async function addFiles(role, files) {
  const method = currentMethod();
  const many = role === "style" && state.task === "synthesis" && method && method.mixes;
  const chosen = many ? [...files] : [...files].slice(0, 1);
  for (const file of chosen) {
    try {
      const info = await uploadFile(file);
      if (role === "content") state.uploads.content = info;
      else if (many) state.uploads.style.push(info);
      else state.uploads.style = [info];
      showError("");
    } catch (err) {
      showError(err.message, role);
    }
    renderUploads(role);
  }
  saveForm();
}

function setUpDrop(role) {
  const zone = $(`#${role}-drop`);
  const input = $(`#${role}-input`);
  input.addEventListener("change", () => { addFiles(role, input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const result = e.dataTransfer && e.dataTransfer.getData("application/x-ottex-result");
    if (result) useResult(result, role);
    else if (e.dataTransfer && e.dataTransfer.files.length) addFiles(role, e.dataTransfer.files);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Runs: progress, queue, gallery

function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function progressText(p) {
  const parts = [];
  if (p.scales > 1) parts.push(`scale ${p.scale + 1}/${p.scales} (${p.size[1]}x${p.size[0]})`);
  else parts.push(`${p.size[1]}x${p.size[0]}`);
  parts.push(`${p.unit} ${Math.min(p.step, p.steps)}/${p.steps}`);
  parts.push(`${Math.round((100 * p.done) / Math.max(1, p.total))} %`);
  parts.push(`${seconds(p.elapsed)} elapsed`);
  if (p.kind === "done") parts.push("finishing");
  else if (p.eta !== null && p.eta !== undefined) parts.push(`about ${seconds(p.eta)} left`);
  else parts.push("estimating the time left");
  if (p.loss !== null && p.loss !== undefined) parts.push(`loss ${p.loss.toPrecision(4)}`);
  if (p.notes && p.notes.length) parts.push(...p.notes); // e.g. the layout auto chose, and why
  return parts.join(" · ");
}

function runningCard(job) {
  let el = state.running.get(job.id);
  if (!el) {
    el = $("#running-template").content.firstElementChild.cloneNode(true);
    el.dataset.id = job.id;
    $(".job-label", el).textContent = job.label;
    $(".progress-text", el).textContent = "starting";
    $(".cancel", el).addEventListener("click", () => cancel(job.id, $(".cancel", el)));
    state.running.set(job.id, el);
    $("#running").append(el);
  }
  el.dataset.status = job.status;
  return el;
}

function showProgress(p) {
  const el = state.running.get(p.id);
  if (!el) return;
  $("progress", el).value = p.total ? p.done / p.total : 0;
  $(".progress-text", el).textContent = progressText(p);
  el.dataset.done = p.done;
  el.dataset.total = p.total;
  if (p.preview) {
    const img = $(".preview", el);
    img.src = `/api/jobs/${p.id}/preview?n=${p.preview}`;
    img.hidden = false;
  }
}

async function cancel(id, button) {
  if (button) button.disabled = true;
  try {
    await api(`/api/jobs/${id}/cancel`, { method: "POST" });
  } catch (err) {
    notice(err.message);
  }
}

function renderQueue(active) {
  const ids = new Set(active.filter((j) => j.status === "running").map((j) => j.id));
  for (const [id, el] of state.running) {
    if (!ids.has(id)) { el.remove(); state.running.delete(id); }
  }
  for (const job of active.filter((j) => j.status === "running")) {
    const el = runningCard(job);
    if (job.progress) showProgress({ id: job.id, ...job.progress });
    $(".cancel", el).disabled = false;
  }
  $("#idle").hidden = state.running.size > 0;
  const list = $("#queue");
  list.textContent = "";
  for (const job of active.filter((j) => j.status === "queued")) {
    const li = document.createElement("li");
    li.dataset.id = job.id;
    li.textContent = job.label;
    const button = Object.assign(document.createElement("button"), { type: "button", textContent: "x", title: "remove from the queue" });
    button.addEventListener("click", () => cancel(job.id, button));
    li.append(button);
    list.append(li);
  }
  $("#queue-empty").hidden = list.children.length > 0;
}

function when(t) {
  const d = new Date(t * 1000);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? `today ${d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`
    : d.toLocaleString([], { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function galleryCard(job, index) {
  const el = $("#card-template").content.firstElementChild.cloneNode(true);
  el.dataset.id = job.id;
  el.dataset.status = job.status;
  el.classList.add(job.status);
  $(".card-label", el).textContent = job.label;
  const meta = [job.status === "done" ? `${job.result.width}x${job.result.height}` : job.status, seconds(job.seconds),
    job.startup !== null && job.startup !== undefined ? `started in ${seconds(job.startup)}` : "", job.device,
    when(job.finished || job.created)];
  $(".card-meta", el).textContent = meta.filter(Boolean).join(" · ");
  const settingsBox = $(".settings", el);
  settingsBox.textContent = JSON.stringify(job.settings, null, 2);
  $(".show-settings", el).addEventListener("click", () => { settingsBox.hidden = !settingsBox.hidden; });
  $(".use-settings", el).addEventListener("click", () => loadSettings(job.settings).catch((err) => showError(err.message)));
  $(".rerun", el).addEventListener("click", async (e) => {
    e.target.disabled = true;
    try {
      await api(`/api/jobs/${job.id}/rerun`, { method: "POST", body: {} });
      notice("queued again with a new seed", 3);
    } catch (err) {
      notice(err.message);
    } finally {
      e.target.disabled = false;
    }
  });
  const star = $(".star", el);
  const showStar = () => {
    star.classList.toggle("on", !!job.starred);
    el.classList.toggle("starred", !!job.starred);
    star.innerHTML = job.starred ? "&#9733;" : "&#9734;";
    star.title = job.starred ? "starred: click to unstar" : "star";
  };
  showStar();
  star.addEventListener("click", () => toggleStar(job).then(showStar));
  $(".delete", el).addEventListener("click", () => deleteRun(job, el));
  if (job.status === "done") {
    const thumb = $(".thumb", el);
    thumb.src = job.result.thumb;
    $(".thumb-link", el).href = job.result.image;
    if (job.result.video) {  // a clip: its thumbnail is a strip of frames, and it links to the video
      el.classList.add("clip");
      $(".thumb-link", el).title = `a video of ${job.result.frames} frames: open it`;
      $(".as-style", el).remove();
      $(".as-content", el).remove();
    } else {
      $(".thumb-link", el).addEventListener("click", (e) => { e.preventDefault(); openView(index); });
    }
    thumb.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("application/x-ottex-result", job.id);
      e.dataTransfer.setData("text/uri-list", new URL(job.result.image, location.href).href);
      e.dataTransfer.effectAllowed = "copy";
    });
    if (Math.max(job.result.width, job.result.height) < 200) el.classList.add("small");
    const download = $(".download", el);
    download.href = job.result.image;
    download.setAttribute("download", "");
    if (job.result.video) download.textContent = ((job.settings && job.settings.container) || "mp4").toUpperCase();
    $(".as-style", el)?.addEventListener("click", () => useResult(job.id, "style"));
    $(".as-content", el)?.addEventListener("click", () => useResult(job.id, "content"));
  } else {
    $(".thumb-link", el).remove();
    $(".download", el).remove();
    $(".as-style", el).remove();
    $(".as-content", el).remove();
    $(".rerun", el).hidden = job.status === "cancelled" && !job.settings;
    if (job.error) {
      const box = $(".card-error", el);
      box.textContent = job.error;
      box.hidden = false;
    }
  }
  return el;
}

async function toggleStar(job) {
  try {
    const updated = await api(`/api/jobs/${job.id}/star`, { method: "POST", body: { starred: !job.starred } });
    job.starred = updated.starred;
  } catch (err) {
    notice(err.message);
  }
}

async function deleteRun(job, el) {
  try {
    await api(`/api/jobs/${job.id}`, { method: "DELETE" });
    el.remove();
    state.gallery = state.gallery.filter((j) => j.id !== job.id);
    notice("deleted", 2);
  } catch (err) {
    notice(err.message);
  }
}

// A result back in as a style or content: the PNG is fetched and uploaded like a file.
async function useResult(jobId, role) {
  try {
    const response = await fetch(`/api/jobs/${jobId}/image`);
    if (!response.ok) throw new Error(`the result cannot be read (${response.status})`);
    const blob = await response.blob();
    const file = new File([blob], `result_${jobId}.png`, { type: "image/png" });
    if (role === "content" && state.task === "synthesis") {
      state.task = "transfer";
      document.querySelectorAll("input[name=task]").forEach((r) => { r.checked = r.value === "transfer"; });
      taskChanged();
    }
    await addFiles(role, [file]);
    notice(`the result is now the ${role}`, 3);
  } catch (err) {
    showError(err.message, role);
  }
}

function galleryQuery() {
  const q = new URLSearchParams({ limit: String(state.galleryLimit) });
  if ($("#starred-only").checked) q.set("starred", "1");
  if ($("#hide-unfinished").checked) q.set("status", "done");
  return q.toString();
}

async function refreshGallery() {
  const data = await api(`/api/jobs?${galleryQuery()}`);
  const gallery = $("#gallery");
  gallery.textContent = "";
  state.gallery = data.finished;
  data.finished.forEach((job, i) => gallery.append(galleryCard(job, i)));
  $("#gallery-empty").hidden = data.finished.length > 0;
  $("#gallery-count").textContent = data.total ? `(${data.finished.length} of ${data.total})` : "";
  $("#gallery-more").hidden = data.finished.length >= data.total;
}

// ---------------------------------------------------------------------------------------------------------
// The view: a result large, beside its inputs, or before/after

function doneViews() {
  return state.gallery.map((j, i) => [j, i]).filter(([j]) => j.status === "done");
}

function openView(index) {
  const job = state.gallery[index];
  if (!job || job.status !== "done" || job.result.video) return;  // a clip's result is a video: its own link
  state.view = index;
  const s = job.settings;
  $("#lightbox-label").textContent = job.label;
  $("#lightbox-meta").textContent = `${job.result.width}x${job.result.height} · ${when(job.finished || job.created)}`;
  $("#lightbox-download").href = job.result.image;
  $("#lightbox-star").textContent = job.starred ? "unstar" : "star";
  const side = $("#lightbox-side");
  side.textContent = "";
  const figure = (src, caption, cls = "") => {
    const f = document.createElement("figure");
    if (cls) f.className = cls;
    const img = Object.assign(document.createElement("img"), { src, alt: caption });
    f.append(img, Object.assign(document.createElement("figcaption"), { textContent: caption }));
    side.append(f);
  };
  for (const id of s.style || []) figure(`/api/uploads/${id}`, s.task === "color" ? "colours from" : "style");
  if (s.content) figure(`/api/uploads/${s.content}`, s.task === "color" ? "recoloured" : "content");
  figure(job.result.image, "result", "result");
  const before = s.content || (s.style || [])[0];
  $("#compare-before").src = before ? `/api/uploads/${before}` : "";
  $("#compare-before-label").textContent = s.content ? "content" : "style";
  $("#compare-after").src = job.result.image;
  $(".compare-frame").style.setProperty("--aspect", `${job.result.width} / ${job.result.height}`);
  $("#lightbox").hidden = false;
}

function closeView() {
  $("#lightbox").hidden = true;
  state.view = null;
}

function stepView(delta) {
  const views = doneViews();
  const at = views.findIndex(([, i]) => i === state.view);
  const next = views[(at + delta + views.length) % views.length];
  if (next) openView(next[1]);
}

function toggleCompare() {
  const compare = $("#lightbox-compare");
  compare.hidden = !compare.hidden;
  $("#lightbox-side").hidden = !compare.hidden;
  $("#lightbox-mode").textContent = compare.hidden ? "before / after" : "side by side";
}

function setUpView() {
  $("#lightbox-close").addEventListener("click", closeView);
  $("#lightbox-prev").addEventListener("click", () => stepView(-1));
  $("#lightbox-next").addEventListener("click", () => stepView(1));
  $("#lightbox-mode").addEventListener("click", toggleCompare);
  $("#lightbox-star").addEventListener("click", async () => {
    const job = state.gallery[state.view];
    if (!job) return;
    await toggleStar(job);
    $("#lightbox-star").textContent = job.starred ? "unstar" : "star";
    refreshGallery().catch((err) => notice(err.message));
  });
  $("#compare-slider").addEventListener("input", (e) => {
    $(".compare-frame").style.setProperty("--cut", `${e.target.value}%`);
  });
  $("#lightbox").addEventListener("click", (e) => { if (e.target.id === "lightbox") closeView(); });
  $("#keys-close").addEventListener("click", () => { $("#keys").hidden = true; });
  $("#show-keys").addEventListener("click", () => { $("#keys").hidden = false; });
}

function typing(e) {
  const t = e.target;
  if (!t) return false;
  if (t.tagName === "INPUT") return !["range", "checkbox", "radio", "button", "file"].includes(t.type);
  return t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable;
}

function onKey(e) {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
    e.preventDefault();
    $("#run-form").requestSubmit();
    return;
  }
  if (e.key === "Escape") {
    if (!$("#keys").hidden) $("#keys").hidden = true;
    else if (!$("#lightbox").hidden) closeView();
    else if (!$("#earlier").hidden) $("#earlier").hidden = true;
    return;
  }
  if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "?") { $("#keys").hidden = !$("#keys").hidden; return; }
  if ($("#lightbox").hidden) return;
  if (e.key === "ArrowLeft") stepView(-1);
  else if (e.key === "ArrowRight") stepView(1);
  else if (e.key === "b" || e.key === "B") toggleCompare();
  else if (e.key === "s" || e.key === "S") $("#lightbox-star").click();
}

// ---------------------------------------------------------------------------------------------------------
// Earlier uploads, sizes, presets, the form kept across reloads

async function showEarlier(role, more = false) {
  const panel = $("#earlier");
  if (!more) {
    state.earlier = { role, offset: 0 };
    $("#earlier-thumbs").textContent = "";
  }
  $("#earlier-title").textContent = `Earlier uploads: click one to use it as the ${role}`;
  panel.hidden = false;
  try {
    const data = await api(`/api/uploads?offset=${state.earlier.offset}&limit=24`);
    for (const info of data.uploads) {
      const box = uploadThumb(info, () => {});
      $(".remove", box).remove();
      box.title = `${info.name} (${info.width}x${info.height})`;
      box.addEventListener("click", () => pickEarlier(info));
      $("#earlier-thumbs").append(box);
    }
    state.earlier.offset += data.uploads.length;
    $("#earlier-more").hidden = state.earlier.offset >= data.total;
    if (!data.total) $("#earlier-thumbs").textContent = "No uploads yet.";
  } catch (err) {
    showError(err.message);
  }
}

function pickEarlier(info) {
  const role = state.earlier.role;
  const method = currentMethod();
  const many = role === "style" && state.task === "synthesis" && method && method.mixes;
  if (role === "content") state.uploads.content = info;
  else if (many) state.uploads.style.push(info);
  else state.uploads.style = [info];
  renderUploads(role);
  if (!many) $("#earlier").hidden = true;
  saveForm();
}

function setUpSizes() {
  let aspect = null;
  const lock = $("#aspect-lock");
  const w = $("#width");
  const h = $("#height");
  const remember = () => { aspect = Number(w.value) / Number(h.value) || null; };
  const sync = () => {  // the preset that the size is, if any
    const size = `${w.value}x${h.value}`;
    $("#size-preset").value = [...$("#size-preset").options].some((o) => o.value === size) ? size : "";
  };
  state.syncSize = sync;
  lock.addEventListener("change", remember);
  w.addEventListener("input", () => {
    $("#size-preset").value = "";
    if (lock.checked && aspect && Number(w.value) > 0) h.value = Math.max(16, Math.round(Number(w.value) / aspect));
    sync();
  });
  h.addEventListener("input", () => {
    $("#size-preset").value = "";
    if (lock.checked && aspect && Number(h.value) > 0) w.value = Math.max(16, Math.round(Number(h.value) * aspect));
    sync();
  });
  sync();
  $("#size-preset").addEventListener("change", (e) => {
    const value = e.target.value;
    if (!value) return;
    if (value === "style") {
      const info = state.uploads.style[0];
      if (!info || !info.width) { showError("give a style image first: its aspect is used", "style"); e.target.value = ""; return; }
      const long = 512;
      const r = info.width / info.height;
      w.value = Math.max(16, Math.round(r >= 1 ? long : long * r));
      h.value = Math.max(16, Math.round(r >= 1 ? long / r : long));
    } else {
      const [pw, ph] = value.split("x");
      w.value = pw;
      h.value = ph;
    }
    remember();
    saveForm();
  });
}

function presets() {
  try { return JSON.parse(localStorage.getItem(PRESETS) || "{}"); } catch (err) { return {}; }
}

function renderPresets() {
  const select = $("#preset");
  const chosen = select.value;
  select.textContent = "";
  select.append(new Option("choose a preset", ""));
  for (const name of Object.keys(presets()).sort()) select.append(new Option(name, name));
  select.value = chosen in presets() ? chosen : "";
}

function setUpPresets() {
  renderPresets();
  $("#preset-save").addEventListener("click", () => {
    const name = $("#preset-name").value.trim();
    if (!name) { showError("give the preset a name", "preset-name"); return; }
    const all = presets();
    const s = settings();
    delete s.style;
    delete s.content;
    all[name] = s;
    localStorage.setItem(PRESETS, JSON.stringify(all));
    $("#preset-name").value = "";
    renderPresets();
    $("#preset").value = name;
    notice(`preset "${name}" saved`, 3);
  });
  $("#preset").addEventListener("change", (e) => {
    const s = presets()[e.target.value];
    if (s) loadSettings({ ...s, style: state.uploads.style.map((u) => u.id), content: state.uploads.content && state.uploads.content.id }, false)
      .catch((err) => showError(err.message));
  });
  $("#preset-delete").addEventListener("click", () => {
    const all = presets();
    delete all[$("#preset").value];
    localStorage.setItem(PRESETS, JSON.stringify(all));
    renderPresets();
  });
}

function saveForm() {
  if (state.restoring || !state.schema) return;
  try {
    localStorage.setItem(STORE, JSON.stringify({ settings: settings(), variations: $("#variations").value,
      options_open: $("#options").open, lock: $("#aspect-lock").checked }));
  } catch (err) { /* private mode: the form is simply not kept */ }
  countChanged();
}

async function restoreForm() {
  let kept = null;
  try { kept = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (err) { kept = null; }
  if (!kept || !kept.settings) return;
  state.restoring = true;
  try {
    await loadSettings(kept.settings, false);
    $("#variations").value = kept.variations || 1;
    $("#options").open = !!kept.options_open;
    $("#aspect-lock").checked = !!kept.lock;
    $("#aspect-lock").dispatchEvent(new Event("change"));
  } catch (err) {
    /* a kept form that no longer fits (a method gone): the defaults */
  } finally {
    state.restoring = false;
  }
  countChanged();
}

function countChanged() {
  const n = Object.keys(optionValues()).length;
  $("#options-changed").textContent = n ? `(${n} changed)` : "";
}

function listen() {
  const source = new EventSource("/api/events");
  source.addEventListener("queue", (e) => {
    const data = JSON.parse(e.data);
    renderQueue(data.active);
    const st = data.status;
    $("#server-status").textContent = `${st.devices.join(", ")} · ${st.running} running · ${st.queued} queued · ` +
      `${st.networks} network${st.networks === 1 ? "" : "s"} loaded`;
    if (st.finished !== state.finishedCount) {
      state.finishedCount = st.finished;
      refreshGallery().catch((err) => notice(err.message));
    }
  });
  source.addEventListener("progress", (e) => showProgress(JSON.parse(e.data)));
  source.addEventListener("open", () => notice(""));
  source.addEventListener("error", () => notice("lost the connection to the server; retrying"));
}

// ---------------------------------------------------------------------------------------------------------
// Start

async function submit(e) {
  e.preventDefault();
  const button = $("#run");
  button.disabled = true;
  try {
    const body = settings();
    const variations = Number($("#variations").value || 1);
    if (variations > 1) body.variations = variations;
    const job = await api("/api/jobs", { method: "POST", body });
    showError("");
    notice(variations > 1 ? `queued ${variations} variations: ${job.label} ...` : `queued: ${job.label}`, 3);
    $("#now").scrollIntoView({ block: "nearest" });
  } catch (err) {
    showError(err.message, err.option);
  } finally {
    button.disabled = false;
  }
}

async function main() {
  try {
    state.schema = await api("/api/schema");
  } catch (err) {
    showError(err.message);
    return;
  }
  const limits = state.schema.limits || {};
  if (limits.clip_bytes) {
    $("#clip-hint").textContent = `A short clip (${limits.clip_formats.join(", ")}; up to ${(limits.clip_bytes / 1e6).toPrecision(3) * 1} MB `
      + `and ${limits.clip_frames} frames) can be the content of a style transfer: the result is a video `
      + "(then its temporal mode, blend, frame range and video format show in the form).";
  }
  buildTasks();
  taskChanged();
  setUpDrop("style");
  setUpDrop("content");
  $("#method").addEventListener("change", methodChanged);
  $("#run-form").addEventListener("submit", submit);
  $("#reset-options").addEventListener("click", () => { buildOptions(); saveForm(); });
  $("#random-seed").addEventListener("click", () => { $("#seed").value = Math.floor(Math.random() * 2 ** 31); saveForm(); });
  $("#run-form").addEventListener("input", saveForm);
  $("#run-form").addEventListener("change", saveForm);
  $("#options").addEventListener("toggle", saveForm);
  document.querySelectorAll(".earlier").forEach((b) => b.addEventListener("click", () => showEarlier(b.dataset.role)));
  $("#earlier-more").addEventListener("click", () => showEarlier(state.earlier.role, true));
  $("#earlier-close").addEventListener("click", () => { $("#earlier").hidden = true; });
  $("#gallery-more").addEventListener("click", () => { state.galleryLimit += 24; refreshGallery().catch((err) => notice(err.message)); });
  for (const id of ["#starred-only", "#hide-unfinished"]) {
    $(id).addEventListener("change", () => { state.galleryLimit = 24; refreshGallery().catch((err) => notice(err.message)); });
  }
  setUpSizes();
  setUpPresets();
  setUpView();
  document.addEventListener("keydown", onKey);
  await restoreForm();
  listen();
  document.body.dataset.ready = "1";
}

main();
