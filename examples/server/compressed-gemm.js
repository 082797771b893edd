// The library, as `require('compressed-gemm')` gives it in a service. This example lives in the
// package's own checkout, so it loads the package at the repository root (its package.json
// "main", dist/index.js, which `npm install` or `npm run build:ts` builds) and so always runs the
// code of the checkout it sits in; copied into a project that depends on compressed-gemm, it
// loads the installed package.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..', '..');

function inCheckout() {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name === 'compressed-gemm';
  } catch {
    return false;
  }
}

function load() {
  if (!inCheckout()) return require('compressed-gemm');
  try {
    return require(root);
  } catch (e) {
    if (e.code === 'MODULE_NOT_FOUND' && !fs.existsSync(path.join(root, 'dist', 'index.js'))) {
      throw new Error(`compressed-gemm is not built in ${root}: run \`npm run build:ts\` there (npm install does it too)`);
    }
    throw e;
  }
}

module.exports = load();
