// Command loadtest measures the daemon under overload (make loadtest; not
// part of make test). It starts the daemon binary on a loopback port with
// the repository's models, measures the fitter's sustainable rate with as
// many closed-loop clients as processing slots, then offers -factor times
// that rate open-loop for -duration from up to -clients concurrent
// clients, sampling the daemon's RSS. The fitter gets -images distinct
// images in turn, so that the face cache cannot answer repeats from memory.
// It prints the answers by status, the admitted (200) requests' p50/p99,
// the slowest 503, connection errors, the peak RSS, where the 503s' time
// went (getting a connection, sending, waiting for the answer), and what
// one client sending a request every 100 ms beside the crowd saw; it exits
// 1 when a connection fails, an answer is neither a 200 nor a 503, or a
// 503 took longer than -fast-503.
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
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptrace"
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
	variants := flag.Int("images", 512, "distinct images sent to the fitter (more than the face cache holds; 1: the same file every time)")
	flag.Parse()
	if err := run(*bin, *root, *duration, *factor, *clients, *fast, *soak, *rate, *extra, *variants); err != nil {
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
	// Where the time went: getting a connection (a dial when not reused),
	// sending the request, then waiting for the answer's first byte.
	conn, send, wait time.Duration
	dialed           bool
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0}, Timeout: 2 * time.Minute}

func (r request) do() result {
	t0 := time.Now()
	var body io.Reader
	method := http.MethodGet
	if r.body != nil {
		body, method = bytes.NewReader(r.body), http.MethodPost
	}
	var res result
	var gotConn, wrote time.Time
	trace := &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			gotConn = time.Now()
			res.conn, res.dialed = gotConn.Sub(t0), !i.Reused
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			wrote = time.Now()
			res.send = wrote.Sub(gotConn)
		},
		GotFirstResponseByte: func() {
			// The answer may come before the whole body is sent.
			if wrote.IsZero() {
				res.wait = time.Since(gotConn)
			} else {
				res.wait = time.Since(wrote)
			}
		},
	}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, r.url, body)
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	resp, err := client.Do(req)
	if err != nil {
		res.err, res.took = err, time.Since(t0)
		return res
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res.status, res.took = resp.StatusCode, time.Since(t0)
	return res
}

func imageForm(name string, img []byte) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("image", name)
	w.Write(img)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// imageVariants returns n JPEGs of the image at path, each with its own
