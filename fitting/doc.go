// Package fitting is the home of the code that reads ../shared/corpus and
// writes committed artefacts (fitted heads, thresholds, int8 ranges,
// verification tables): corpus reads the corpus manifest, headfit fits the
// attribute and liveness heads, calibcrops cuts the face crops int8 ranges
// are measured on, verifycal builds the verify-matcher's error-rate table;
// cmd/heads is `make train`, cmd/calibrate `make calibrate` and
// cmd/calibrate-verify `make calibrate-verify`. Nothing the daemon runs
// imports it; the artefacts it writes are served by estimators/ and models/.
package fitting
