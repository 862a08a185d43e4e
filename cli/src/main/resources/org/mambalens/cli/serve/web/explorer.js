// MambaLens explorer: the page of `./mambalens serve`. Plain JavaScript over the server's JSON API (/api/...);
// everything it shows is drawn here on canvases, so it needs nothing from the network but this server.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);

/** What is shown, mirrored in the address bar so that a view can be shared. */
const state = {
  a: "", b: "", method: "rollout", text: "", example: "",
  target: "",      // the explained label or next token ("" = the predicted one)
  pos: null,       // the explained position of a text (null = the model's own: last token, or a classifier's read position)
  layer: 0, ua: "", ub: "",   // the enlarged layer, and per column its channel/head ("" = the mean)
  zoom: null,      // pixels per cell of the enlarged matrix (null = as large as fits about 480 px)
};

let models = [];            // GET /api/models
let uploaded = null;        // a dropped image: {label, dataUrl}; not in the URL
let busy = 0;

// ---------------------------------------------------------------- API

async function api(path, body) {
  const response = await fetch("api/" + path, body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  const doc = await response.json();
  if (!response.ok) throw new Error(doc.error || response.statusText);
  return doc;
}

/** The input fields of a request for model `name`: its text, or the image. */
function input(name) {
  if (kindOf(name) !== "image") return {text: state.text};
  if (uploaded) return {image: uploaded.dataUrl};
  return {example: state.example};
}

const kindOf = name => (models.find(m => m.name === name) || {}).kind;
const isImage = name => kindOf(name) === "image";

// ---------------------------------------------------------------- URL state

function readUrl() {
  const q = new URLSearchParams(location.search);
  for (const key of Object.keys(state)) {
    if (!q.has(key)) continue;
    const value = q.get(key);
    state[key] = ["pos", "layer", "zoom"].includes(key) ? (value === "" ? null : Number(value)) : value;
  }
}

function writeUrl() {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== "" && value !== null && !(key === "text" && isImage(state.a)) && !(key === "example" && !isImage(state.a))) q.set(key, value);
  }
  history.replaceState(null, "", "?" + q.toString());
}

// ---------------------------------------------------------------- colours

/** A blue → white → red ramp over [0, 1] (0 blue, 1 red), as RGB. */
function ramp(v) {
  v = Math.max(0, Math.min(1, v));
  return v < 0.5 ? [Math.round(60 + 390 * v), Math.round(90 + 330 * v), 255] : [255, Math.round(255 - 390 * (v - 0.5)), Math.round(255 - 450 * (v - 0.5))];
}

/** A dark-to-bright ramp for matrices (values min-max normalised to [0, 1]). */
function heat(v) {
  v = Math.max(0, Math.min(1, v));
  return [Math.round(255 * Math.min(1, 1.6 * v)), Math.round(255 * Math.max(0, 1.6 * v - 0.6)), Math.round(80 * (1 - v) + 175 * Math.max(0, v - 0.7) / 0.3)];
}

function normalised(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const range = hi > lo ? hi - lo : 1;
  return values.map(v => (v - lo) / range);
}

// ---------------------------------------------------------------- downloads

/** A float32 NPY file (format 1.0) of `values` with `shape`, as numpy.load reads it. */
function npy(values, shape) {
  const dims = shape.length === 1 ? shape[0] + "," : shape.join(", ");
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - unpadded % 64) % 64) + "\n";
  const bytes = new Uint8Array(10 + header.length + 4 * values.length);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  for (let i = 0; i < header.length; i++) bytes[10 + i] = header.charCodeAt(i);
  new Float32Array(bytes.buffer, 10 + header.length).set(values);
  return new Blob([bytes], {type: "application/octet-stream"});
}

/** Makes `button` download `make()` (a Blob or a canvas) as `file`. */
function offer(button, file, make) {
  button.onclick = () => {
    const made = make();
    const save = blob => {
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = file;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    };
    if (made instanceof HTMLCanvasElement) made.toBlob(save, "image/png"); else save(made);
  };
}

const jsonBlob = doc => new Blob([JSON.stringify(doc, null, 1)], {type: "application/json"});
const flat = rows => rows.flat(Infinity);
const safe = name => name.replace(/[^A-Za-z0-9._-]/g, "_");

