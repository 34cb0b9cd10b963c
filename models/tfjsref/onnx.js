// onnx.js runs an ONNX model in ONNX Runtime (onnxruntime-node, CPU) and
// writes its outputs, for the model compiler's parity gate of ONNX builds.
//
// usage: node onnx.js REQUEST.json
// REQUEST: as reference.js's, with "model" the .onnx file and "shape" the
// compiled model's NHWC input shape; each input is given to the ONNX model
// as NCHW, which is what PyTorch exports take.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const session = await ort.InferenceSession.create(req.model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const [n, h, w, c] = req.shape;
  if (n !== 1) throw new Error('batch ' + n + ', want 1');
  const size = h * w * c;
  const raw = fs.readFileSync(req.inputs);
  const inputs = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const out = fs.openSync(req.result, 'w');
  for (let i = 0; i < req.count; i++) {
    const nhwc = inputs.subarray(i * size, (i + 1) * size);
    const nchw = new Float32Array(size);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) nchw[(k * h + y) * w + x] = nhwc[(y * w + x) * c + k];
      }
    }
    const feed = {};
    feed[req.input] = new ort.Tensor('float32', nchw, [1, c, h, w]);
    const res = await session.run(feed, req.outputs);
    for (const name of req.outputs) {
      const f = Float32Array.from(res[name].data);
      fs.writeSync(out, Buffer.from(f.buffer));
    }
  }
  fs.closeSync(out);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
