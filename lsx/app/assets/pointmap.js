// lsx WebGL point map: every point of a latent store, drawn with WebGL (a Canvas 2-D pixel
// renderer when the browser has no WebGL). Zoom (wheel) and pan (drag) re-render all points;
// hover finds the nearest point through a grid index; a lasso or box is sent back to Python as
// a polygon in data coordinates (Python computes the ids over every point), a click as one id.
// Payload format: lsx/viz/pointmap.py. No network access, no dependencies.

const GRID = 256; // hover index: GRID x GRID cells over the unit square
const HOVER_PX = 10; // hover and click radius

function parse(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== "LSXM") throw new Error("not an lsx point map payload");
  const hlen = dv.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  let off = 8 + hlen;
  off += (4 - (off % 4)) % 4;
  const n = header.n;
  // copies: typed arrays need aligned offsets
  const qx = new Uint16Array(bytes.slice(off, off + 2 * n).buffer);
  const qy = new Uint16Array(bytes.slice(off + 2 * n, off + 4 * n).buffer);
  const col = bytes.slice(off + 4 * n, off + 5 * n);
  off += 5 * n;
  off += (4 - (off % 4)) % 4;
  const values = header.has_values ? new Float32Array(bytes.slice(off, off + 4 * n).buffer) : null;
  return { header, n, qx, qy, col, values };
}

function hexRgb(h) {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

function buildGrid(p) {
  // counting sort of point ids by cell: start[c]..start[c+1] in order
  const cell = new Uint32Array(p.n);
  const count = new Uint32Array(GRID * GRID + 1);
  for (let i = 0; i < p.n; i++) {
    const cx = Math.min(GRID - 1, (p.qx[i] * GRID) >> 16);
    const cy = Math.min(GRID - 1, (p.qy[i] * GRID) >> 16);
    cell[i] = cy * GRID + cx;
    count[cell[i] + 1]++;
  }
  for (let c = 0; c < GRID * GRID; c++) count[c + 1] += count[c];
  const fill = count.slice(0, GRID * GRID);
  const order = new Uint32Array(p.n);
  for (let i = 0; i < p.n; i++) order[fill[cell[i]]++] = i;
  return { start: count, order };
}

const VS = `
attribute float a_x; attribute float a_y; attribute float a_c;
uniform vec4 u_view; uniform float u_size;
varying float v_c;
void main() {
  gl_Position = vec4((a_x - u_view.x) / (u_view.y - u_view.x) * 2.0 - 1.0,
                     (a_y - u_view.z) / (u_view.w - u_view.z) * 2.0 - 1.0, 0.0, 1.0);
  gl_PointSize = u_size;
  v_c = a_c;
}`;
const FS = `
precision mediump float;
uniform sampler2D u_pal; varying float v_c;
void main() {
  vec2 d = gl_PointCoord - vec2(0.5);
  if (dot(d, d) > 0.25) discard;
  vec4 c = texture2D(u_pal, vec2((v_c + 0.5) / 256.0, 0.5));
  gl_FragColor = vec4(c.rgb, 0.85);
}`;

function glRenderer(canvas, p, palette) {
  const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true });
  if (!gl) return null;
  const prog = gl.createProgram();
  for (const [type, src] of [[gl.VERTEX_SHADER, VS], [gl.FRAGMENT_SHADER, FS]]) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) return null;
    gl.attachShader(prog, s);
  }
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) return null;
  gl.useProgram(prog);
  const attr = (name, data, type, normalized) => {
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, name);
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 1, type, normalized, 0, 0);
  };
  attr("a_x", p.qx, gl.UNSIGNED_SHORT, true); // 0..1
  attr("a_y", p.qy, gl.UNSIGNED_SHORT, true);
  attr("a_c", p.col, gl.UNSIGNED_BYTE, false); // 0..255
  const pal = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = hexRgb(palette[i % palette.length]);
    pal.set([r, g, b, 255], 4 * i);
  }
  const tex = gl.createTexture();
  gl.bindTexture(gl.TEXTURE_2D, tex);
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, 256, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, pal);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  gl.enable(gl.BLEND);
  gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
  const uView = gl.getUniformLocation(prog, "u_view");
  const uSize = gl.getUniformLocation(prog, "u_size");
  const px = new Uint8Array(4);
  return {
    kind: "webgl",
    draw(view, size) {
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(1, 1, 1, 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      gl.uniform4f(uView, view[0], view[1], view[2], view[3]);
      gl.uniform1f(uSize, size);
      gl.drawArrays(gl.POINTS, 0, p.n);
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); // waits for the frame: honest timing
    },
  };
}

