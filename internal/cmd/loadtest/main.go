// Command loadtest measures the daemon under overload (make loadtest; not
// part of make test). It starts the daemon binary on a loopback port with
// the repository's models, measures the fitter's sustainable rate with as
// many closed-loop clients as processing slots, then offers -factor times
// that rate open-loop for -duration from up to -clients concurrent
// clients, sampling the daemon's RSS. It prints the answers by status, the
// admitted (200) requests' p50/p99, the slowest 503, connection errors and
// the peak RSS; it exits 1 when a connection fails, an answer is neither a
// 200 nor a 503, or a 503 took longer than -fast-503.
//
//	go run ./internal/cmd/loadtest -bin bin/imageapid [-duration 60s] [-factor 20]
//	go run ./internal/cmd/loadtest -bin bin/imageapid -soak 30m -rate 0.5
//
// With -soak it offers -rate times the sustainable rate of a mixed load (the
// fitter, /v1/process with three services, health checks) for the soak
// time and prints the RSS every minute and its growth after the first
// quarter (the warm-up).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/imageapid", "daemon binary")
	root := flag.String("root", ".", "repository root (models/manifest.json, models/build, third_party/fixtures)")
	duration := flag.Duration("duration", 60*time.Second, "overload phase")
	factor := flag.Float64("factor", 20, "offered rate as a multiple of the sustainable rate")
	clients := flag.Int("clients", 1000, "most requests in flight at once")
	fast := flag.Duration("fast-503", 2*time.Second, "slowest acceptable 503")
	soak := flag.Duration("soak", 0, "instead of the overload: a steady mixed load for this long")
	rate := flag.Float64("rate", 0.5, "soak rate as a multiple of the sustainable rate")
	extra := flag.String("config", "", "YAML appended to the generated config (e.g. http settings)")
	flag.Parse()
	if err := run(*bin, *root, *duration, *factor, *clients, *fast, *soak, *rate, *extra); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type daemon struct {
	cmd  *exec.Cmd
	base string
}

func start(bin, root, extra string) (*daemon, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(root)
	cfg := fmt.Sprintf("log_level: warn\nstate_dir: %s\nhttp:\n  listen: %s\n%smodels:\n  manifest: %s\n  dir: %s\nmqtt:\n  enabled: false\n",
		dir, addr, indent(extra), filepath.Join(abs, "models/manifest.json"), filepath.Join(abs, "models/build"))
	path := filepath.Join(dir, "imageapid.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, base: "http://" + addr}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(d.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d, nil
			}
		}
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("the daemon did not get ready")
}

// indent turns "max_queue: 8" lines into keys under http:.
func indent(extra string) string {
	if extra == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(extra), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// rss is the daemon's resident set in MB.
func (d *daemon) rss() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

type request struct {
	url, ctype string
	body       []byte
}

type result struct {
	status int
	took   time.Duration
	err    error
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0}, Timeout: 2 * time.Minute}

func (r request) do() result {
	t0 := time.Now()
	var body io.Reader
	method := http.MethodGet
	if r.body != nil {
		body, method = bytes.NewReader(r.body), http.MethodPost
	}
	req, _ := http.NewRequest(method, r.url, body)
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(t0)}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return result{status: resp.StatusCode, took: time.Since(t0)}
}

func imageForm(path string) (string, []byte, error) {
	img, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("image", filepath.Base(path))
	w.Write(img)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes(), nil
}