// ---------------------------------------------------------------- one column per model

class Column {
  constructor(name, side) {
    this.name = name;
    this.side = side;     // "a" or "b": which unit field of the state is its own
    this.root = $("#column-template").content.firstElementChild.cloneNode(true);
    $(".model-name", this.root).textContent = name + " · " + (models.find(m => m.name === name) || {}).family;
    $(".zoom-level", this.root).oninput = event => { state.zoom = Number(event.target.value); writeUrl(); this.drawZoom(); };
    $(".unit", this.root).onchange = event => { state["u" + side] = event.target.value; writeUrl(); this.loadLayer(); };
    $("#columns").append(this.root);
  }

  fail(error) {
    const p = $(".error", this.root);
    p.hidden = false;
    p.textContent = error.message;
  }

  /** Everything the column shows: the prediction and relevance for the explained position and target, and the layers. */
  async load() {
    await Promise.all([this.loadExplanation(), this.loadLayers()]);
  }

  async loadExplanation() {
    const position = isImage(this.name) ? {} : (state.pos === null ? {} : {position: state.pos});
    try {
      const [prediction, explanation] = await Promise.all([
        api("predict", {model: this.name, ...input(this.name), ...position}),
        api("explain", {model: this.name, ...input(this.name), ...position, method: "all", ...(state.target ? {target: state.target} : {})}),
      ]);
      this.prediction = prediction;
      this.explanation = explanation;
      this.drawPrediction();
      this.drawRelevance();
    } catch (error) {
      this.fail(error);
    }
  }

  drawPrediction() {
    const list = $(".predictions ol", this.root);
    list.replaceChildren();
    const explained = this.explainedName();
    $(".at", this.root).textContent = this.prediction.position === undefined ? "" : "after token " + this.prediction.position;
    for (const p of this.prediction.predictions) {
      const item = document.createElement("li");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = Math.max(1, Math.round(120 * p.probability)) + "px";
      item.append(bar, JSON.stringify(p.name).slice(1, -1) + "  " + p.probability.toFixed(4));
      item.title = "index " + p.index + ": click to explain it";
      if (p.name === explained) item.classList.add("target");
      item.onclick = () => {
        // Text models take a next token as its text or #ID; labels and classes by name.
        state.target = kindOf(this.name) === "language" ? "#" + p.index : p.name;
        changed(false);
      };
      list.append(item);
    }
  }

  /** The name of the explained output, as the predictions list spells it. */
  explainedName() {
    const e = this.explanation;
    if (!e) return null;
    if (isImage(this.name)) return e.models[0].explained_label || e.models[0].label;
    if (e.explained_label !== undefined) return e.explained_label;
    const hit = this.prediction.predictions.find(p => p.index === e.explained_token);
    return hit ? hit.name : null;
  }

  /** The explained method's relevance: coloured tokens (the explained position outlined), or a map over the image. */
  drawRelevance() {
    const e = this.explanation, method = state.method;
    const note = $(".note", this.root);
    note.textContent = (e.notes || []).join("; ");
    $(".explained", this.root).textContent = "of " + JSON.stringify(this.explainedName()) + " by " + $("#method option[value=" + method + "]").textContent;
    const tokens = $(".tokens", this.root), canvas = $(".overlay", this.root);
    const links = $(".relevance .downloads", this.root);
    if (isImage(this.name)) {
      tokens.replaceChildren();
      const model = e.models[0], map = model[method];
      canvas.hidden = !map;
      if (!map) { note.textContent = method + " is not available for this model"; return; }
      drawOverlay(canvas, map);
      const base = safe(this.name) + "_" + method;
      offer($(".png", links), base + ".png", () => canvas);
      offer($(".npy", links), base + ".npy", () => npy(flat(map), [map.length, map.length]));
      offer($(".json", links), base + ".json", () => jsonBlob(e));
      return;
    }
    canvas.hidden = true;
    const row = e[method];
    tokens.replaceChildren();
    if (!row) { note.textContent = method + " is not available for this model"; return; }
    // As the report colours them: the explained position holds most of its own row, so the others get their own scale.
    const at = e.position, scaled = at > 0 ? normalised(row.slice(0, at)).concat([1]) : normalised(row.slice(0, 1));
    e.tokens.forEach((text, t) => {
      const span = document.createElement("span");
      span.className = "token" + (t === at ? " explained" : "") + (t > at ? " after" : "");
      span.textContent = text;
      span.dataset.position = t;
      if (t <= at) {
        const [r, g, b] = ramp(scaled[t]);
        span.style.background = "rgba(" + r + "," + g + "," + b + ",0.55)";
      }
      span.title = "position " + t + ": " + row[t].toPrecision(4) + " (click to explain this position)";
      span.onclick = () => { state.pos = t; changed(false); };
      tokens.append(span);
    });
    const base = safe(this.name) + "_" + method;
    offer($(".png", links), base + ".png", () => tokensPicture(e.tokens, scaled, at));
    offer($(".npy", links), base + ".npy", () => npy(row, [row.length]));
    offer($(".json", links), base + ".json", () => jsonBlob(e));
  }

