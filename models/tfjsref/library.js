// library.js runs a network of a JS library with the library's own code
// (e.g. face-api's AgeGenderNet, whose graph is written in its source, not
// stored with its weights) on TF.js's pure-JS CPU backend, and writes its
// outputs, for the model compiler's parity gate on described graphs.
//
// usage: node library.js REQUEST.json
// REQUEST: {"module": "/abs/face-api.node-wasm.js", "net": "AgeGenderNet",
//           "weights": "dir/x-weights_manifest.json", "shape": [1,112,112,3],
//           "netShape": [112,112,3], "outputs": ["age", "gender"],
//           "inputs": "inputs.f32", "count": N, "result": "outputs.f32"}
// forward's result is one tensor (outputs: [""]) or an object of tensors,
// read in the order of "outputs".
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const lib = require(req.module);
  const tf = lib.tf;
  if (!(await tf.setBackend('cpu'))) throw new Error('the TF.js CPU backend does not start');
  const dir = path.dirname(req.weights);
  const manifest = JSON.parse(fs.readFileSync(req.weights, 'utf8'));
  const specs = [];
  const chunks = [];
  for (const group of manifest) {
    for (const p of group.paths) chunks.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(chunks);
  const weightMap = tf.io.decodeWeights(all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength), specs);
  const net = new lib[req.net]();
  net.loadFromWeightMap(weightMap);
  const size = req.shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(req.inputs);
  const inputs = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const out = fs.openSync(req.result, 'w');
  for (let i = 0; i < req.count; i++) {
    const x = tf.tensor(inputs.slice(i * size, (i + 1) * size), req.netShape, 'float32');
    const y = await net.forward(x);
    for (const key of req.outputs) {
      const t = key === '' ? y : y[key];
      if (!t) throw new Error(`${req.net}.forward gave no output ${key}`);
      const f = Float32Array.from(await t.data());
      fs.writeSync(out, Buffer.from(f.buffer));
    }
    tf.dispose(y);
    x.dispose();
  }
  fs.closeSync(out);
}

main().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
