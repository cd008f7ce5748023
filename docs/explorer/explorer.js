// The latent explorer: runs the 2-D decoders of notebooks 03 and 04 in the reader's browser.
//
// The decoders are small MLPs (Dense layers, a ReLU hidden layer, a sigmoid output), exported
// by docs/explorer/export.py as float16 (or float32) weights (decoders/NAME.bin) and a layer table
// (decoders/NAME.json); decoding one image is a few hundred thousand multiply-adds, done here
// in plain JavaScript. Both files are read from this site, nothing from anywhere else.
(function () {
  "use strict";

  const MODELS = ["vae_2d", "cvae_2d"];
  // matplotlib's tab10, the colours of the notebooks' latent scatters.
  const COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ];
  const CHOSEN = "#1f77b4"; // the CVAE's chosen label
  const OTHERS = "#aaa";
  const MARGIN = { left: 34, right: 10, top: 10, bottom: 30 };
  const base = new URL("decoders/", document.currentScript.src);

  const root = document.getElementById("explorer");
  const z1 = document.getElementById("z1");
  const z2 = document.getElementById("z2");
  const select = document.getElementById("label");
  const decoded = document.getElementById("decoded");
  const plane = document.getElementById("plane");
  const status = document.getElementById("explorer-status");
  const caption = document.getElementById("explorer-caption");
  const legend = document.getElementById("explorer-legend");
  const readouts = { z1: document.getElementById("z1-value"), z2: document.getElementById("z2-value") };

  // IEEE 754 half precision (the .bin files) to a JavaScript number; exact.
  function halfToNumber(bits) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x03ff;
    if (exponent === 0) return sign * fraction * 2 ** -24;
    if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }

  async function fetchOk(name) {
    const response = await fetch(new URL(name, base));
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    return response;
  }

  async function loadModel(name) {
    const meta = await (await fetchOk(`${name}.json`)).json();
    const buffer = await (await fetchOk(meta.weights.file)).arrayBuffer();
    const view = new DataView(buffer);
    const half = meta.weights.dtype === "float16";
    if (!half && meta.weights.dtype !== "float32") {
      throw new Error(`${name}: unknown weight type ${meta.weights.dtype}`);
    }
    const weights = new Float32Array(buffer.byteLength / (half ? 2 : 4));
    for (let i = 0; i < weights.length; i++) {
      weights[i] = half ? halfToNumber(view.getUint16(2 * i, true)) : view.getFloat32(4 * i, true);
    }
    let width = 2;
    for (const layer of meta.weights.layers) {
      const expected = width + (layer.label ? meta.num_classes : 0);
      if (layer.inputs !== expected || layer.bias + layer.units > weights.length) {
        throw new Error(`${name}: the layer table does not match the weights`);
      }
      width = layer.units;
    }
    return { meta, weights };
  }

  // One forward pass: z (2 numbers) and, for the CVAE, a label -> 784 pixel probabilities.
  function decode(model, z, label) {
    const w = model.weights;
    let h = Float64Array.from(z);
    for (const layer of model.meta.weights.layers) {
      const units = layer.units;
      const out = new Float64Array(units);
      for (let j = 0; j < units; j++) out[j] = w[layer.bias + j];
      const addRow = (row, x) => {
        const start = layer.kernel + row * units;
        for (let j = 0; j < units; j++) out[j] += x * w[start + j];
      };
      for (let i = 0; i < h.length; i++) if (h[i] !== 0) addRow(i, h[i]);
      if (layer.label) addRow(h.length + label, 1); // the one-hot label, concatenated last
      for (let j = 0; j < units; j++) {
        out[j] = layer.activation === "sigmoid" ? 1 / (1 + Math.exp(-out[j]))
          : layer.activation === "relu" ? Math.max(out[j], 0) : out[j];
      }
      h = out;
    }
    return h;
  }

  // Dark ink on white paper, as the notebooks draw digits (matplotlib's gray_r).
  function drawDigit(pixels) {
    const context = decoded.getContext("2d");
    const image = context.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const value = Math.round(255 * (1 - pixels[i]));
      image.data.set([value, value, value, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  function planeGeometry() {
    const size = plane.clientWidth;
    const [low, high] = state.range;
    const width = size - MARGIN.left - MARGIN.right;
    const height = size - MARGIN.top - MARGIN.bottom;
    return {
      size,
      toX: (v) => MARGIN.left + ((v - low) / (high - low)) * width,
      toY: (v) => MARGIN.top + ((high - v) / (high - low)) * height,
      fromX: (x) => low + ((x - MARGIN.left) / width) * (high - low),
      fromY: (y) => high - ((y - MARGIN.top) / height) * (high - low),
    };
  }

  function drawPlane(model, label, z) {
    const g = planeGeometry();
    const ratio = window.devicePixelRatio || 1;
    if (plane.width !== Math.round(g.size * ratio)) {
      plane.width = plane.height = Math.round(g.size * ratio);
    }
    const c = plane.getContext("2d");
    c.setTransform(ratio, 0, 0, ratio, 0, 0);
    c.clearRect(0, 0, g.size, g.size);
    const [low, high] = state.range;
    c.font = "11px sans-serif";
    c.fillStyle = "#555";
    c.lineWidth = 1;
    for (let v = Math.ceil(low); v <= high; v++) {
      c.strokeStyle = v === 0 ? "#bbb" : "#eee";
      c.beginPath();
      c.moveTo(g.toX(v), g.toY(low));
      c.lineTo(g.toX(v), g.toY(high));
      c.moveTo(g.toX(low), g.toY(v));
      c.lineTo(g.toX(high), g.toY(v));
      c.stroke();
      c.textAlign = "center";
      c.fillText(String(v), g.toX(v), g.toY(low) + 14);
      c.textAlign = "right";
      c.fillText(String(v), g.toX(low) - 5, g.toY(v) + 4);
    }
    c.textAlign = "center";
    c.fillText("z\u2081", g.toX((low + high) / 2), g.size - 3);
    c.save();
    c.translate(10, g.toY((low + high) / 2));
    c.rotate(-Math.PI / 2);
    c.fillText("z\u2082", 0, 0);
    c.restore();
    // The encoded held-out digits: coloured by digit for the VAE; for the CVAE only the
    // chosen label's digits are coloured, the others grey.
    const scatter = model.meta.scatter;
    c.save();
    c.beginPath();
    c.rect(g.toX(low), g.toY(high), g.toX(high) - g.toX(low), g.toY(low) - g.toY(high));
    c.clip();
    if (scatter) {
      const points = scatter.z;
      const order = [];
      for (let i = 0; i < scatter.labels.length; i++) order.push(i);
      if (label !== null) {
        const isChosen = (i) => Number(Number(scatter.labels[i]) === label);
        order.sort((a, b) => isChosen(a) - isChosen(b)); // the chosen digits drawn last, on top
      }
      for (const i of order) {
        const digit = Number(scatter.labels[i]);
        const chosen = label === null || digit === label;
        c.globalAlpha = chosen ? 0.5 : 0.3;
        c.fillStyle = label === null ? COLORS[digit] : chosen ? CHOSEN : OTHERS;
        c.beginPath();
        c.arc(g.toX(points[2 * i]), g.toY(points[2 * i + 1]), chosen ? 1.8 : 1.4, 0, 2 * Math.PI);
        c.fill();
      }
      c.globalAlpha = 1;
    }
    c.restore();
    c.strokeStyle = "#333";
    c.strokeRect(g.toX(low), g.toY(high), g.toX(high) - g.toX(low), g.toY(low) - g.toY(high));
    c.beginPath();
    c.arc(g.toX(z[0]), g.toY(z[1]), 6, 0, 2 * Math.PI);
    c.fillStyle = "#d62728";
    c.fill();
    c.lineWidth = 2;
    c.strokeStyle = "#000";
    c.stroke();
  }

  function drawLegend(label) {
    const keys = label === null
      ? COLORS.map((color, digit) => [color, String(digit)])
      : [[CHOSEN, `label ${label}`], [OTHERS, "other labels"]];
    legend.replaceChildren(
      ...keys.map(([color, text]) => {
        const item = document.createElement("span");
        item.className = "explorer-key";
        item.style.setProperty("--key", color);
        item.textContent = text;
        return item;
      }),
    );
  }

  // The decoders' layers in words, from the exported layer tables: the page says what it runs.
  function describe(loaded) {
    const words = { relu: "ReLU", sigmoid: "sigmoid", linear: "linear" };
    const chain = (model) => ["z", ...model.meta.weights.layers.map(
      (layer) => `${layer.units} ${words[layer.activation]} units`)].join(" \u2192 ");
    const [vae, cvae] = loaded;
    const labelled = cvae.meta.weights.layers.filter((layer) => layer.label).length;
    const where = labelled === cvae.meta.weights.layers.length ? "every layer's input"
      : `${labelled} of its ${cvae.meta.weights.layers.length} layers' inputs`;
    return `the VAE's is ${chain(vae)} (the 28 \u00d7 28 pixel probabilities); the CVAE's is ` +
      `${chain(cvae)}, with the one-hot label joined to ${where}`;
  }

  const state = { models: null, range: [-4, 4], legendFor: undefined };

  function current() {
    const label = select.value === "vae" ? null : Number(select.value);
    const model = state.models[label === null ? "vae_2d" : "cvae_2d"];
    return { label, model, z: [Number(z1.value), Number(z2.value)] };
  }

  function update() {
    if (!state.models) return;
    const { label, model, z } = current();
    drawDigit(decode(model, z, label));
    drawPlane(model, label, z);
    readouts.z1.value = z[0].toFixed(2);
    readouts.z2.value = z[1].toFixed(2);
    if (state.legendFor !== label) {
      drawLegend(label);
      state.legendFor = label;
    }
    const article = label === 8 ? "an" : "a";
    const which = label === null
      ? "Notebook 03's VAE"
      : `Notebook 04's CVAE, told to draw ${article} ${label},`;
    caption.textContent = `${which} decodes z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)}).`;
    const scatter = model.meta.scatter;
    status.textContent = !scatter ? ""
      : label === null
        ? `Dots: ${scatter.description}, each at the mean of the code z that notebook 03's ` +
          "encoder gives it, coloured by digit."
        : `Dots: ${scatter.description}, each at the mean of the code z that notebook 04's ` +
          `encoder gives it together with its label; those labelled ${label} in blue.`;
  }

  // Dragging on the plane moves the point; the sliders follow (and snap to their step).
  function pointTo(event) {
    const box = plane.getBoundingClientRect();
    const g = planeGeometry();
    z1.value = g.fromX(event.clientX - box.left);
    z2.value = g.fromY(event.clientY - box.top);
    update();
  }
  plane.addEventListener("pointerdown", (event) => {
    plane.setPointerCapture(event.pointerId);
    pointTo(event);
  });
  plane.addEventListener("pointermove", (event) => {
    if (event.buttons & 1) pointTo(event);
  });
  for (const control of [z1, z2, select]) control.addEventListener("input", update);
  window.addEventListener("resize", update);

  Promise.all(MODELS.map(loadModel))
    .then((loaded) => {
      state.models = Object.fromEntries(MODELS.map((name, i) => [name, loaded[i]]));
      // One square for both models, so that switching keeps z where it is.
      const half = Math.max(...loaded.map((model) => model.meta.z_range[1]));
      state.range = [-half, half];
      for (const slider of [z1, z2]) {
        slider.min = state.range[0];
        slider.max = state.range[1];
      }
      document.getElementById("explorer-architecture").textContent = describe(loaded);
      const types = new Set(loaded.map((model) => model.meta.weights.dtype));
      document.getElementById("explorer-dtype").textContent = [...types].join(" and ");
      for (const control of [z1, z2, select]) control.disabled = false;
      update();
      root.dataset.ready = "true";
    })
    .catch((error) => {
      status.textContent = `The exported decoders could not be loaded (${error.message}).`;
      console.error("latent explorer:", error);
    });
})();
