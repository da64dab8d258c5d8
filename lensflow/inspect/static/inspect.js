// lensflow inspect: the grid, the zoomed view and keyboard grading. No build step, no library.
"use strict";

const GRADE_KEYS = { a: "A", b: "B", c: "C", 0: "0", 1: "A", 2: "B", 3: "C", 4: "0" };
const NEXT_KEYS = ["ArrowRight", "ArrowDown", "j"];
const PREV_KEYS = ["ArrowLeft", "ArrowUp", "k"];
const STORED_NAME = "lensflow-grader";

const state = { candidates: [], bands: [], rgb: [], members: [], current: 0, grader: "",
                mine: {}, consensus: {}, zoomed: false, explain: false };

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function fmt(value, digits = 4) {
  return value === null || value === undefined ? "-" : Number(value).toPrecision(digits);
}

function say(text) { document.getElementById("status").textContent = text; }

async function call(url, payload) {
  const options = payload === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) };
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || data.description || response.statusText);
  return data;
}

function consensusText(agreed) {
  if (!agreed) return "";
  return `${agreed.grade_class} ${agreed.mean.toFixed(2)} ±${agreed.spread.toFixed(2)} (${agreed.graders})`;
}

function paintCard(index) {
  const c = state.candidates[index];
  const card = document.getElementById(`card-${c.id}`);
  const mine = card.querySelector(".mine");
  const letter = state.mine[c.id] || "";
  mine.textContent = letter;
  mine.className = "mine" + (letter ? ` grade-${letter}` : "");
  card.querySelector(".agreed").textContent = consensusText(state.consensus[c.id]);
  card.classList.toggle("current", index === state.current);
}

function buildGrid() {
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  state.candidates.forEach((c, index) => {
    const card = el("div", { class: "card", id: `card-${c.id}`, "data-id": c.id, "data-index": index });
    const img = el("img", { src: `/image/${c.id}/rgb.png`, alt: `candidate ${c.id}`, loading: "lazy" });
    card.append(img);
    const top = el("div", { class: "line" });
    top.append(el("span", { class: "rank" }, `#${index + 1}`), el("span", { class: "mine" }));
    const scores = el("div", { class: "line" });
    scores.append(el("span", {}, `score ${fmt(c.scores.ensemble_score)}`));
    if ("p_lens" in c.scores) scores.append(el("span", {}, `p_lens ${fmt(c.scores.p_lens, 3)}`));
    const members = el("div", { class: "line members" },
      Object.entries(c.members).map(([m, v]) => `${m} ${fmt(v, 3)}`).join(" · "));
    const ids = el("div", { class: "line" });
    ids.append(el("span", { class: "cid" }, c.id));
    const agreed = el("div", { class: "line" });
    agreed.append(el("span", { class: "agreed", title: "consensus: class, mean ±spread (graders)" }));
    card.append(top, scores, members, ids, agreed);
    card.addEventListener("click", () => { move(index - state.current); });
    card.addEventListener("dblclick", () => { toggleZoom(true); });
    grid.append(card);
  });
  state.candidates.forEach((_, index) => paintCard(index));
}

function fillZoom() {
  const c = state.candidates[state.current];
  if (!c) return;
  document.getElementById("zoom-rgb").src = `/image/${c.id}/rgb.png`;
  document.getElementById("zoom-rgb-caption").textContent = `${state.rgb.join(" ")} as R G B`;
  const bands = document.getElementById("zoom-bands");
  bands.replaceChildren(...state.bands.map((band) => {
    const figure = el("figure");
    figure.append(el("img", { src: `/image/${c.id}/band/${band}.png`, alt: `${band} band`, class: "band" }),
                  el("figcaption", {}, band));
    return figure;
  }));
  document.getElementById("zoom-title").textContent = `#${state.current + 1} candidate ${c.id}`;
  showOcclusion(c);
  showCurve(c);
  const rows = [["ra, dec (deg)", `${fmt(c.ra, 9)}, ${fmt(c.dec, 8)}`]];
  for (const [name, value] of Object.entries(c.scores)) rows.push([name, fmt(value, 5)]);
  for (const [name, value] of Object.entries(c.members)) rows.push([`score_${name}`, fmt(value, 5)]);
  for (const [name, p] of Object.entries(c.lens_model || {})) {
    rows.push([`${name} (lens model)`, `${fmt(p.value, 4)} ± ${fmt(p.err, 2)}`]);
  }
  for (const [name, value] of Object.entries(c.extra)) rows.push([name, fmt(value, 5)]);
  rows.push([`your grade (${state.grader})`, state.mine[c.id] || "-"]);
  const agreed = state.consensus[c.id];
  rows.push(["consensus", agreed ? consensusText(agreed) : "-"]);
  if (agreed) rows.push(["graders", Object.entries(agreed.grades).map(([n, g]) => `${n}: ${g}`).join(", ")]);
  const table = document.getElementById("zoom-table");
  table.replaceChildren(...rows.map(([name, value]) => {
    const tr = el("tr");
    tr.append(el("td", {}, name), el("td", { "data-field": name }, String(value)));
    return tr;
  }));
}

// The occlusion map: computed by the server on first request (it scores every occluded copy).
async function showOcclusion(c) {
  const figure = document.getElementById("zoom-occlusion");
  const caption = document.getElementById("occlusion-caption");
  figure.hidden = !state.explain;
  figure.replaceChildren(caption);  // the map's image only once there is one
  if (!state.explain) return;
  caption.textContent = "occlusion map: scoring every occluded copy…";
  try {
    const map = await call(`/api/occlusion/${c.id}`);
    if (!state.explain || state.candidates[state.current].id !== c.id) return;  // moved on
    const img = el("img", { id: "occlusion-map", alt: `occlusion map of ${c.id}`,
                            src: `/image/${c.id}/occlusion.png` });
    figure.replaceChildren(img, caption);
    caption.textContent = `score drop when a ${map.patch}x${map.patch} px patch (step ${map.stride}) ` +
      `is set to sky: largest ${fmt(map.max_drop, 3)} of ${fmt(map.score, 4)}, ` +
      `peak at x ${map.peak.x}, y ${map.peak.y}`;
  } catch (error) { caption.textContent = `no occlusion map: ${error.message}`; }
}

