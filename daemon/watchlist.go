package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"

	"imageapid/daemon/config"
	"imageapid/estimators"
	"imageapid/estimators/facetemplate"
	"imageapid/ui"
	"imageapid/watchlist"
)

// openWatchlists opens the watchlist database and loads its lists, with the
// template network the template extractor is configured with (so enrolled
// templates and the calibration table are the extractor's). It returns nil
// when watchlists are disabled.
func openWatchlists(ctx context.Context, cfg config.Config, a *app, log *slog.Logger) (*watchlist.Service, error) {
	wc := cfg.Watchlist
	if !wc.Enabled {
		return nil, nil
	}
	set := estimators.TemplateSettings{Network: facetemplate.DefaultNetwork}
	if err := cfg.EstimatorSettings("face-detector-template-extractor", &set); err != nil {
		return nil, fmt.Errorf("watchlist: template settings: %w", err)
	}
	emb, err := facetemplate.NewEmbedder(a.runtime, set.Network, set.Flip)
	if err != nil {
		return nil, fmt.Errorf("watchlist: %w", err)
	}
	cal, err := facetemplate.LoadCalibration(set.Network, set.Flip)
	if err != nil {
		return nil, fmt.Errorf("watchlist: %w", err)
	}
	var key []byte
	if wc.EncryptionKeyFile != "" {
		if key, err = watchlist.LoadKey(wc.EncryptionKeyFile); err != nil {
			return nil, err
		}
	}
	path := wc.DB
	if path == "" {
		path = filepath.Join(cfg.ResolvedStateDir(), "watchlists.db")
	}
	store, err := watchlist.OpenStore(ctx, path, key)
	if err != nil {
		return nil, err
	}
	svc, err := watchlist.New(ctx, store, cal, watchlist.NewPipelineExtractor(a.faces, emb), wc, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	return svc, nil
}

// watchlistRoutes serves /v1/watchlists, or says they are disabled.
func watchlistRoutes(lists *watchlist.Service, cfg config.Config) http.Handler {
	if lists == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"detail": "watchlists are disabled (watchlist.enabled is false)"}`+"\n")
		})
	}
	return lists.Handler(watchlist.RouteLimits{MaxBodyBytes: cfg.HTTP.MaxBodyBytes, MaxPixels: cfg.HTTP.MaxPixels,
		RequestTimeout: cfg.HTTP.RequestTimeout, ImageWorkers: cfg.HTTP.MaxConcurrent})
}

func watchlistPaths(lists *watchlist.Service) map[string]any {
	if lists == nil {
		return nil
	}
	paths := watchlist.OpenAPIPaths()
	maps.Copy(paths, ui.WatchlistsOpenAPIPaths())
	return paths
}

// watchlistPage serves the watchlist page from pages (the ui handler) while
// watchlists are enabled; disabled, it is the same 404 as their API, so the
// console does not link it.
func watchlistPage(lists *watchlist.Service, pages http.Handler, cfg config.Config) http.Handler {
	if lists == nil {
		return watchlistRoutes(nil, cfg)
	}
	return pages
}

// withIdentifier adds the face-identifier service when watchlists are on.
func withIdentifier(ests []estimators.Estimator, lists *watchlist.Service, cfg config.Config) []estimators.Estimator {
	if lists == nil {
		return ests
	}
	return append(ests[:len(ests):len(ests)], lists.FaceIdentifier(cfg.Watchlist.IdentifierList))
}