// sustainable runs n closed-loop clients for d and returns requests/s.
func sustainable(r request, n int, d time.Duration) float64 {
	var done atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if res := r.do(); res.status == 200 {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / d.Seconds()
}

// offer sends requests open-loop at rate per second for d, at most limit in
// flight (a request that finds the limit reached is not sent, and counted).
func offer(pick func(i int) request, rate float64, limit int, d time.Duration, sample func()) []result {
	var (
		mu  sync.Mutex
		out []result
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastSample := time.Now()
	start := time.Now()
	sent, skipped := 0, 0
	for now := range tick.C {
		if now.Sub(start) >= d {
			break
		}
		if now.Sub(lastSample) >= 500*time.Millisecond {
			lastSample = now
			sample()
		}
		// Catch up to the schedule: rate x elapsed requests by now.
		for due := int(rate * now.Sub(start).Seconds()); sent+skipped < due; {
			select {
			case sem <- struct{}{}:
			default:
				skipped++
				continue
			}
			wg.Add(1)
			go func(r request) {
				defer wg.Done()
				res := r.do()
				<-sem
				mu.Lock()
				out = append(out, res)
				mu.Unlock()
			}(pick(sent))
			sent++
		}
	}
	wg.Wait()
	fmt.Printf("sent %d requests in %s (%.0f/s)", sent, d, float64(sent)/d.Seconds())
	if skipped > 0 {
		fmt.Printf("; %d not sent: %d already in flight", skipped, limit)
	}
	fmt.Println()
	return out
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

func run(bin, root string, duration time.Duration, factor float64, limit int, fast, soak time.Duration, rate float64, extra string) error {
	d, err := start(bin, root, extra)
	if err != nil {
		return err
	}
	defer func() { d.cmd.Process.Signal(os.Interrupt); d.cmd.Wait() }()
	ct, body, err := imageForm(filepath.Join(root, "third_party/fixtures/messi5.jpg"))
	if err != nil {
		return err
	}
	fit := request{url: d.base + "/face-detector-face-fitter/process/image", ctype: ct, body: body}
	idle := d.rss()
	r := sustainable(fit, 4, 10*time.Second)
	fmt.Printf("idle RSS %.0f MB; sustainable fitter rate %.1f req/s (4 closed-loop clients, 10 s)\n", idle, r)
	if r <= 0 {
		return fmt.Errorf("the fitter answered nothing")
	}
	if soak > 0 {
		return runSoak(d, fit, r*rate, soak)
	}
	var peak float64
	results := offer(func(int) request { return fit }, r*factor, limit, duration, func() { peak = max(peak, d.rss()) })
	counts := map[string]int{}
	var ok, busy []time.Duration
	bad := 0
	for _, res := range results {
		switch {
		case res.err != nil:
			counts["connection error"]++
			bad++
		case res.status == 200:
			counts["200"]++
			ok = append(ok, res.took)
		case res.status == 503:
			counts["503"]++
			busy = append(busy, res.took)
		default:
			counts[strconv.Itoa(res.status)]++
			bad++
		}
	}
	slow503 := pct(busy, 1)
	fmt.Printf("offered %.0f req/s (%.0fx) for %s: %d requests, answers %v\n", r*factor, factor, duration, len(results), counts)
	fmt.Printf("admitted (200): %.1f req/s, p50 %s, p99 %s; 503: p50 %s, slowest %s\n",
		float64(len(ok))/duration.Seconds(), pct(ok, 0.5).Round(time.Millisecond), pct(ok, 0.99).Round(time.Millisecond),
		pct(busy, 0.5).Round(time.Millisecond), slow503.Round(time.Millisecond))
	fmt.Printf("RSS: idle %.0f MB, peak %.0f MB\n", idle, peak)
	if d.cmd.ProcessState != nil {
		return fmt.Errorf("the daemon exited")
	}
	if bad > 0 || slow503 > fast {
		return fmt.Errorf("%d answers were neither 200 nor 503 or failed, slowest 503 %s (limit %s)", bad, slow503, fast)
	}
	return nil
}

func runSoak(d *daemon, fit request, rate float64, soak time.Duration) error {
	// /v1/process takes its services as a form field beside the image.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("services", "face-detector-face-fitter,age-estimator,quality-assessment-estimator")
	w, _ := mw.CreateFormFile("image", "i.jpg")
	w.Write(extractImage(fit))
	mw.Close()
	mixed := []request{
		fit,
		{url: d.base + "/healthz"},
		{url: d.base + "/v1/process", ctype: mw.FormDataContentType(), body: buf.Bytes()},
	}
	var (
		samples []float64
		next    = time.Now().Add(time.Minute)
		bad     atomic.Int64
	)
	fmt.Printf("soak: %.1f req/s of fitter, /v1/process and /healthz for %s\n", rate, soak)
	results := offer(func(i int) request { return mixed[i%len(mixed)] }, rate, 200, soak, func() {
		if time.Now().After(next) {
			next = next.Add(time.Minute)
			s := d.rss()
			samples = append(samples, s)
			fmt.Printf("minute %d: RSS %.0f MB\n", len(samples), s)
		}
	})
	counts := map[int]int{}
	for _, r := range results {
		if r.err != nil || (r.status != 200 && r.status != 503) {
			bad.Add(1)
		}
		counts[r.status]++
	}
	fmt.Printf("answers by status %v, %d failed\n", counts, bad.Load())
	if len(samples) >= 4 {
		warm := samples[len(samples)/4]
		last := samples[len(samples)-1]
		fmt.Printf("RSS after warm-up %.0f MB, at the end %.0f MB: growth %.1f%%\n", warm, last, 100*(last-warm)/warm)
	}
	if bad.Load() > 0 {
		return fmt.Errorf("%d requests failed", bad.Load())
	}
	return nil
}

// extractImage returns the file bytes of a one-part image form.
func extractImage(r request) []byte {
	_, params, _ := strings.Cut(r.ctype, "boundary=")
	mr := multipart.NewReader(bytes.NewReader(r.body), params)
	p, err := mr.NextPart()
	if err != nil {
		return nil
	}
	b, _ := io.ReadAll(p)
	return b
}
