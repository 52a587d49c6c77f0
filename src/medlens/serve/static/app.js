// medlens web page: upload a study, show the prediction, its probabilities and Grad-CAM;
// for a segmentation model, the mask over the image, the class volumes and downloads.
// Plain JavaScript, no build step, no external resources; images never leave the page
// except to this service, and the session history keeps no image, only results.
"use strict";

const $ = (id) => document.getElementById(id);
const HISTORY_KEY = "medlens-history";
let currentFile = null;
let currentResult = null;
let segmentationModel = false;
let similarCases = false; // the run has a similar-case index (POST /v1/similar answers)

function authHeaders() {
  const token = $("token").value.trim() || sessionStorage.getItem("medlens-token") || "";
  if ($("token").value.trim()) sessionStorage.setItem("medlens-token", token);
  return token ? { Authorization: "Bearer " + token } : {};
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.detail || body.error || response.statusText;
  } catch (_) {
    return response.statusText;
  }
}

async function loadModel() {
  const response = await fetch("/v1/model", { headers: authHeaders() });
  if (!response.ok) {
    $("model-info").textContent = "Model: not available (" + (await errorText(response)) + ")";
    return;
  }
  const card = await response.json();
  setMode(card.task === "segmentation");
  similarCases = card.similar_cases === true;
  $("model-info").textContent =
    "Model: " + card.name + " (" + (card.architecture || "?") + "), version " + card.version +
    ", engine " + card.engine;
  $("intended-use").textContent =
    "Intended use: " + (card.intended_use || "not stated in the model card.");
}

function setMode(segmentation) {
  // one page for both kinds of model: the classifier's parts or the segmenter's
  segmentationModel = segmentation;
  $("classification").hidden = segmentation;
  $("segmentation").hidden = !segmentation;
  $("label-title").textContent = segmentation ? "Classes found" : "Predicted class";
  $("show-label").textContent = segmentation ? "Show mask overlay" : "Show Grad-CAM overlay";
  $("caption").textContent = segmentation
    ? "The model's mask, one colour per class; check it against the image."
    : "Grad-CAM shows where the model looked; it is not a segmentation.";
}

