// The activation atlas viewer: pans and zooms over the atlas tiles, switching to a finer grid as the
// icons grow on screen. Atlas coordinates: x in [0, 1] to the right, y in [0, 1] upwards; tile rows
// count from the top of the atlas image. The view is kept in the page's URL hash, so a link restores it.
(function () {
  "use strict";

  const DATA = window.ATLAS_VIEWER_DATA;
  const MIN_ZOOM = 0.5;
  const viewport = document.getElementById("viewport");
  const tilesLayer = document.getElementById("tiles");
  const overlay = document.getElementById("overlay");
  const tooltip = document.getElementById("tooltip");
  const atlasSelect = document.getElementById("atlas-select");
  const classFilter = document.getElementById("class-filter");
  const levelLabel = document.getElementById("level");
  const viewLink = document.getElementById("view-link");

  const state = { atlas: 0, x: 0.5, y: 0.5, zoom: 1, cls: -1 };
  const tileImages = new Map();   // tile URL → <img>, kept once loaded
  const cellIndex = new Map();    // level → Map(row * grid + col → cell number)

  function atlas() { return DATA.atlases[state.atlas]; }
  // An aligned atlas's other member: the same map, so the page switches to it at the same view.
  function partnerOf(index) {
    const id = DATA.atlases[index].partner;
    return id === undefined ? -1 : DATA.atlases.findIndex((a) => a.id === id);
  }
  const partnerButton = DATA.atlases.some((a) => a.partner !== undefined) ? makePartnerButton() : null;
  function makePartnerButton() {
    const button = document.createElement("button");
    button.id = "partner";
    button.type = "button";
    button.title = "The other network's atlas at this view";
    document.querySelector("header .buttons").append(button);
    return button;
  }
  function width() { return viewport.clientWidth; }
  function height() { return viewport.clientHeight; }
  // Screen pixels per atlas unit at zoom 1: the atlas fits the viewport.
  function baseScale() { return Math.max(1, Math.min(width(), height()) * 0.95); }
  function scale() { return baseScale() * state.zoom; }
  function maxZoom() {
    const finest = atlas().levels[atlas().levels.length - 1];
    // Far enough for the finest grid's icons to show at 4× their pixels (or 4× min_icon_px).
    return Math.max(MIN_ZOOM * 2, (finest.grid * Math.max(DATA.cell_px, DATA.min_icon_px) * 4) / baseScale());
  }

  function toScreen(x, y) {
    return [width() / 2 + (x - state.x) * scale(), height() / 2 - (y - state.y) * scale()];
  }
  function toAtlas(px, py) {
    return [state.x + (px - width() / 2) / scale(), state.y - (py - height() / 2) / scale()];
  }

  // The finest grid whose cells are still at least min_icon_px wide on screen.
  function currentLevel() {
    const levels = atlas().levels;
    let chosen = levels[0];
    for (const level of levels) {
      if (scale() / level.grid >= DATA.min_icon_px) chosen = level;
    }
    return chosen;
  }

  function cellsOf(level) {
    if (!cellIndex.has(level)) {
      const index = new Map();
      level.row.forEach((row, k) => index.set(row * level.grid + level.col[k], k));
      cellIndex.set(level, index);
    }
    return cellIndex.get(level);
  }

  function drawTiles(level) {
    const wanted = new Set();
    const g = level.grid;
    for (let tr = 0; tr < level.tiles_per_side; tr++) {
      for (let tc = 0; tc < level.tiles_per_side; tc++) {
        const c0 = tc * level.tile_cells, r0 = tr * level.tile_cells;
        const c1 = Math.min(g, c0 + level.tile_cells), r1 = Math.min(g, r0 + level.tile_cells);
        const [left, top] = toScreen(c0 / g, 1 - r0 / g);
        const [right, bottom] = toScreen(c1 / g, 1 - r1 / g);
        if (right < 0 || bottom < 0 || left > width() || top > height()) continue;
        const url = `${level.tiles}/${tr}_${tc}.png`;
        wanted.add(url);
        let img = tileImages.get(url);
        if (!img) {
          img = document.createElement("img");
          img.className = "tile";
          img.alt = "";
          img.draggable = false;
          img.src = url;
          tileImages.set(url, img);
        }
        img.style.left = `${left}px`;
        img.style.top = `${top}px`;
        img.style.width = `${right - left}px`;
        img.style.height = `${bottom - top}px`;
        if (img.parentNode !== tilesLayer) tilesLayer.appendChild(img);
      }
    }
    for (const img of Array.from(tilesLayer.children)) {
      if (!wanted.has(img.getAttribute("src"))) tilesLayer.removeChild(img);
    }
  }

  function classScore(level, k, cls) {
    for (const [c, value] of level.top[k]) if (c === cls) return value;
    return null;
  }

  // With a class chosen, each icon is veiled in the background colour by how little its cell is
  // attributed to the class: the most attributed cell stays clear, cells without it almost vanish.
  function drawOverlay(level) {
    overlay.width = width();
    overlay.height = height();
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    if (state.cls < 0) return;
    let best = 0;
    level.row.forEach((_, k) => { best = Math.max(best, classScore(level, k, state.cls) || 0); });
    const [r, g, b] = DATA.background;
    level.row.forEach((row, k) => {
      const score = classScore(level, k, state.cls);
      const opacity = best > 0 && score !== null ? Math.max(0, score) / best : 0;
      const [left, top] = toScreen(level.col[k] / level.grid, (row + 1) / level.grid);
      const side = scale() / level.grid;
      ctx.fillStyle = `rgba(${r}, ${g}, ${b}, ${0.92 * (1 - opacity)})`;
      ctx.fillRect(left, top, side + 0.5, side + 0.5);
    });
  }

  function viewHash() {
    const params = new URLSearchParams();
    params.set("atlas", atlas().id);
    params.set("x", state.x.toFixed(4));
    params.set("y", state.y.toFixed(4));
    params.set("zoom", state.zoom.toFixed(3));
    if (state.cls >= 0) params.set("class", DATA.classes[state.cls]);
    return "#" + params.toString();
  }

  function render() {
    const level = currentLevel();
    drawTiles(level);
    drawOverlay(level);
    levelLabel.textContent = `grid ${level.grid}×${level.grid} · zoom ${state.zoom.toFixed(2)}×`;
    if (partnerButton) {
      const partner = partnerOf(state.atlas);
      partnerButton.hidden = partner < 0;
      if (partner >= 0) partnerButton.textContent = `⇄ ${DATA.atlases[partner].title}`;
    }
    levelLabel.dataset.grid = String(level.grid);
    const hash = viewHash();
    viewLink.href = hash;
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  function clampView() {
    state.zoom = Math.min(maxZoom(), Math.max(MIN_ZOOM, state.zoom));
    state.x = Math.min(1, Math.max(0, state.x));
    state.y = Math.min(1, Math.max(0, state.y));
  }

  function zoomAt(factor, px, py) {
    const [x, y] = toAtlas(px, py);
    state.zoom *= factor;
    clampView();
    state.x = x - (px - width() / 2) / scale();
    state.y = y + (py - height() / 2) / scale();
    clampView();
    hideTooltip();
    render();
  }

  function cellAt(px, py) {
    const [x, y] = toAtlas(px, py);
    if (x < 0 || x > 1 || y < 0 || y > 1) return null;
    const level = currentLevel();
    const col = Math.min(level.grid - 1, Math.floor(x * level.grid));
    const row = Math.min(level.grid - 1, Math.floor(y * level.grid));
    const k = cellsOf(level).get(row * level.grid + col);
    return k === undefined ? null : { level, k };
  }

  function addRow(table, name, value) {
    const tr = table.insertRow();
    tr.insertCell().textContent = name;
    const td = tr.insertCell();
    td.className = "value";
    td.textContent = value;
  }

  function tiesTable(heading, rows) {
    const box = document.createElement("div");
    box.className = "ties";
    const caption = document.createElement("div");
    caption.textContent = heading;
    const table = document.createElement("table");
    for (const [name, value] of rows) addRow(table, name, value);
    box.append(caption, table);
    return box;
  }

  function showTooltip(px, py) {
    const hit = cellAt(px, py);
    if (!hit) { hideTooltip(); return; }
    const { level, k } = hit;
    tooltip.replaceChildren();
    const title = document.createElement("div");
    title.className = "title";
    const count = document.createElement("div");
    if (level.atom) {
      title.textContent = `atom ${level.atom[k]} of the dictionary of ${atlas().features_of}`;
      count.textContent = `fires on ${(100 * level.frequency[k]).toPrecision(3)}% of the activations (${level.count[k]})`;
    } else {
      title.textContent = `cell (${level.col[k]}, ${level.row[k]}) of ${level.grid}×${level.grid}`;
      count.textContent = `${level.count[k]} activations averaged`;
    }
    const caption = document.createElement("div");
    caption.textContent = `top classes by ${DATA.score}:`;
    const table = document.createElement("table");
    for (const [c, value] of level.top[k].slice(0, 5)) addRow(table, DATA.classes[c], value.toPrecision(3));
    tooltip.append(title, count, caption, table);
    if (level.atoms && level.atoms[k].length) {
      // The atoms of the layer's dictionary that this cell's mean activation is made of.
      tooltip.append(tiesTable("strongest atoms (code):", level.atoms[k].map(
        ([atom, code]) => [`atom ${atom}`, code.toPrecision(3)])));
    }
    if (level.strong_in && level.strong_in[k].length) {
      tooltip.append(tiesTable(`strongest in cells of layer ${atlas().features_of} (code):`, level.strong_in[k].map(
        ([grid, col, row, code]) => [`${grid}×${grid} (${col}, ${row})`, code.toPrecision(3)])));
    }
    if (level.samples[k].length) {
      const samples = document.createElement("div");
      samples.className = "samples";
      const s = DATA.samples;
      for (const id of level.samples[k]) {
        const sheet = Math.floor(id / (s.per_side * s.per_side)), slot = id % (s.per_side * s.per_side);
        const div = document.createElement("div");
        div.className = "sample";
        div.style.width = div.style.height = `${s.px}px`;
        div.style.backgroundImage = `url("${DATA.assets}/samples/sheet${sheet}.jpg")`;
        div.style.backgroundPosition = `${-(slot % s.per_side) * s.px}px ${-Math.floor(slot / s.per_side) * s.px}px`;
        samples.appendChild(div);
      }
      tooltip.appendChild(samples);
    }
    tooltip.hidden = false;
    const left = px + 16 + tooltip.offsetWidth > width() ? px - 16 - tooltip.offsetWidth : px + 16;
    const top = py + 16 + tooltip.offsetHeight > height() ? py - 16 - tooltip.offsetHeight : py + 16;
    tooltip.style.left = `${Math.max(0, left)}px`;
    tooltip.style.top = `${Math.max(0, top)}px`;
  }

  function hideTooltip() { tooltip.hidden = true; }

  function fit() {
    state.x = 0.5;
    state.y = 0.5;
    state.zoom = 1;
  }

  // Another atlas: at the same view if it is this one's partner, else fitted.
  function showAtlas(index) {
    const keepView = index === partnerOf(state.atlas);
    state.atlas = index;
    if (!keepView) fit();
    clampView();
    atlasSelect.value = String(index);
    hideTooltip();
    render();
  }

  function restoreFromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const index = DATA.atlases.findIndex((a) => a.id === params.get("atlas"));
    state.atlas = index >= 0 ? index : 0;
    fit();
    for (const key of ["x", "y", "zoom"]) {
      const value = parseFloat(params.get(key));
      if (Number.isFinite(value)) state[key] = value;
    }
    state.cls = params.has("class") ? DATA.classes.indexOf(params.get("class")) : -1;
    clampView();
    atlasSelect.value = String(state.atlas);
    classFilter.value = state.cls >= 0 ? String(state.cls) : "";
  }

  function setUp() {
    DATA.atlases.forEach((a, i) => atlasSelect.add(new Option(a.title, String(i))));
    DATA.classes.forEach((name, i) => classFilter.add(new Option(name, String(i))));
    atlasSelect.addEventListener("change", () => showAtlas(Number(atlasSelect.value)));
    if (partnerButton) partnerButton.addEventListener("click", () => showAtlas(partnerOf(state.atlas)));
    classFilter.addEventListener("change", () => {
      state.cls = classFilter.value === "" ? -1 : Number(classFilter.value);
      render();
    });
    document.getElementById("zoom-in").addEventListener("click", () => zoomAt(1.5, width() / 2, height() / 2));
    document.getElementById("zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, width() / 2, height() / 2));
    document.getElementById("reset").addEventListener("click", () => { fit(); render(); });
    viewport.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = viewport.getBoundingClientRect();
      zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    let drag = null;
    viewport.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY };
      viewport.setPointerCapture(event.pointerId);
      viewport.classList.add("dragging");
      hideTooltip();
    });
    viewport.addEventListener("pointermove", (event) => {
      const box = viewport.getBoundingClientRect();
      if (!drag) { showTooltip(event.clientX - box.left, event.clientY - box.top); return; }
      state.x -= (event.clientX - drag.x) / scale();
      state.y += (event.clientY - drag.y) / scale();
      drag = { x: event.clientX, y: event.clientY };
      clampView();
      render();
    });
    const endDrag = () => { drag = null; viewport.classList.remove("dragging"); };
    viewport.addEventListener("pointerup", endDrag);
    viewport.addEventListener("pointercancel", endDrag);
    viewport.addEventListener("pointerleave", hideTooltip);
    window.addEventListener("resize", render);
    window.addEventListener("hashchange", () => { if (location.hash !== viewHash()) { restoreFromHash(); render(); } });
    restoreFromHash();
    render();
  }

  // For scripts and tests: the current grid, and the screen centres of the visible kept cells.
  window.atlasViewer = {
    state,
    grid: () => currentLevel().grid,
    visibleCells: () => {
      const level = currentLevel();
      return level.row.map((row, k) => {
        const [x, y] = toScreen((level.col[k] + 0.5) / level.grid, (row + 0.5) / level.grid);
        return { row, col: level.col[k], x, y };
      }).filter((c) => c.x >= 0 && c.y >= 0 && c.x < width() && c.y < height());
    },
  };

  setUp();
})();