// The critical curve of the predicted SIE + shear model, drawn over the composite (display px).
async function showCurve(c) {
  const svg = document.getElementById("zoom-curve");
  const caption = document.getElementById("zoom-rgb-caption");
  svg.replaceChildren();
  if (!Object.keys(c.lens_model || {}).length) return;
  try {
    const model = await call(`/api/lens_model/${c.id}`);
    if (state.candidates[state.current].id !== c.id) return;  // moved on
    svg.setAttribute("viewBox", `0 0 ${model.size} ${model.size}`);
    const lines = model.critical_curve || [];
    svg.replaceChildren(...lines.map((line) => {
      const polyline = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      polyline.setAttribute("points", line.map(([x, y]) => `${x},${y}`).join(" "));
      return polyline;
    }));
    if (lines.length) caption.textContent += "; cyan: critical curve of the lens model";
  } catch (error) { say(`no critical curve: ${error.message}`); }
}

function toggleExplain() {
  state.explain = !state.explain;
  if (state.explain && !state.zoomed) toggleZoom(true);
  else if (state.zoomed) showOcclusion(state.candidates[state.current]);
}

function toggleZoom(on = !state.zoomed) {
  state.zoomed = on;
  document.getElementById("zoom").hidden = !on;
  if (on) fillZoom();
}

function move(step) {
  if (!state.candidates.length) return;
  const before = state.current;
  state.current = Math.max(0, Math.min(state.candidates.length - 1, state.current + step));
  paintCard(before);
  paintCard(state.current);
  document.getElementById(`card-${state.candidates[state.current].id}`)
    .scrollIntoView({ block: "nearest" });
  if (state.zoomed) fillZoom();
}

function moveTo(id) {
  const index = state.candidates.findIndex((c) => c.id === id);
  if (index >= 0) move(index - state.current);
}

async function grade(letter) {
  const c = state.candidates[state.current];
  if (!c || !state.grader) return;
  try {
    const stored = await call("/api/grade", { id: c.id, grade: letter, grader: state.grader });
    state.mine[stored.id] = stored.grade;
    state.consensus[stored.id] = stored.consensus;
    paintCard(state.current);
    say(`graded ${stored.id}: ${stored.grade}`);
    move(1);
  } catch (error) { say(`not stored: ${error.message}`); }
}

async function undo() {
  if (!state.grader) return;
  try {
    const done = await call("/api/undo", { grader: state.grader });
    if (done.id === null) { say("nothing to undo"); return; }
    if (done.grade) state.mine[done.id] = done.grade; else delete state.mine[done.id];
    if (done.consensus) state.consensus[done.id] = done.consensus; else delete state.consensus[done.id];
    moveTo(done.id);
    paintCard(state.current);
    if (state.zoomed) fillZoom();
    say(`undone: ${done.id} ${done.removed}`);
  } catch (error) { say(`undo failed: ${error.message}`); }
}

// Keys act in the order typed: a grade is stored (and the grid moves on) before the next key.
let queue = Promise.resolve();
function later(action) { queue = queue.then(action).catch((error) => say(error.message)); }

function onKey(event) {
  if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (key in GRADE_KEYS) later(() => grade(GRADE_KEYS[key]));
  else if (NEXT_KEYS.includes(key)) later(() => move(1));
  else if (PREV_KEYS.includes(key)) later(() => move(-1));
  else if (key === "u") later(undo);
  else if (key === "z") later(() => toggleZoom());
  else if (key === "o") later(toggleExplain);
  else if (key === "Escape" && state.zoomed) later(() => toggleZoom(false));
  else return;
  event.preventDefault();
}

async function loadGrades() {
  const data = await call(`/api/grades?grader=${encodeURIComponent(state.grader)}`);
  state.mine = data.grades;
  state.consensus = data.consensus;
  state.candidates.forEach((_, index) => paintCard(index));
}

async function setGrader(name) {
  state.grader = name.trim();
  localStorage.setItem(STORED_NAME, state.grader);
  document.getElementById("who").hidden = true;
  document.getElementById("who-am-i").hidden = false;
  document.getElementById("grader-shown").textContent = state.grader;
  await loadGrades();
  document.body.dataset.ready = "1";
  say(`grading as ${state.grader}`);
}

function askGrader() {
  document.getElementById("who").hidden = false;
  document.getElementById("who-am-i").hidden = true;
  document.getElementById("grader-name").focus();
}

async function start() {
  const data = await call("/api/candidates");
  Object.assign(state, { candidates: data.candidates, bands: data.bands, rgb: data.rgb,
                         members: data.members });
  buildGrid();
  document.addEventListener("keydown", onKey);
  document.getElementById("occlusion-button").addEventListener("click", () => later(toggleExplain));
  document.getElementById("who").addEventListener("submit", (event) => {
    event.preventDefault();
    setGrader(document.getElementById("grader-name").value);
  });
  document.getElementById("change-grader").addEventListener("click", (event) => {
    event.preventDefault();
    askGrader();
  });
  const name = document.body.dataset.grader || localStorage.getItem(STORED_NAME) || "";
  if (name) await setGrader(name); else askGrader();
}

start().catch((error) => say(`cannot load the candidates: ${error.message}`));
