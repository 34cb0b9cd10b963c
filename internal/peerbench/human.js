// Runs Human (the peer) on one raw RGB image n times after a warm-up, with
// the face set the Image API chain covers (detector with rotation, mesh,
// FaceRes description for age, gender and descriptor, emotion, antispoof,
// liveness), and prints one JSON line: wall and CPU ms per image.
//
//	node human.js PEER_DIR IMAGE.rgb WIDTH HEIGHT N
//
// Human's Node WASM build fetches its models over HTTP, so they are served
// from the installed package on a loopback port for the run.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const [peerDir, rgbPath, width, height, runs] = process.argv.slice(2);
const modules = path.resolve(peerDir, 'node_modules');
const { Human } = require(path.join(modules, '@vladmandic/human/dist/human.node-wasm.js'));
const tf = require(path.join(modules, '@tensorflow/tfjs-core'));
const wasm = require(path.join(modules, '@tensorflow/tfjs-backend-wasm'));

function serve(dir) {
  const root = path.resolve(dir);
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const file = path.resolve(root, '.' + decodeURIComponent(req.url.split('?')[0]));
      if (!file.startsWith(root + path.sep)) {
        res.statusCode = 403;
        res.end();
        return;
      }
      fs.readFile(file, (err, body) => {
        res.statusCode = err ? 404 : 200;
        res.end(err ? undefined : body);
      });
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

async function main() {
  const srv = await serve(path.join(modules, '@vladmandic/human/models'));
  try {
    const wasmDir = path.join(modules, '@tensorflow/tfjs-backend-wasm/dist') + path.sep;
    wasm.setWasmPaths(wasmDir);
    const human = new Human({
      backend: 'wasm', wasmPath: wasmDir, modelBasePath: `http://127.0.0.1:${srv.address().port}/`,
      debug: false, async: false, warmup: 'none', cacheSensitivity: 0,
      face: {
        enabled: true, detector: { rotation: true, maxDetected: 1 }, mesh: { enabled: true }, iris: { enabled: false },
        description: { enabled: true }, emotion: { enabled: true }, antispoof: { enabled: true }, liveness: { enabled: true },
      },
      body: { enabled: false }, hand: { enabled: false }, object: { enabled: false },
      gesture: { enabled: false }, segmentation: { enabled: false },
    });
    await human.load();
    const pixels = new Uint8Array(fs.readFileSync(rgbPath));
    const input = tf.tensor(pixels, [1, +height, +width, 3], 'int32');
    let result = await human.detect(input);
    const n = Math.max(1, +runs);
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) result = await human.detect(input);
    const wall = Number(process.hrtime.bigint() - start) / 1e6;
    const used = process.cpuUsage(cpu);
    console.log(JSON.stringify({
      backend: tf.getBackend(), faces: result.face.length,
      ms_per_image: wall / n, cpu_ms_per_image: (used.user + used.system) / 1000 / n,
    }));
  } finally {
    srv.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
