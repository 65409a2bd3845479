// lsx latent map widget (anywidget ESM): a plain-canvas scatter plot, no dependencies, no CDN.
// Synced state: xy (float32 n x 2), values (float32 n), color_kind, color_title, categories,
// selected_index, mode, title, height. Hover asks the kernel for thumbnails with a custom
// message {type: "thumbs", index: [...]}; lasso/box selections are written to selected_index.

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
  "#e6550d", "#31a354", "#756bb1", "#636363",
];
// viridis at 9 stops, interpolated linearly
const RAMP = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
const PAD = 12;

function floats(view) {
  if (!view) return new Float32Array(0);
  if (view instanceof Float32Array) return view;
  const buf = view.buffer ? view.buffer : view;
  const offset = view.byteOffset || 0;
  const length = (view.byteLength !== undefined ? view.byteLength : buf.byteLength) / 4;
  if (offset % 4 === 0) return new Float32Array(buf, offset, length);
  return new Float32Array(buf.slice(offset, offset + length * 4));
}

function hexRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function rampRgb(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}

function packed(rgb, alpha) {
  // ImageData's Uint32 view is little-endian: 0xAABBGGRR
  return ((alpha << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0;
}

function el(tag, style, text) {
  const node = document.createElement(tag);
  if (style) node.style.cssText = style;
  if (text !== undefined) node.textContent = text;
  return node;
}

function inPolygon(px, py, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function render({ model, el: host }) {
  const root = el("div", "position:relative;font:12px sans-serif;color:#222;user-select:none");
  root.className = "lsx-map";
  const bar = el("div", "display:flex;gap:6px;align-items:center;margin-bottom:4px");
  const title = el("b", "margin-right:8px");
  const buttons = {};
  for (const name of ["lasso", "box", "clear"]) {
    const b = el("button", "font:12px sans-serif;padding:1px 8px", name);
    b.dataset.action = name;
    buttons[name] = b;
    bar.appendChild(b);
  }
  const info = el("span", "margin-left:8px;color:#555");
  bar.prepend(title);
  bar.appendChild(info);
  const canvas = el("canvas", "display:block;border:1px solid #ddd;cursor:crosshair;width:100%");
  const overlay = el("canvas", "position:absolute;left:0;top:0;pointer-events:none");
  const stage = el("div", "position:relative");
  stage.append(canvas, overlay);
  const legend = el("div", "display:flex;flex-wrap:wrap;gap:8px;margin-top:4px");
  const tip = el(
    "div",
    "position:absolute;display:none;background:#fff;border:1px solid #999;padding:4px;" +
      "pointer-events:none;box-shadow:0 1px 4px rgba(0,0,0,.3);z-index:10",
  );
  const tipText = el("div");
  const tipImg = el("img", "display:none;image-rendering:pixelated;margin-top:2px");
  tip.append(tipText, tipImg);
  root.append(bar, stage, legend, tip);
  host.appendChild(root);

  let n = 0, xy = new Float32Array(0), px = new Float32Array(0), py = new Float32Array(0);
  let colors = new Uint32Array(0), grid = null, selected = new Uint8Array(0);
  let width = 0, height = 0, dpr = 1;
  const thumbs = new Map();
  let pending = null, hovered = -1;

  function layout() {
    const t0 = performance.now();
    xy = floats(model.get("xy"));
    n = Math.floor(xy.length / 2);
    dpr = Math.max(1, Math.round(window.devicePixelRatio || 1));
    width = Math.max(200, Math.floor(root.clientWidth || host.clientWidth || 640));
    height = model.get("height") || 420;
    for (const c of [canvas, overlay]) {
      c.width = width * dpr;
      c.height = height * dpr;
      c.style.width = width + "px";
      c.style.height = height + "px";
    }
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    const sx = (width - 2 * PAD) / (x1 - x0 || 1), sy = (height - 2 * PAD) / (y1 - y0 || 1);
    px = new Float32Array(n);
    py = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      px[i] = PAD + (xy[2 * i] - x0) * sx;
      py[i] = height - PAD - (xy[2 * i + 1] - y0) * sy; // y grows upwards, as in the app
    }
    buildGrid();
    return performance.now() - t0;
  }

  function buildGrid() {
    // uniform 16-px buckets for hover look-ups (counting sort: O(n))
    const cell = 16, gw = Math.ceil(width / cell) + 1, gh = Math.ceil(height / cell) + 1;
    const start = new Uint32Array(gw * gh + 1), items = new Uint32Array(n), key = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      key[i] = Math.floor(py[i] / cell) * gw + Math.floor(px[i] / cell);
      start[key[i] + 1]++;
    }
    for (let k = 0; k < gw * gh; k++) start[k + 1] += start[k];
    const fill = start.slice(0, gw * gh);
    for (let i = 0; i < n; i++) items[fill[key[i]]++] = i;
    grid = { cell, gw, gh, start, items };
  }

  function recolor() {
    const values = floats(model.get("values"));
    const kind = model.get("color_kind");
    colors = new Uint32Array(n);
    legend.replaceChildren();
    if (kind === "continuous") {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < n; i++) {
        if (values[i] < lo) lo = values[i];
        if (values[i] > hi) hi = values[i];
      }
      for (let i = 0; i < n; i++) colors[i] = packed(rampRgb((values[i] - lo) / (hi - lo || 1)), 255);
      const bar = el("span", "display:inline-block;width:120px;height:10px;background:linear-gradient(" +
        "to right," + RAMP.map((c) => `rgb(${c})`).join(",") + ")");
      legend.append(el("span", "", `${model.get("color_title")}: ${lo.toPrecision(3)}`), bar,
        el("span", "", hi.toPrecision(3)));
    } else {
      const names = model.get("categories") || [];
      const rgb = PALETTE.map(hexRgb);
      for (let i = 0; i < n; i++) colors[i] = packed(rgb[(values[i] | 0) % rgb.length], 255);
      names.slice(0, 40).forEach((name, k) => {
        const item = el("span", "display:inline-flex;align-items:center;gap:3px");
        item.append(el("span", `width:10px;height:10px;background:${PALETTE[k % PALETTE.length]}`), name);
        legend.appendChild(item);
      });
    }
  }

  function syncSelection() {
    selected = new Uint8Array(n);
    for (const i of model.get("selected_index") || []) if (i >= 0 && i < n) selected[i] = 1;
  }

  function draw() {
    const t0 = performance.now();
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height;
    const image = ctx.createImageData(W, H);
    const pixels = new Uint32Array(image.data.buffer);
    pixels.fill(0xffffffff);
    const any = selected.some((s) => s === 1);
    const dim = packed([210, 210, 210], 255);
    const r = n > 20000 ? 1 : 2; // point half-size in device pixels
    let drawn = 0;
    const put = (i, color) => {
      const cx = Math.round(px[i] * dpr), cy = Math.round(py[i] * dpr);
      for (let y = Math.max(0, cy - r); y < Math.min(H, cy + r); y++) {
        const row = y * W;
        for (let x = Math.max(0, cx - r); x < Math.min(W, cx + r); x++) pixels[row + x] = color;
      }
      drawn++;
    };
    for (let i = 0; i < n; i++) if (!any || !selected[i]) put(i, any ? dim : colors[i]);
    if (any) for (let i = 0; i < n; i++) if (selected[i]) put(i, colors[i]);
    ctx.putImageData(image, 0, 0);
    const count = (model.get("selected_index") || []).length;
    title.textContent = model.get("title") || "";
    info.textContent = `${n} points` + (count ? ` · ${count} selected` : "") + " · " + model.get("mode");
    for (const [name, b] of Object.entries(buttons)) b.style.fontWeight = name === model.get("mode") ? "bold" : "normal";
    canvas.dataset.drawn = String(drawn);
    root.dataset.drawMs = (performance.now() - t0).toFixed(1);
  }

  function full() {
    const layoutMs = layout();
    recolor();
    syncSelection();
    draw();
    root.dataset.layoutMs = layoutMs.toFixed(1);
  }

  function nearest(x, y) {
    if (!grid) return -1;
    const { cell, gw, gh, start, items } = grid;
    const gx = Math.floor(x / cell), gy = Math.floor(y / cell);
    let best = -1, bestD = 64; // within 8 px
    for (let j = Math.max(0, gy - 1); j <= Math.min(gh - 1, gy + 1); j++) {
      for (let i = Math.max(0, gx - 1); i <= Math.min(gw - 1, gx + 1); i++) {
        const k = j * gw + i;
        for (let s = start[k]; s < start[k + 1]; s++) {
          const p = items[s], d = (px[p] - x) ** 2 + (py[p] - y) ** 2;
          if (d < bestD) { bestD = d; best = p; }
        }
      }
    }
    return best;
  }

  function showTip(i, x, y) {
    hovered = i;
    if (i < 0) { tip.style.display = "none"; return; }
    const values = floats(model.get("values"));
    const names = model.get("categories") || [];
    const v = values[i];
    const label = model.get("color_kind") === "continuous" ? v.toPrecision(3) : names[v | 0] ?? v;
    const ids = model.get("ids");
    const id = ids && ids.byteLength >= 4 * (i + 1) ? ids.getInt32(4 * i, true) : i;
    tipText.textContent = `id ${id} · ${model.get("color_title")}: ${label}`;
    tip.style.display = "block";
    tip.style.left = Math.min(x + 14, width - 120) + "px";
    tip.style.top = y + stage.offsetTop + 14 + "px";
    if (thumbs.has(i)) {
      tipImg.src = thumbs.get(i);
      tipImg.style.display = "block";
    } else {
      tipImg.style.display = "none";
      clearTimeout(pending);
      pending = setTimeout(() => model.send({ type: "thumbs", index: [i] }), 60);
    }
  }

  function onMessage(msg) {
    if (!msg || msg.type !== "thumbs") return;
    for (const [k, url] of Object.entries(msg.images || {})) thumbs.set(Number(k), url);
    if (hovered >= 0 && thumbs.has(hovered)) {
      tipImg.src = thumbs.get(hovered);
      tipImg.style.display = "block";
    }
  }

  // ---- selection by drag
  let path = null;
  const pos = (e) => [e.offsetX, e.offsetY]; // CSS pixels inside the canvas's border
  function drawPath() {
    const ctx = overlay.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!path || path.length < 2) return;
    ctx.strokeStyle = "#d62728";
    ctx.fillStyle = "rgba(214,39,40,0.08)";
    ctx.beginPath();
    if (model.get("mode") === "box") {
      const [a, b] = [path[0], path[path.length - 1]];
      ctx.rect(a[0], a[1], b[0] - a[0], b[1] - a[1]);
    } else {
      ctx.moveTo(...path[0]);
      for (const p of path.slice(1)) ctx.lineTo(...p);
      ctx.closePath();
    }
    ctx.fill();
    ctx.stroke();
  }
  function finish() {
    const out = [];
    if (path && path.length >= 2) {
      if (model.get("mode") === "box") {
        const [a, b] = [path[0], path[path.length - 1]];
        const [x0, x1] = [Math.min(a[0], b[0]), Math.max(a[0], b[0])];
        const [y0, y1] = [Math.min(a[1], b[1]), Math.max(a[1], b[1])];
        for (let i = 0; i < n; i++) if (px[i] >= x0 && px[i] <= x1 && py[i] >= y0 && py[i] <= y1) out.push(i);
      } else if (path.length >= 3) {
        let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
        for (const [x, y] of path) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
        for (let i = 0; i < n; i++) {
          if (px[i] < x0 || px[i] > x1 || py[i] < y0 || py[i] > y1) continue;
          if (inPolygon(px[i], py[i], path)) out.push(i);
        }
      }
    }
    path = null;
    drawPath();
    model.set("selected_index", out);
    model.save_changes();
  }
  const onDown = (e) => { path = [pos(e)]; tip.style.display = "none"; };
  const onMove = (e) => {
    const [x, y] = pos(e);
    if (path) { path.push([x, y]); drawPath(); return; }
    showTip(nearest(x, y), x, y);
  };
  const onUp = () => { if (path) finish(); };
  const onLeave = () => { tip.style.display = "none"; hovered = -1; };
  canvas.addEventListener("mousedown", onDown);
  canvas.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  canvas.addEventListener("mouseleave", onLeave);
  buttons.lasso.onclick = () => { model.set("mode", "lasso"); model.save_changes(); draw(); };
  buttons.box.onclick = () => { model.set("mode", "box"); model.save_changes(); draw(); };
  buttons.clear.onclick = () => { model.set("selected_index", []); model.save_changes(); syncSelection(); draw(); };

  const onSelection = () => { syncSelection(); draw(); };
  const onColor = () => { recolor(); draw(); };
  model.on("change:xy", full);
  model.on("change:height", full);
  model.on("change:values", onColor);
  model.on("change:categories", onColor);
  model.on("change:color_kind", onColor);
  model.on("change:selected_index", onSelection);
  model.on("msg:custom", onMessage);
  const t0 = performance.now();
  full();
  root.dataset.renderMs = (performance.now() - t0).toFixed(1);
  return () => {
    window.removeEventListener("mouseup", onUp);
    model.off("change:xy", full);
    model.off("change:height", full);
    model.off("change:values", onColor);
    model.off("change:categories", onColor);
    model.off("change:color_kind", onColor);
    model.off("change:selected_index", onSelection);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