// pixels (a corner pixel row spells the variant's number). The daemon's
// face cache answers a repeated image from memory, so one image sent again
// and again would measure the cache, not the fitter; n larger than the
// cache's 64 images keeps every request a miss. n = 1 is the file as it is.
func imageVariants(path string, n int) ([][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return [][]byte{raw}, nil
	}
	src, err := jpeg.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b := src.Bounds()
	img := image.NewRGBA(b)
	draw.Draw(img, b, src, b.Min, draw.Src)
	out := make([][]byte, n)
	for i := range out {
		for bit := 0; bit < 16; bit++ {
			v := uint8(0)
			if i>>bit&1 == 1 {
				v = 255
			}
			for y := 0; y < 4; y++ {
				for x := 0; x < 4; x++ {
					img.Set(b.Min.X+bit*4+x, b.Min.Y+y, color.RGBA{v, v, v, 255})
				}
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			return nil, err
		}
		out[i] = buf.Bytes()
	}
	return out, nil
}

// sustainable runs n closed-loop clients for d and returns requests/s.
func sustainable(pick func(i int) request, n int, d time.Duration) float64 {
	var done, next atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if res := pick(int(next.Add(1))).do(); res.status == 200 {
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

func run(bin, root string, duration time.Duration, factor float64, limit int, fast, soak time.Duration, rate float64, extra string, variants int) error {
	d, err := start(bin, root, extra)
	if err != nil {
		return err
	}
	defer func() { d.cmd.Process.Signal(os.Interrupt); d.cmd.Wait() }()
	imgs, err := imageVariants(filepath.Join(root, "third_party/fixtures/messi5.jpg"), variants)
	if err != nil {
		return err
	}
	fits := make([]request, len(imgs))
	for i, img := range imgs {
		ct, body := imageForm("messi5.jpg", img)
		fits[i] = request{url: d.base + "/face-detector-face-fitter/process/image", ctype: ct, body: body}
	}
	fit := func(i int) request { return fits[i%len(fits)] }
	idle := d.rss()
	r := sustainable(fit, 4, 10*time.Second)
	fmt.Printf("idle RSS %.0f MB; sustainable fitter rate %.1f req/s (4 closed-loop clients, 10 s, %d distinct images)\n", idle, r, len(fits))
	if r <= 0 {
		return fmt.Errorf("the fitter answered nothing")
	}
	if soak > 0 {
		return runSoak(d, fit, r*rate, soak)
	}
	var peak float64
	probe := startProbe(fit, duration)
	results := offer(fit, r*factor, limit, duration, func() { peak = max(peak, d.rss()) })
	probed := probe()
	counts := map[string]int{}
	var ok, busy []time.Duration
	var slowest result
	var conn, send, wait []time.Duration
	dials := 0
	bad := 0
	for _, res := range results {
		if res.dialed {
			dials++
		}
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
			conn, send, wait = append(conn, res.conn), append(send, res.send), append(wait, res.wait)
			if res.took > slowest.took {
				slowest = res
			}
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
	fmt.Printf("503 phases, p99 / max: connection %s / %s, sending %s / %s, waiting for the answer %s / %s; %d connections dialed\n",
		pct(conn, 0.99).Round(time.Millisecond), pct(conn, 1).Round(time.Millisecond),
		pct(send, 0.99).Round(time.Millisecond), pct(send, 1).Round(time.Millisecond),
		pct(wait, 0.99).Round(time.Millisecond), pct(wait, 1).Round(time.Millisecond), dials)
	fmt.Printf("slowest 503: %s = connection %s (dialed %v) + sending %s + waiting %s\n", slowest.took.Round(time.Millisecond),
		slowest.conn.Round(time.Millisecond), slowest.dialed, slowest.send.Round(time.Millisecond), slowest.wait.Round(time.Millisecond))
	fmt.Printf("RSS: idle %.0f MB, peak %.0f MB\n", idle, peak)
	fmt.Printf("%s\n", probed)
	if d.cmd.ProcessState != nil {
		return fmt.Errorf("the daemon exited")
	}
	if bad > 0 || slow503 > fast {
		return fmt.Errorf("%d answers were neither 200 nor 503 or failed, slowest 503 %s (limit %s)", bad, slow503, fast)
	}
	return nil
}

// startProbe sends the request every 100 ms from one client of its own
// (its own connection) for d, beside the crowd: what a single polite client
// sees of the daemon under the overload. The returned func waits for the
// end and summarizes.
func startProbe(pick func(i int) request, d time.Duration) func() string {
	pc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: time.Minute}
	done := make(chan string, 1)
	go func() {
		counts := map[string]int{}
		var busy, all []time.Duration
		for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
			if i > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			r := pick(1<<20 + i) // not the crowd's images at the same moment
			t0 := time.Now()
			req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(r.body))
			req.Header.Set("Content-Type", r.ctype)
			resp, err := pc.Do(req)
			if err != nil {
				counts["connection error"]++
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took := time.Since(t0)
			counts[strconv.Itoa(resp.StatusCode)]++
			all = append(all, took)
			if resp.StatusCode == 503 {
				busy = append(busy, took)
			}
		}
		done <- fmt.Sprintf("one client beside them, a request every 100 ms: answers %v, p50 %s, slowest %s, slowest 503 %s",
			counts, pct(all, 0.5).Round(time.Millisecond), pct(all, 1).Round(time.Millisecond), pct(busy, 1).Round(time.Millisecond))
	}()
	return func() string { return <-done }
}

func runSoak(d *daemon, fit func(i int) request, rate float64, soak time.Duration) error {
	// /v1/process takes its services as a form field beside the image.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("services", "face-detector-face-fitter,age-estimator,quality-assessment-estimator")
	w, _ := mw.CreateFormFile("image", "i.jpg")
	w.Write(extractImage(fit(0)))
	mw.Close()
	others := []request{
		{url: d.base + "/healthz"},
		{url: d.base + "/v1/process", ctype: mw.FormDataContentType(), body: buf.Bytes()},
	}
	var (
		samples []float64
		next    = time.Now().Add(time.Minute)
		bad     atomic.Int64
	)
	fmt.Printf("soak: %.1f req/s of fitter, /v1/process and /healthz for %s\n", rate, soak)
	results := offer(func(i int) request {
		if i%3 == 0 {
			return fit(i / 3)
		}
		return others[i%3-1]
	}, rate, 200, soak, func() {
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