function neutralName(name) {
  // the server only needs the extension; a file name can identify a patient
  const lower = name.toLowerCase();
  const ext = [".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".zip"]
    .find((e) => lower.endsWith(e));
  return "upload" + (ext || "");
}

function upload(path, file) {
  const form = new FormData();
  form.append("file", file, neutralName(file.name));
  return fetch(path, { method: "POST", body: form, headers: authHeaders() });
}

async function analyse(file) {
  currentFile = file;
  setStatus("Analysing…");
  const windowName = encodeURIComponent($("window").value);
  const extra = segmentationModel ? "" : "heatmap=true&";
  const response = await upload(
    "/v1/predict?" + extra + "preview=true&window=" + windowName, file);
  if (!response.ok) {
    setStatus("Could not analyse this file: " + (await errorText(response)), true);
    return;
  }
  const result = await response.json();
  showResult(result);
  remember(result);
  setStatus("Done.");
  if (similarCases) await showSimilar(file);
}

async function showSimilar(file) {
  // nearest training cases; hidden when the run has no index (404) or on any error
  $("similar").hidden = true;
  const response = await upload("/v1/similar?k=5", file);
  if (!response.ok) return;
  const body = await response.json();
  const list = $("similar-cases");
  list.replaceChildren();
  for (const item of body.cases) {
    const entry = document.createElement("li");
    const picture = document.createElement("img");
    picture.src = "data:image/png;base64," + item.thumbnail_png;
    picture.alt = "Training case with label " + item.label;
    const caption = document.createElement("span");
    caption.textContent = item.label + " · " + item.similarity.toFixed(3);
    entry.append(picture, caption);
    list.append(entry);
  }
  $("similar").hidden = body.cases.length === 0;
}

function showResult(result) {
  currentResult = result;
  $("result").hidden = false;
  $("label").textContent = shownLabel(result);
  showGrade(result);
  $("preview").src = "data:image/png;base64," + result.preview_png;
  $("heatmap").removeAttribute("src");
  $("mask").removeAttribute("src");
  if (result.heatmap_png) {
    $("heatmap").src = "data:image/png;base64," + result.heatmap_png;
  }
  if (result.overlay_png) {
    $("mask").src = "data:image/png;base64," + result.overlay_png;
  }
  updateOverlay();
  $("request-id").textContent = result.request_id;
  $("sha").textContent = result.input_sha256;
  if (result.task === "segmentation") {
    drawVolumes(result);
  } else {
    drawBars(result);
  }
}

function showGrade(result) {
  // ordinal models: the decided grade (by the card's rule) and the expected grade
  const ordinal = result.grade != null;
  $("grade-line").hidden = !ordinal;
  $("label-title").textContent = ordinal ? "Predicted grade" : (segmentationModel ? "Classes found" : "Predicted class");
  if (!ordinal) return;
  $("grade").textContent = result.grade;
  $("grade-count").textContent = "0–" + (Object.keys(result.probabilities || {}).length - 1);
  $("expected-grade").textContent = result.expected_grade == null ? "?" : result.expected_grade.toFixed(2);
}

function shownLabel(result) {
  if (result.task !== "segmentation") return result.label || "(none)";
  return result.label ? result.label.split("|").join(", ") : "(none)";
}

function drawVolumes(result) {
  const unit = result.volume_unit === "mm2" ? "mm²" : "mm³";
  $("volume-unit").textContent = (result.volume_unit === "mm2" ? "Area" : "Volume") + " (" + unit + ")";
  const body = $("volumes");
  body.replaceChildren();
  for (const [name, volume] of Object.entries(result.volumes)) {
    const row = document.createElement("tr");
    if (!(volume > 0)) row.classList.add("absent");
    const cls = document.createElement("td");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = result.colours[name] || "transparent";
    swatch.setAttribute("aria-hidden", "true");
    cls.append(swatch, document.createTextNode(name + (volume > 0 ? "" : " (not found)")));
    const value = document.createElement("td");
    value.className = "number";
    value.textContent = volume.toLocaleString(undefined, { maximumFractionDigits: 1 });
    row.append(cls, value);
    body.append(row);
  }
  const shape = result.image.shape;
  $("slice-note").textContent = result.slice_index == null
    ? ""
    : "Showing slice " + (result.slice_index + 1) + " of " + shape[0] + " (the one with the most foreground).";
  const name = currentFile ? currentFile.name.toLowerCase() : "";
  $("download-seg").disabled = ![".dcm", ".dicom", ".zip"].some((e) => name.endsWith(e));
}

async function download(format, fileName) {
  if (!currentFile) return;
  setStatus("Preparing the download…");
  const response = await upload("/v1/predict?format=" + format, currentFile);
  if (!response.ok) {
    setStatus("Could not prepare the download: " + (await errorText(response)), true);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;  // a neutral name: never the uploaded file's
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  setStatus("Downloaded " + fileName + ".");
}

function thresholdFor(result, index, name) {
  const t = result.threshold;
  if (Array.isArray(t)) return t[index];
  if (typeof t === "number") {
    // binary: the threshold applies to the positive (second) class
    return index === 1 ? t : null;
  }
  return null;
}

function drawBars(result) {
  const bars = $("bars");
  bars.replaceChildren();
  const names = Object.keys(result.probabilities);
  names.forEach((name, index) => {
    const p = result.probabilities[name];
    const li = document.createElement("li");
    const chosen = result.label === name || (result.label || "").split("|").includes(name);
    if (chosen) li.classList.add("predicted");
    const label = document.createElement("div");
    label.className = "bar-label";
    const left = document.createElement("span");
    left.textContent = name + (chosen ? " (predicted)" : "");
    const right = document.createElement("span");
    right.textContent = (100 * p).toFixed(1) + "%";
    label.append(left, right);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "img");
    const t = thresholdFor(result, index, name);
    bar.setAttribute("aria-label", name + " " + (100 * p).toFixed(1) + " percent" +
      (t == null ? "" : ", threshold " + (100 * t).toFixed(1) + " percent"));
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    fill.style.width = (100 * p).toFixed(1) + "%";
    bar.append(fill);
    if (t != null) {
      const mark = document.createElement("div");
      mark.className = "bar-threshold";
      mark.style.left = (100 * t).toFixed(1) + "%";
      mark.title = "decision threshold " + (100 * t).toFixed(1) + "%";
      bar.append(mark);
    }
    li.append(label, bar);
    bars.append(li);
  });
  const t = result.threshold;
  $("threshold-note").textContent = t == null
    ? "Decision: the most probable class."
    : "Red mark: decision threshold (" + [].concat(t).map((v) => (100 * v).toFixed(1) + "%").join(", ") + ").";
}

function updateOverlay() {
  const value = Number($("opacity").value);
  for (const id of ["heatmap", "mask"]) {
    $(id).hidden = !($("show-heatmap").checked && $(id).getAttribute("src"));
    $(id).style.opacity = String(value / 100);
  }
  $("opacity-value").textContent = value + "%";
}

async function rewindow() {
  if (!currentFile) return;
  setStatus("Applying window…");
  const index = currentResult && currentResult.slice_index != null
    ? "&slice=" + currentResult.slice_index : "";  // the slice the mask is drawn on
  const response = await upload(
    "/v1/preview?window=" + encodeURIComponent($("window").value) + index, currentFile);
  if (!response.ok) {
    setStatus("Could not apply the window: " + (await errorText(response)), true);
    return;
  }
  const blob = await response.blob();
  const reader = new FileReader();
  reader.onload = () => { $("preview").src = reader.result; setStatus("Done."); };
  reader.readAsDataURL(blob);
}

function history() {
  try {
    return JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]");
  } catch (_) {
    return [];
  }
}

function remember(result) {
  // results only (no file name, no image): the name of a file can identify a patient
  const top = result.probabilities ? result.probabilities[result.label] : null;
  const entry = {
    time: new Date().toLocaleTimeString(),
    label: shownLabel(result),
    probability: top == null ? null : top,
    sha: result.input_sha256.slice(0, 12),
    model: result.model_version,
  };
  const items = [entry].concat(history()).slice(0, 20);
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(items));
  drawHistory();
}

function drawHistory() {
  const list = $("history");
  list.replaceChildren();
  for (const item of history()) {
    const li = document.createElement("li");
    const p = item.probability == null ? "" : " (" + (100 * item.probability).toFixed(1) + "%)";
    li.textContent = item.time + ": " + item.label + p + ", input " + item.sha + "…, model " + item.model;
    list.append(li);
  }
}

function setup() {
  const drop = $("drop");
  const input = $("file");
  drop.addEventListener("click", (event) => { if (event.target !== input) input.click(); });
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) analyse(event.dataTransfer.files[0]);
  });
  input.addEventListener("change", () => { if (input.files.length) analyse(input.files[0]); });
  $("window").addEventListener("change", rewindow);
  $("show-heatmap").addEventListener("change", updateOverlay);
  $("opacity").addEventListener("input", updateOverlay);
  $("download-nifti").addEventListener("click", () => download("nifti", "segmentation.nii.gz"));
  $("download-seg").addEventListener("click", () => download("dicom-seg", "segmentation.dcm"));
  $("token").addEventListener("change", loadModel);
  drawHistory();
  loadModel();
}

document.addEventListener("DOMContentLoaded", setup);