  /** Every layer's mean |A| as a thumbnail; then the chosen layer enlarged. */
  async loadLayers() {
    try {
      this.layers = await api("attention", {model: this.name, ...input(this.name)});
    } catch (error) {
      this.fail(error);
      return;
    }
    const thumbs = $(".thumbs", this.root);
    thumbs.replaceChildren();
    $(".unit-info", this.root).textContent = "mean |A| over " + this.layers.units + " " + this.layers.unit + "s, min-max normalised per picture";
    this.layers.means.forEach((matrix, l) => {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      drawMatrix(canvas, matrix, 1);
      figure.append(canvas, "layer " + l);
      figure.onclick = () => { state.layer = l; state.ua = state.ub = ""; writeUrl(); columns.forEach(c => c.loadLayer()); };
      thumbs.append(figure);
    });
    await this.loadLayer();
  }

  /** The enlarged layer: its mean, or one channel/head from the list ranked as compare-attention ranks them. */
  async loadLayer() {
    if (!this.layers) return;
    const layer = Math.min(state.layer, this.layers.layers - 1), unit = state["u" + this.side];
    [...$(".thumbs", this.root).children].forEach((f, l) => f.classList.toggle("chosen", l === layer));
    try {
      this.matrix = await api("attention", {model: this.name, ...input(this.name), layer, ...(unit === "" ? {} : {index: Number(unit)})});
    } catch (error) {
      this.fail(error);
      return;
    }
    const m = this.matrix, select = $(".unit", this.root);
    select.replaceChildren(new Option("mean |A| over the " + m.units + " " + m.unit + "s", ""));
    const listed = m.ranking.map(r => r.index);
    if (m.index !== undefined && !listed.includes(m.index)) listed.push(m.index);
    for (const index of listed) {
      const r = m.ranking.find(x => x.index === index);
      select.append(new Option(m.unit + " " + index + (r ? " · off-diagonal share " + r.off_diagonal_share.toFixed(2) : ""), String(index)));
    }
    select.value = m.index === undefined ? "" : String(m.index);
    $(".layer-name", this.root).textContent = "layer " + m.layer;
    this.drawZoom();
  }

  drawZoom() {
    if (!this.matrix) return;
    const m = this.matrix, canvas = $("canvas.zoom", this.root);
    const cell = state.zoom || Math.max(2, Math.min(40, Math.floor(480 / m.matrix.length)));
    $(".zoom-level", this.root).value = cell;
    const what = m.index === undefined ? "mean |A|" : m.unit + " " + m.index + " A";
    drawMatrix(canvas, m.matrix, cell, m.tokens, (i, j, v) =>
      "layer " + m.layer + ", " + what + "\nquery " + i + " " + JSON.stringify(m.tokens[i]) + "\nkey   " + j + " " + JSON.stringify(m.tokens[j]) + "\nvalue " + v.toPrecision(5));
    const base = safe(this.name) + "_layer" + m.layer + (m.index === undefined ? "_mean" : "_" + m.unit + m.index);
    const links = $(".zoom-controls .downloads", this.root);
    offer($(".png", links), base + ".png", () => canvas);
    offer($(".npy", links), base + ".npy", () => npy(flat(m.matrix), [m.matrix.length, m.matrix.length]));
    offer($(".json", links), base + ".json", () => jsonBlob(m));
  }
}

