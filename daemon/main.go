// Command imageapid is the daemon: it loads the configuration and the models,
// builds the Image API services, serves them over HTTP, watches the configured
// cameras and publishes what they see over MQTT, until SIGTERM.
//
//	imageapid -config /etc/imageapid/imageapid.yaml
//	imageapid check-config -config FILE   (checks the config and the models, starts nothing)
//	imageapid token new                   (prints a new access token and its sha256)
//
// Signals: SIGTERM/SIGINT stop within 5 s (in-flight requests finish, the MQTT
// outbox is flushed as far as the broker allows); SIGHUP reloads the camera
// list, the tokens and the TLS certificate without a restart.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"imageapid/daemon/admission"
	"imageapid/daemon/api"
	"imageapid/daemon/auth"
	"imageapid/daemon/config"
	"imageapid/daemon/metrics"
	"imageapid/daemon/mqtt"
	"imageapid/daemon/sdnotify"
	"imageapid/daemon/tlscert"
	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facecache"
	"imageapid/models"
	"imageapid/sessions"
	"imageapid/ui"
	"imageapid/watchlist"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "token" {
		os.Exit(tokenCommand(args[1:]))
	}
	checkOnly := len(args) > 0 && args[0] == "check-config"
	if checkOnly {
		args = args[1:]
	}
	fs := flag.NewFlagSet("imageapid", flag.ExitOnError)
	configPath := fs.String("config", "/etc/imageapid/imageapid.yaml", "configuration file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Parse(args)
	if *showVersion {
		fmt.Println("imageapid", version)
		return
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imageapid:", err)
		os.Exit(2)
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, *configPath, log, checkOnly); err != nil {
		log.Error("imageapid stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// app is the request side, built from one configuration: models, the face
// pipeline and the Image API services.
type app struct {
	runtime    *models.Runtime
	faces      *face.Pipeline
	estimators []estimators.Estimator
	metrics    *metrics.Metrics
	// liveness analyses kiosk session frames.
	liveness *sessions.Analyzer
	// lists are the watchlists (nil when disabled), opened by serve.
	lists *watchlist.Service
}

func build(cfg config.Config, log *slog.Logger) (*app, error) {
	manifest, err := models.LoadManifest(cfg.Models.Manifest)
	if err != nil {
		return nil, err
	}
	met := metrics.New()
	opts := cfg.Models.RuntimeOptions()
	opts.ObserveInvoke = met.ObserveInference
	rt, err := models.NewRuntime(manifest, opts, log)
	if err != nil {
		return nil, err
	}
	faces, err := face.New(rt, cfg.Face)
	if err != nil {
		rt.Close()
		return nil, fmt.Errorf("face pipeline: %w", err)
	}
	faceCache, err := facecache.New(cfg.FaceCache)
	if err != nil {
		rt.Close()
		return nil, err
	}
	ests, err := estimators.Build(estimators.Deps{
		Models:    rt,
		Faces:     faces,
		FaceCache: faceCache,
		Settings:  cfg.EstimatorSettings,
		Log:       log,
	}, cfg.Services)
	if err != nil {
		rt.Close()
		return nil, err
	}
	liveness, err := loadSessionAnalyzer(cfg, rt, faces)
	if err != nil {
		rt.Close()
		return nil, err
	}
	met.SetModels(rt.Loaded())
	return &app{liveness: liveness, runtime: rt, faces: faces, estimators: ests, metrics: met}, nil
}

// tokenCommand is `imageapid token new`: a random token and the two ways
// of configuring it.
func tokenCommand(args []string) int {
	if len(args) != 1 || args[0] != "new" {
		fmt.Fprintln(os.Stderr, "usage: imageapid token new")
		return 2
	}
	token, hash, err := auth.NewToken()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imageapid:", err)
		return 1
	}
	fmt.Printf("token:  %s\nsha256: %s\n\n", token, hash)
	fmt.Printf("Either add the line \"%s api admin\" (keep the scopes it needs) to the file named by\n"+
		"http.auth.token_file (mode 0600), or put the hash in the config:\n\n"+
		"http:\n  auth:\n    tokens:\n      - sha256: %s\n        scopes: [api, admin]\n\n"+
		"Clients send it as: Authorization: Bearer %s\n", token, hash, token)
	return 0
}

func run(ctx context.Context, cfg config.Config, configPath string, log *slog.Logger, checkOnly bool) error {
	if os.Getenv("LISTEN_FDS") == "" {
		// Before the models load: an exposed address without tokens fails fast.
		if _, err := auth.New(cfg.HTTP.Auth, cfg.HTTP.Listen, false, slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
	}
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	defer a.runtime.Close()
	if checkOnly {
		for name, delegate := range a.runtime.Loaded() {
			fmt.Printf("model %-28s delegate %s\n", name, delegate)
		}
		b := newAnalysisBuilder(a.faces, a.estimators)
		for _, c := range cfg.Cameras {
			if err := b.check(c); err != nil {
				return err
			}
		}
		fmt.Printf("config OK: %d services, %d cameras\n", len(a.estimators), len(cfg.Cameras))
		return nil
	}
	ln, err := sdnotify.ActivatedListener("http")
	if err != nil {
		return err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	} else {
		log.Info("using the socket-activated listener", "addr", ln.Addr().String())
	}
	return serve(ctx, a, cfg, configPath, log, ln)
}

// serve runs the HTTP API on ln and the cameras until ctx ends, reloading the
// cameras on SIGHUP, then stops everything within the shutdown budget.
func serve(ctx context.Context, a *app, cfg config.Config, configPath string, log *slog.Logger, ln net.Listener) error {
	notifier := sdnotify.New(log)
	var certs *tlscert.Reloader
	if cfg.HTTP.CertFile != "" {
		var err error
		if certs, err = tlscert.Load(cfg.HTTP.CertFile, cfg.HTTP.KeyFile); err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, certs.Config())
	}
	guard, err := auth.New(cfg.HTTP.Auth, ln.Addr().String(), certs != nil, log)
	if err != nil {
		ln.Close()
		return err
	}
	// The publisher's context outlives ctx: cancelling it would drop the
	// outbox flush that shutdown wants.
	bg, cancelBG := context.WithCancel(context.Background())
	defer cancelBG()
	lists, err := openWatchlists(ctx, cfg, a, log)
	if err != nil {
		ln.Close()
		return err
	}
	if lists != nil {
		defer lists.Close()
		go lists.Run(bg)
	}
	a.lists = lists
	ap, err := startAppliance(bg, cfg, a, log)
	if err != nil {
		ln.Close()
		return err
	}
	mqttStats := func() mqtt.Stats { return mqtt.Stats{} }
	if ap.pub != nil {
		mqttStats = ap.pub.Stats
	}
	if err := a.metrics.Register(metrics.Appliance{Cameras: ap.cameras.Stats, MQTT: mqttStats}); err != nil {
		log.Warn("register appliance metrics", "err", err)
	}
	kiosk, err := sessions.NewManager(cfg.Sessions, a.liveness, livenessSink{pub: ap.pub}, ap, log)
	if err != nil {
		ap.close(context.Background())
		ln.Close()
		return err
	}
	go kiosk.Run(bg)
	kiosk.SetTokenIssuer(guard.SessionToken)
	kioskRoutes := kiosk.Handler(cfg.HTTP.RequestTimeout)
	webUI := ui.Handler() // the embedded pages: the console at /, /kiosk, assets under /ui/
	srv := api.New(api.Config{
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		MaxPixels:      cfg.HTTP.MaxPixels,
		MaxObjects:     cfg.HTTP.MaxObjects,
		MaxConcurrent:  cfg.HTTP.MaxConcurrent,
		RequestTimeout: cfg.HTTP.RequestTimeout,
		MaxQueue:       cfg.HTTP.MaxQueue,
		QueueTimeout:   cfg.HTTP.QueueTimeout,
	}, log, withIdentifier(a.estimators, lists, cfg),
		api.WithVersion(version),
		api.WithObserver(a.metrics.ObserveRequest),
		api.WithHandler("/metrics", a.metrics.Handler()),
		api.WithHandler("/cameras", http.HandlerFunc(ap.serveCameras)),
		api.WithHandler("/kiosk", webUI),
		api.WithHandler(sessions.Prefix, kioskRoutes),
		api.WithPrefixHandler(sessions.Prefix+"/", kioskRoutes),
		api.WithPrefixHandler(ui.StreamPrefix, ui.StreamHandler(ap, previewOptions(ap))),
		api.WithOpenAPIPaths(sessions.OpenAPIPaths()),
		api.WithOpenAPIPaths(ui.OpenAPIPaths()),
		api.WithPrefixHandler(ui.AssetPrefix, webUI),
		// The console: its page, the live events, what is in view, the system page's data.
		api.WithHandler("/", webUI),
		api.WithHandler(ui.EventsPath, ap.events),
		api.WithHandler(ui.InViewPath, ap.inView),
		api.WithHandler(ui.SystemPath, ui.SystemHandler(systemInfo(a, ap, cfg, time.Now()))),
		api.WithOpenAPIPaths(ui.ConsoleOpenAPIPaths()),
		api.WithPrefixHandler(watchlist.Prefix, watchlistRoutes(lists, cfg)),
		api.WithHandler(ui.WatchlistsPage, watchlistPage(lists, webUI, cfg)),
		api.WithOpenAPIPaths(watchlistPaths(lists)),
	)
	// No server-wide ReadTimeout: it would run while a request waits for a
	// slot and cut its body off; admission.Bodies starts each body's read
	// timeout at its first read instead. Bodies reserve budget only when
	// read, so unauthorized requests take none; their unread bodies are
	// drained like any other, so that the 401 reaches the client.
	handler := admission.Bodies(admission.BodyLimits{
		Budget:      admission.NewBudget(cfg.HTTP.MaxInflightBytes),
		Reserve:     max(cfg.HTTP.MaxBodyBytes, cfg.Sessions.MaxFrameBytes*2),
		Wait:        cfg.HTTP.QueueTimeout,
		ReadTimeout: cfg.HTTP.RequestTimeout,
	}, guard.Wrap(srv))
	httpServer := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	httpServer.RegisterOnShutdown(ap.events.Close) // open event streams end at shutdown
	// Ready before serving: the listener is bound and the models are
	// loaded, so the first request answered must not see "starting".
	srv.SetReady(func() map[string]any { return map[string]any{"models": a.runtime.Loaded()} })
	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	addr := ln.Addr().String()
	log.Info("imageapid ready", "version", version, "listen", addr, "services", len(a.estimators),
		"cameras", len(cfg.Cameras), "models", a.runtime.Loaded())
	notifier.Ready(statusLine(ap))

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	check := newSelfCheck(addr, certs != nil)
	go notifier.RunWatchdog(wctx, func() error {
		if err := check.probe(wctx); err != nil {
			return err
		}
		return ap.stalled(cfg.WatchdogStall)
	})
	go statusLoop(wctx, notifier, ap)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for running := true; running; {
		select {
		case err := <-errc:
			ap.close(context.Background())
			return fmt.Errorf("http server: %w", err)
		case <-hup:
			if certs != nil {
				if err := certs.Reload(); err != nil {
					log.Error("reload: TLS certificate rejected, keeping the running one", "err", err)
				} else {
					log.Info("reloaded the TLS certificate")
				}
			}
			reload(ctx, configPath, ap, guard, notifier, log)
		case <-ctx.Done():
			running = false
		}
	}

	// Shutdown budget: systemd and the tests expect the process gone within 5 s.
	log.Info("shutting down")
	notifier.Stopping()
	stopWatch()
	deadline := time.Now().Add(cfg.HTTP.ShutdownGrace)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpServer.Shutdown(sctx) }()
	apErr := ap.close(sctx)
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if apErr != nil {
		log.Warn("appliance shutdown", "err", apErr)
	}
	return nil
}

// reload re-reads the config file and applies its camera list and its
// tokens; other settings need a restart and are left as they are.
func reload(ctx context.Context, path string, ap *appliance, guard *auth.Guard, n *sdnotify.Notifier, log *slog.Logger) {
	n.Reloading()
	defer n.Ready(statusLine(ap))
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("reload: config rejected, keeping the running one", "err", err)
		return
	}
	if err := guard.Reload(cfg.HTTP.Auth); err != nil {
		log.Error("reload: tokens rejected, keeping the running ones", "err", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ap.apply(rctx, cfg.Cameras); err != nil {
		log.Error("reload: cameras", "err", err)
		return
	}
	log.Info("reloaded", "cameras", len(cfg.Cameras))
}

// selfCheck is the watchdog's probe of the daemon's own /healthz, over
// TLS when the server speaks it (the certificate is the daemon's own, for
// whatever name; only the answer matters).
type selfCheck struct {
	url    string
	client *http.Client
}

func newSelfCheck(addr string, useTLS bool) selfCheck {
	if !useTLS {
		return selfCheck{url: "http://" + addr + "/healthz", client: http.DefaultClient}
	}
	return selfCheck{url: "https://" + addr + "/healthz", client: &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // our own listener
	}}}
}

func (c selfCheck) probe(ctx context.Context) error {
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(hctx, http.MethodGet, c.url, nil)
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("http self-check: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("http self-check: status %d", resp.StatusCode)
	}
	return nil
}

func statusLine(ap *appliance) string {
	connected, fps := 0, 0.0
	states := ap.cameras.States()
	for _, st := range states {
		if st.Connected {
			connected++
		}
		fps += st.FPS
	}
	line := fmt.Sprintf("serving; cameras %d/%d connected, %.1f fps", connected, len(states), fps)
	if ap.pub != nil {
		s := ap.pub.Stats()
		line += fmt.Sprintf("; mqtt connected=%t queued=%d delivered=%d", s.Connected, s.QueueDepth, s.Delivered)
	}
	return line
}

func statusLoop(ctx context.Context, n *sdnotify.Notifier, ap *appliance) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.Status(statusLine(ap))
		}
	}
}
