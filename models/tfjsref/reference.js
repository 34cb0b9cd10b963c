// reference.js runs a TF.js graph model with the pure-JS CPU backend and
// writes its outputs, for the model compiler's parity gate.
//
// usage: node reference.js REQUEST.json
// REQUEST: {"model": "dir/model.json", "input": "name", "shape": [1,64,64,1],
//           "outputs": ["Identity:0", ...], "inputs": "inputs.f32", "count": N,
//           "result": "outputs.f32"}
// inputs.f32 holds N input tensors (float32 little-endian, back to back);
// outputs.f32 receives, per input, each output tensor in order.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  await tf.setBackend('cpu');
  const dir = path.dirname(req.model);
  const json = JSON.parse(fs.readFileSync(req.model, 'utf8'));
  const specs = [];
  const chunks = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) chunks.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(chunks);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = {
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata,
    }),
  };
  const model = await converter.loadGraphModel(handler);
  const size = req.shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(req.inputs);
  const inputs = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const out = fs.openSync(req.result, 'w');
  for (let i = 0; i < req.count; i++) {
    const x = tf.tensor(inputs.slice(i * size, (i + 1) * size), req.shape, 'float32');
    const feed = {};
    feed[req.input] = x;
    let ys = model.execute(feed, req.outputs);
    if (!Array.isArray(ys)) ys = [ys];
    for (const y of ys) {
      const d = await y.data();
      const f = Float32Array.from(d);
      fs.writeSync(out, Buffer.from(f.buffer));
      y.dispose();
    }
    x.dispose();
  }
  fs.closeSync(out);
}

main().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