// ---------------------------------------------------------------- pictures

/**
 * A [T][T] matrix at `cell` pixels a cell, coloured by |value| min-max normalised (as compare-attention pictures
 * them); with `labels`, the tokens on both axes (queries down the left, keys along the top) and
 * `describe(i, j, value)` of the signed value shown on hover.
 */
function drawMatrix(canvas, matrix, cell, labels, describe) {
  const T = matrix.length, values = normalised(flat(matrix).map(Math.abs));
  const margin = labels ? Math.min(160, 8 + 7 * Math.max(...labels.map(l => JSON.stringify(l).length))) : 0;
  const font = Math.max(8, Math.min(13, cell));
  const showLabels = labels && cell >= 6;
  const offset = showLabels ? margin : 0;
  canvas.width = offset + T * cell;
  canvas.height = offset + T * cell;
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  const image = g.createImageData(T * cell, T * cell);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const [r, gr, b] = heat(values[i * T + j]);
      for (let y = 0; y < cell; y++) {
        for (let x = 0; x < cell; x++) {
          const k = 4 * ((i * cell + y) * T * cell + j * cell + x);
          image.data.set([r, gr, b, 255], k);
        }
      }
    }
  }
  g.putImageData(image, offset, offset);
  if (showLabels) {
    g.fillStyle = "#222";
    g.font = font + "px ui-monospace, monospace";
    g.textBaseline = "middle";
    g.textAlign = "right";
    labels.forEach((l, i) => g.fillText(JSON.stringify(l).slice(1, -1), offset - 4, offset + (i + 0.5) * cell, margin - 6));
    g.save();
    g.rotate(-Math.PI / 2);
    g.textAlign = "left";
    labels.forEach((l, j) => g.fillText(JSON.stringify(l).slice(1, -1), -offset + 4, offset + (j + 0.5) * cell, margin - 6));
    g.restore();
  }
  if (!describe) return;
  const tip = $("#tooltip");
  canvas.onmousemove = event => {
    const box = canvas.getBoundingClientRect();
    const x = (event.clientX - box.left) * canvas.width / box.width - offset, y = (event.clientY - box.top) * canvas.height / box.height - offset;
    const i = Math.floor(y / cell), j = Math.floor(x / cell);
    if (i < 0 || j < 0 || i >= T || j >= T) { tip.hidden = true; return; }
    tip.textContent = describe(i, j, matrix[i][j]);
    tip.style.left = event.clientX + 14 + "px";
    tip.style.top = event.clientY + 14 + "px";
    tip.hidden = false;
  };
  canvas.onmouseleave = () => { tip.hidden = true; };
}

/** The input image (as the model saw it: the centred square) with a relevance map [S][S] over it. */
function drawOverlay(canvas, map) {
  const S = map.length, scale = Math.max(1, Math.floor(224 / S));
  const source = $("#input-preview");
  canvas.width = canvas.height = S * scale;
  const g = canvas.getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(source, 0, 0, canvas.width, canvas.height);
  const values = flat(map);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const [r, gr, b] = ramp(values[y * S + x]);
      g.fillStyle = "rgba(" + r + "," + gr + "," + b + ",0.5)";
      g.fillRect(x * scale, y * scale, scale, scale);
    }
  }
}

/** The coloured tokens as a picture, for the PNG download. */
function tokensPicture(tokens, scaled, at) {
  const canvas = document.createElement("canvas"), g = canvas.getContext("2d");
  const font = "16px ui-monospace, monospace", width = 900, line = 26;
  g.font = font;
  let x = 8, y = 8, boxes = [];
  tokens.forEach((t, i) => {
    const w = g.measureText(t).width + 2;
    if (x + w > width - 8) { x = 8; y += line; }
    boxes.push([x, y, w, i]);
    x += w;
  });
  canvas.width = width;
  canvas.height = y + line + 8;
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.font = font;
  g.textBaseline = "top";
  for (const [bx, by, w, i] of boxes) {
    if (i <= at) {
      const [r, gr, b] = ramp(scaled[i]);
      g.fillStyle = "rgba(" + r + "," + gr + "," + b + ",0.55)";
      g.fillRect(bx, by, w, line - 4);
    }
    if (i === at) { g.strokeStyle = "#000"; g.lineWidth = 2; g.strokeRect(bx, by, w, line - 4); }
    g.fillStyle = i > at ? "#aaa" : "#222";
    g.fillText(tokens[i], bx + 1, by + 3);
  }
  return canvas;
}