function pixelRenderer(canvas, p, palette) {
  const ctx = canvas.getContext("2d");
  const rgb = palette.map(hexRgb);
  return {
    kind: "canvas2d",
    draw(view, size) {
      const w = canvas.width, h = canvas.height;
      const img = ctx.createImageData(w, h);
      const d = img.data;
      d.fill(255);
      const r = Math.max(0, Math.round(size / 2) - 1);
      const sx = w / (view[1] - view[0]), sy = h / (view[3] - view[2]);
      for (let i = 0; i < p.n; i++) {
        const px = Math.round((p.qx[i] / 65535 - view[0]) * sx);
        const py = Math.round(h - (p.qy[i] / 65535 - view[2]) * sy);
        if (px < -r || py < -r || px >= w + r || py >= h + r) continue;
        const c = rgb[p.col[i] % rgb.length];
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const x = px + dx, y = py + dy;
            if (x < 0 || y < 0 || x >= w || y >= h) continue;
            const k = 4 * (y * w + x);
            d[k] = c[0]; d[k + 1] = c[1]; d[k + 2] = c[2];
          }
        }
      }
      ctx.putImageData(img, 0, 0);
    },
  };
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return;
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const t0 = performance.now();
  const p = parse(bytes);
  const hd = p.header;
  const height = hd.height || 620;
  // new data (another colour, contours) calls this again on the same element: replace the map
  for (const old of parentElement.querySelectorAll(".lsx-pointmap")) old.remove();
  const root = document.createElement("div");
  root.className = "lsx-pointmap";
  root.style.cssText = `position:relative;width:100%;height:${height + 34}px;font:12px sans-serif`;
  const bar = document.createElement("div");
  bar.style.cssText = "height:30px;display:flex;gap:6px;align-items:center";
  const modes = {};
  let mode = "pan";
  for (const [m, label] of [["pan", "Pan / zoom"], ["lasso", "Lasso"], ["box", "Box"]]) {
    const b = document.createElement("button");
    b.textContent = label;
    b.dataset.mode = m;
    b.onclick = () => setMode(m);
    modes[m] = b;
    bar.appendChild(b);
  }
  const reset = document.createElement("button");
  reset.textContent = "Reset view";
  reset.onclick = () => { view = [0, 1, 0, 1]; render(); };
  bar.appendChild(reset);
  const status = document.createElement("span");
  status.style.cssText = "margin-left:auto;color:#555";
  bar.appendChild(status);
  root.appendChild(bar);
  const wrap = document.createElement("div");
  wrap.style.cssText = `position:relative;width:100%;height:${height}px;border:1px solid #ddd`;
  const canvas = document.createElement("canvas");
  const lines = document.createElement("canvas"); // density contours, redrawn with the points
  const over = document.createElement("canvas");
  for (const c of [canvas, lines, over]) {
    c.style.cssText = "position:absolute;left:0;top:0;width:100%;height:100%";
    wrap.appendChild(c);
  }
  over.style.cursor = "crosshair";
  const tip = document.createElement("div");
  tip.className = "lsx-pointmap-tip";
  tip.style.cssText =
    "position:absolute;pointer-events:none;background:#fff;border:1px solid #999;" +
    "padding:2px 5px;display:none;white-space:nowrap;z-index:2";
  wrap.appendChild(tip);
  root.appendChild(wrap);
  parentElement.appendChild(root);

  const W = Math.max(200, Math.round(wrap.clientWidth || 800));
  const H = height;
  canvas.width = over.width = lines.width = W;
  canvas.height = over.height = lines.height = H;
  const lctx = lines.getContext("2d");
  const palette = hd.palette;
  const renderer = glRenderer(canvas, p, palette) || pixelRenderer(canvas, p, palette);
  const grid = buildGrid(p);
  // visible part of the unit square (x0, x1, y0, y1); kept when only the colour or the contours
  // change (the same map view id), reset for another projection
  const kept = parentElement.__lsxView;
  let view = kept && kept.id === hd.view ? kept.view.slice() : [0, 1, 0, 1];
  const octx = over.getContext("2d");
  const size = () => {
    const zoom = 1 / (view[1] - view[0]);
    const base = p.n > 200000 ? 2 : p.n > 20000 ? 3 : 5;
    return Math.min(12, base * Math.sqrt(zoom));
  };
  function drawContours() {
    lctx.clearRect(0, 0, W, H);
    if (!hd.contours) return;
    lctx.strokeStyle = "rgba(40, 40, 40, 0.6)";
    lctx.lineWidth = 1;
    for (const c of hd.contours) {
      lctx.beginPath();
      for (let k = 0; k + 1 < c.length; k += 2) {
        const [x, y] = toPx(c[k], c[k + 1]);
        if (k) lctx.lineTo(x, y); else lctx.moveTo(x, y);
      }
      lctx.stroke();
    }
  }
  function render() {
    parentElement.__lsxView = { id: hd.view, view };
    const t = performance.now();
    renderer.draw(view, size());
    drawContours();
    root.dataset.frameMs = (performance.now() - t).toFixed(1);
    const z = (1 / (view[1] - view[0])).toFixed(1);
    status.textContent = `${p.n.toLocaleString()} points · ${renderer.kind} · zoom ${z}x`;
  }
  function setMode(m) {
    mode = m;
    for (const [k, b] of Object.entries(modes)) b.style.fontWeight = k === m ? "bold" : "normal";
  }
  setMode("pan");
  // unit-square <-> canvas pixels <-> data coordinates
  const toUnit = (px, py) => [view[0] + (px / W) * (view[1] - view[0]),
                              view[2] + ((H - py) / H) * (view[3] - view[2])];
  const toPx = (ux, uy) => [((ux - view[0]) / (view[1] - view[0])) * W,
                            H - ((uy - view[2]) / (view[3] - view[2])) * H];
  const [x0, x1, y0, y1] = hd.extent;
  const toData = (ux, uy) => [x0 + ux * (x1 - x0), y0 + uy * (y1 - y0)];
  const pos = (e) => {
    const r = over.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * W, ((e.clientY - r.top) / r.height) * H];
  };
  function nearest(px, py) {
    const [ux, uy] = toUnit(px, py);
    const rad = (HOVER_PX / W) * (view[1] - view[0]);
    const c0x = Math.max(0, Math.floor((ux - rad) * GRID)), c1x = Math.min(GRID - 1, Math.floor((ux + rad) * GRID));
    const c0y = Math.max(0, Math.floor((uy - rad) * GRID)), c1y = Math.min(GRID - 1, Math.floor((uy + rad) * GRID));
    let best = -1, bestD = Infinity;
    for (let cy = c0y; cy <= c1y; cy++) {
      for (let cx = c0x; cx <= c1x; cx++) {
        const c = cy * GRID + cx;
        for (let k = grid.start[c]; k < grid.start[c + 1]; k++) {
          const i = grid.order[k];
          const [qx, qy] = toPx(p.qx[i] / 65535, p.qy[i] / 65535);
          const d = (qx - px) ** 2 + (qy - py) ** 2;
          if (d < bestD || (d === bestD && i < best)) { bestD = d; best = i; }
        }
      }
    }
    return bestD <= HOVER_PX * HOVER_PX ? best : -1;
  }
  function label(i) {
    if (hd.categories) return hd.categories[p.col[i]] ?? `code ${p.col[i]}`;
    if (p.values) return Number.isFinite(p.values[i]) ? p.values[i].toPrecision(4) : "n/a";
    return "";
  }
  let drag = null, path = [];
  over.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [px, py] = pos(e);
    const [ux, uy] = toUnit(px, py);
    const f = Math.exp(Math.sign(e.deltaY) * 0.15);
    const w = Math.min(1, Math.max(1e-5, (view[1] - view[0]) * f));
    const h = Math.min(1, Math.max(1e-5, (view[3] - view[2]) * f));
    view = [ux - (px / W) * w, ux - (px / W) * w + w, uy - ((H - py) / H) * h, uy - ((H - py) / H) * h + h];
    render();
  }, { passive: false });
  over.addEventListener("mousedown", (e) => {
    drag = { start: pos(e), view: view.slice(), moved: false };
    path = [drag.start];
  });
  over.addEventListener("mousemove", (e) => {
    const [px, py] = pos(e);
    if (drag) {
      if (Math.abs(px - drag.start[0]) + Math.abs(py - drag.start[1]) > 3) drag.moved = true;
      if (mode === "pan") {
        const dx = ((px - drag.start[0]) / W) * (drag.view[1] - drag.view[0]);
        const dy = ((py - drag.start[1]) / H) * (drag.view[3] - drag.view[2]);
        view = [drag.view[0] - dx, drag.view[1] - dx, drag.view[2] + dy, drag.view[3] + dy];
        render();
      } else {
        path.push([px, py]);
        octx.clearRect(0, 0, W, H);
        octx.strokeStyle = "#d62728";
        octx.setLineDash([4, 3]);
        octx.beginPath();
        if (mode === "box") {
          const [sx, sy] = drag.start;
          octx.rect(Math.min(sx, px), Math.min(sy, py), Math.abs(px - sx), Math.abs(py - sy));
        } else {
          path.forEach(([x, y], k) => (k ? octx.lineTo(x, y) : octx.moveTo(x, y)));
          octx.closePath();
        }
        octx.stroke();
      }
      return;
    }
    const i = nearest(px, py);
    octx.clearRect(0, 0, W, H);
    if (i < 0) { tip.style.display = "none"; root.dataset.hover = ""; return; }
    const [hx, hy] = toPx(p.qx[i] / 65535, p.qy[i] / 65535);
    octx.strokeStyle = "#000";
    octx.setLineDash([]);
    octx.beginPath();
    octx.arc(hx, hy, 6, 0, 2 * Math.PI);
    octx.stroke();
    tip.innerHTML = "";
    tip.append(`id ${i}`, document.createElement("br"), `${hd.title}: ${label(i)}`);
    tip.style.left = `${Math.min(hx + 12, W - 160)}px`;
    tip.style.top = `${Math.max(hy - 30, 0)}px`;
    tip.style.display = "block";
    root.dataset.hover = String(i);
  });
  const finish = (e) => {
    if (!drag) return;
    const end = pos(e);
    const d = drag;
    drag = null;
    octx.clearRect(0, 0, W, H);
    const stamp = Date.now();
    if (!d.moved) {
      const i = nearest(end[0], end[1]);
      if (i >= 0) setStateValue("selection", { view: hd.view, kind: "point", ids: [i], stamp });
      return;
    }
    if (mode === "pan") return;
    let poly;
    if (mode === "box") {
      const [sx, sy] = d.start;
      poly = [[sx, sy], [end[0], sy], [end[0], end[1]], [sx, end[1]]];
    } else {
      poly = path;
      if (poly.length < 3) return;
    }
    const polygon = poly.map(([x, y]) => toData(...toUnit(x, y)));
    setStateValue("selection", { view: hd.view, kind: mode, polygon, stamp });
  };
  over.addEventListener("mouseup", finish);
  over.addEventListener("mouseleave", (e) => {
    tip.style.display = "none";
    if (drag && mode !== "pan") finish(e);
    drag = null;
  });
  render();
  root.dataset.renderer = renderer.kind;
  root.dataset.contours = String(hd.contours ? hd.contours.length : 0);
  root.dataset.firstPaintMs = (performance.now() - t0).toFixed(1);
  root.dataset.ready = "1";
  // for tests and benches: where a point is drawn now, in client (page) pixels
  root.pointAt = (i) => {
    const [px, py] = toPx(p.qx[i] / 65535, p.qy[i] / 65535);
    const r = over.getBoundingClientRect();
    return [r.left + (px / W) * r.width, r.top + (py / H) * r.height];
  };
  return () => root.remove();
}
