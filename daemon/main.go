// Command imageapid is the daemon: it loads the configuration and the models,
// builds the Image API services and serves them over HTTP until SIGTERM.
//
//	imageapid -config /etc/imageapid/imageapid.yaml
//	imageapid check-config -config FILE   (checks the config and the models, starts nothing)
package main

import (
	"context"
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

	"imageapid/daemon/api"
	"imageapid/daemon/config"
	"imageapid/daemon/metrics"
	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/models"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	args := os.Args[1:]
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
	if err := run(ctx, cfg, log, checkOnly); err != nil {
		log.Error("imageapid stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// app is everything the daemon runs, built from one configuration.
type app struct {
	runtime    *models.Runtime
	estimators []estimators.Estimator
	metrics    *metrics.Metrics
}

func build(cfg config.Config, log *slog.Logger) (*app, error) {
	manifest, err := models.LoadManifest(cfg.Models.Manifest)
	if err != nil {
		return nil, err
	}
	met := metrics.New()
	rt, err := models.NewRuntime(manifest, models.Options{
		Dir:           cfg.Models.Dir,
		Delegate:      cfg.Models.Delegate,
		Threads:       cfg.Models.Threads,
		Pool:          cfg.Models.Interpreters,
		PerModel:      cfg.Models.PerModel,
		ObserveInvoke: met.ObserveInference,
	}, log)
	if err != nil {
		return nil, err
	}
	faces, err := face.New(rt, cfg.Face)
	if err != nil {
		rt.Close()
		return nil, fmt.Errorf("face pipeline: %w", err)
	}
	ests, err := estimators.Build(estimators.Deps{
		Models:   rt,
		Faces:    faces,
		Settings: cfg.EstimatorSettings,
		Log:      log,
	}, cfg.Services)
	if err != nil {
		rt.Close()
		return nil, err
	}
	met.SetModels(rt.Loaded())
	return &app{runtime: rt, estimators: ests, metrics: met}, nil
}

func run(ctx context.Context, cfg config.Config, log *slog.Logger, checkOnly bool) error {
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	defer a.runtime.Close()
	if checkOnly {
		for name, delegate := range a.runtime.Loaded() {
			fmt.Printf("model %-28s delegate %s\n", name, delegate)
		}
		fmt.Printf("config OK: %d services\n", len(a.estimators))
		return nil
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, a, cfg, log, ln)
}

// serve answers HTTP on ln until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, a *app, cfg config.Config, log *slog.Logger, ln net.Listener) error {
	srv := api.New(api.Config{
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		MaxPixels:      cfg.HTTP.MaxPixels,
		MaxObjects:     cfg.HTTP.MaxObjects,
		MaxConcurrent:  cfg.HTTP.MaxConcurrent,
		RequestTimeout: cfg.HTTP.RequestTimeout,
	}, log, a.estimators,
		api.WithVersion(version),
		api.WithObserver(a.metrics.ObserveRequest),
		api.WithHandler("/metrics", a.metrics.Handler()),
	)
	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.HTTP.RequestTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	srv.SetReady(func() map[string]any { return map[string]any{"models": a.runtime.Loaded()} })
	log.Info("imageapid ready", "version", version, "listen", ln.Addr().String(), "services", len(a.estimators))

	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownGrace)
	defer cancel()
	if err := httpServer.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