// ---------------------------------------------------------------- the page

let columns = [];

/** The input preview: the image as the models see it (grayscale, the centred square). */
async function drawPreview() {
  const source = uploaded ? uploaded.dataUrl : (state.example ? "api/examples/" + encodeURIComponent(state.example) : null);
  const canvas = $("#input-preview"), g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (!source) return;
  const image = new Image();
  image.src = source;
  await image.decode();
  const side = Math.min(image.width, image.height);
  g.filter = "grayscale(1)";
  g.drawImage(image, (image.width - side) / 2, (image.height - side) / 2, side, side, 0, 0, canvas.width, canvas.height);
}

/** Something changed: the URL follows, and the columns reload (all of them, or only the explanations). */
async function changed(everything = true) {
  writeUrl();
  busy++;
  document.body.dataset.state = "busy";
  $("#status").textContent = "computing…";
  try {
    if (everything) {
      $("#text-input").hidden = isImage(state.a);
      $("#image-input").hidden = !isImage(state.a);
      if (isImage(state.a)) await drawPreview();
      columns = [state.a, state.b].filter(Boolean).map((name, k) => new Column(name, k === 0 ? "a" : "b"));
      $("#columns").replaceChildren(...columns.map(c => c.root));
      await Promise.all(columns.map(c => c.load()));
    } else {
      await Promise.all(columns.map(c => c.loadExplanation()));
    }
  } finally {
    if (--busy === 0) {
      document.body.dataset.state = "ready";
      $("#status").textContent = "";
    }
  }
}

/** Model B's choices: models taking the same input as model A. */
function fillModelB() {
  const b = $("#model-b");
  b.replaceChildren(new Option("(none)", ""));
  for (const m of models) if (m.name !== state.a && isImage(m.name) === isImage(state.a)) b.append(new Option(m.name, m.name));
  if (![...b.options].some(o => o.value === state.b)) state.b = "";
  b.value = state.b;
}

async function start() {
  readUrl();
  try {
    models = (await api("models")).models;
    const examples = await api("examples");
    for (const t of examples.texts) $("#example-text").append(new Option(t.length > 40 ? t.slice(0, 40) + "…" : t, t));
    for (const i of examples.images) $("#example-image").append(new Option(i, i));
    if (!state.text) state.text = examples.texts[0];
    if (!state.example) state.example = examples.images[0] || "";
  } catch (error) {
    $("#status").textContent = error.message;
    return;
  }
  const a = $("#model-a");
  for (const m of models) a.append(new Option(m.name + " (" + m.kind + ")", m.name));
  if (!models.some(m => m.name === state.a)) state.a = models[0].name;
  a.value = state.a;
  fillModelB();
  $("#text").value = state.text;
  $("#method").value = state.method;
  $("#example-image").value = state.example;

  a.onchange = () => { state.a = a.value; state.pos = null; state.target = ""; fillModelB(); changed(); };
  $("#model-b").onchange = event => { state.b = event.target.value; changed(); };
  $("#method").onchange = event => { state.method = event.target.value; writeUrl(); columns.forEach(c => c.explanation && c.drawRelevance()); };
  $("#run").onclick = () => { state.text = $("#text").value; state.pos = null; changed(); };
  $("#example-text").onchange = event => { if (event.target.value) { $("#text").value = state.text = event.target.value; state.pos = null; changed(); } };
  $("#example-image").onchange = event => { if (event.target.value) { uploaded = null; state.example = event.target.value; state.target = ""; changed(); } };
  const drop = $("#drop");
  const take = file => {
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { uploaded = {label: file.name, dataUrl: reader.result}; state.example = ""; state.target = ""; changed(); };
    reader.readAsDataURL(file);
  };
  drop.ondragover = event => { event.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = event => { event.preventDefault(); drop.classList.remove("over"); take(event.dataTransfer.files[0]); };
  $("#file").onchange = event => take(event.target.files[0]);
  await changed();
}

start();
