// Package fitting is the home of the code that reads ../shared/corpus and
// writes committed artefacts (fitted heads, thresholds): corpus reads the
// corpus manifest, headfit fits the attribute and liveness heads, and
// cmd/heads is `make train`. Nothing the daemon runs imports it; the
// artefacts it writes are served by estimators/ and models/.
package fitting
