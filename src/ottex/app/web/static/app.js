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
};

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
  const s = { task: state.task, style: state.uploads.style.map((u) => u.id), seed: Number($("#seed").value || 0) };
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
  }
  s.options = optionValues();
  return s;
}

// Put a recorded run's settings back into the form ("Edit" in the gallery).
async function loadSettings(record) {
  state.task = record.task;
  document.querySelectorAll("input[name=task]").forEach((r) => { r.checked = r.value === record.task; });
  taskChanged();
  if (record.method) { $("#method").value = record.method; methodChanged(); }
  const info = async (id) => (id ? { id, name: "", ...(await api(`/api/uploads/${id}/info`).catch(() => ({}))) } : null);
  state.uploads.style = await Promise.all((record.style || []).map(info));
  state.uploads.content = await info(record.content);
  renderUploads("style");
  renderUploads("content");
  for (const key of ["width", "height", "size", "seed", "rotations"]) {
    if (record[key] !== undefined) $(`#${key}`).value = record[key] === null ? "" : record[key];
  }
  if ("preserve_color" in record) $("#preserve_color").value = record.preserve_color || "";
  const method = currentMethod();
  for (const [name, value] of Object.entries(record.options || {})) {
    const opt = method && method.options.find((o) => o.name === name);
    const input = $(`#opt-${CSS.escape(name)}`);
    if (!opt || !input) continue;
    if (opt.widget === "mask") { state.masks[name] = await info(value); renderMask(name); }
    else if (opt.widget === "bool") input.checked = !!value;
    else input.value = Array.isArray(value) ? value.join(",") : value;
  }
  window.scrollTo({ top: 0, behavior: "smooth" });
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
  const img = Object.assign(document.createElement("img"), { src: `/api/uploads/${info.id}`, alt: info.name || "upload" });
  const name = Object.assign(document.createElement("div"), { className: "name", textContent: info.name || "" });
  if (info.width) name.title = `${info.name} (${info.width}x${info.height})`;
  const remove = Object.assign(document.createElement("button"), { type: "button", className: "remove", textContent: "x", title: "remove" });
  remove.addEventListener("click", onRemove);
  box.append(img, name, remove);
  return box;
}

function renderUploads(role) {
  const box = $(`#${role}-thumbs`);
  box.textContent = "";
  const list = role === "style" ? state.uploads.style : (state.uploads.content ? [state.uploads.content] : []);
  for (const info of list) {
    box.append(uploadThumb(info, () => {
      if (role === "style") state.uploads.style = state.uploads.style.filter((u) => u !== info);
      else state.uploads.content = null;
      renderUploads(role);
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
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles(role, e.dataTransfer.files);
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
  if (p.loss !== null && p.loss !== undefined) parts.push(`loss ${p.loss.toPrecision(4)}`);
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

function galleryCard(job) {
  const el = $("#card-template").content.firstElementChild.cloneNode(true);
  el.dataset.id = job.id;
  el.dataset.status = job.status;
  el.classList.add(job.status);
  $(".card-label", el).textContent = job.label;
  const when = new Date((job.finished || job.created) * 1000).toLocaleTimeString();
  const meta = [job.status === "done" ? `${job.result.width}x${job.result.height}` : job.status, seconds(job.seconds),
    job.startup !== null && job.startup !== undefined ? `started in ${seconds(job.startup)}` : "", job.device, when];
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
  if (job.status === "done") {
    $(".thumb", el).src = job.result.thumb;
    $(".thumb-link", el).href = job.result.image;
    if (Math.max(job.result.width, job.result.height) < 200) el.classList.add("small");
    const download = $(".download", el);
    download.href = job.result.image;
    download.setAttribute("download", "");
  } else {
    $(".thumb-link", el).remove();
    $(".download", el).remove();
    if (job.error) {
      const box = $(".card-error", el);
      box.textContent = job.error;
      box.hidden = false;
    }
  }
  return el;
}

async function refreshGallery() {
  const data = await api("/api/jobs");
  const gallery = $("#gallery");
  gallery.textContent = "";
  for (const job of data.finished) gallery.append(galleryCard(job));
  $("#gallery-empty").hidden = data.finished.length > 0;
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
    const job = await api("/api/jobs", { method: "POST", body: settings() });
    showError("");
    notice(`queued: ${job.label}`, 3);
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
  buildTasks();
  taskChanged();
  setUpDrop("style");
  setUpDrop("content");
  $("#method").addEventListener("change", methodChanged);
  $("#run-form").addEventListener("submit", submit);
  $("#reset-options").addEventListener("click", buildOptions);
  $("#random-seed").addEventListener("click", () => { $("#seed").value = Math.floor(Math.random() * 2 ** 31); });
  listen();
  document.body.dataset.ready = "1";
}

main();
