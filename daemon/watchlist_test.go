package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

// TestWatchlistSurvivesRestart enrols a person in the running daemon,
// restarts it on the same state directory and finds them again; then a
// corrupted database file stops the daemon with an error naming it.
func TestWatchlistSurvivesRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Watchlist.IdentifierList = "door"
	astronaut := testenv.ReadFixture(t, "astronaut.png")
	addr, stop := startDaemon(t, cfg)
	base := "http://" + addr + "/v1/watchlists/door"
	waitReady(t, "http://"+addr)
	resp, err := http.Post(base+"/persons", "application/json", strings.NewReader(`{"name": "Eileen"}`))
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != 201 || p.ID == "" {
		t.Fatalf("create person: %d", resp.StatusCode)
	}
	if code, body := testenv.PostImage(t, base+"/persons/"+p.ID+"/faces", astronaut, nil); code != 201 {
		t.Fatalf("enrol: %d %s", code, body)
	}
	stop()

	addr, stop = startDaemon(t, cfg)
	waitReady(t, "http://"+addr)
	code, body := testenv.PostImage(t, "http://"+addr+"/v1/watchlists/door/search", astronaut, nil)
	if code != 200 || !strings.Contains(string(body), p.ID) {
		t.Fatalf("search after restart: %d %s", code, body)
	}
	// The Image API service face-identifier answers from the same list.
	code, body = testenv.PostImage(t, "http://"+addr+"/face-identifier/process/image", astronaut, nil)
	var res struct {
		Objects []struct {
			Class    string
			Identity *struct {
				PersonID string `json:"person_id"`
				Name     string
			}
		}
	}
	json.Unmarshal(body, &res)
	if code != 200 || len(res.Objects) != 1 || res.Objects[0].Identity == nil || res.Objects[0].Identity.PersonID != p.ID {
		t.Fatalf("face-identifier: %d %s", code, body)
	}
	code, body = testenv.PostImage(t, "http://"+addr+"/face-identifier/process/image", testenv.ReadFixture(t, "coffee.png"), nil)
	if code != 200 || strings.Contains(string(body), "identity") {
		t.Fatalf("face-identifier without a face: %d %s", code, body)
	}
	stop()

	db := filepath.Join(cfg.StateDir, "watchlists.db")
	os.Remove(db + "-wal")
	os.Remove(db + "-shm")
	os.WriteFile(db, []byte(strings.Repeat("this is no database ", 300)), 0o600)
	a, err := build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.runtime.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = serve(ctx, a, cfg, "", slog.New(slog.DiscardHandler), ln)
	if err == nil || !strings.Contains(err.Error(), db) {
		t.Fatalf("serve on a corrupted watchlist database: %v; want an error naming %s", err, db)
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "the daemon to answer", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
