// Package sdnotify owns the daemon's conversation with systemd: readiness,
// status, reload and stop notifications (sd_notify), the watchdog that is
// fed only while every pipeline makes progress, and the socket-activated HTTP
// listener. Outside systemd (NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS unset)
// everything here is a no-op.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to systemd.
type Notifier struct {
	logger *slog.Logger
}

// New returns a Notifier; logger nil means slog.Default().
func New(logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.Default()
	}
	return &Notifier{logger: logger.With("component", "sdnotify")}
}

func (n *Notifier) notify(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sd_notify %s: %w", strings.SplitN(state, "\n", 2)[0], err)
	}
	return nil
}

// oneLine keeps a status from breaking the newline-separated protocol.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// Ready says the service is up (READY=1), with a status line for
// `systemctl status`. Also call it when a reload has finished.
func (n *Notifier) Ready(status string) error {
	return n.notify("READY=1\nSTATUS=" + oneLine(status))
}

// Status updates the status line.
func (n *Notifier) Status(status string) error {
	return n.notify("STATUS=" + oneLine(status))
}

// Reloading says a configuration reload started; follow it with Ready.
func (n *Notifier) Reloading() error {
	return n.notify("RELOADING=1\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=reloading")
}

// Stopping says shutdown started.
func (n *Notifier) Stopping() error {
	return n.notify("STOPPING=1\nSTATUS=stopping")
}

// WatchdogInterval is how often RunWatchdog pings: half of WATCHDOG_USEC, or
// 0 when systemd does not watch this process.
func WatchdogInterval() (time.Duration, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("watchdog: %w", err)
	}
	return d / 2, nil
}

// RunWatchdog pings systemd's watchdog (WATCHDOG=1) every WatchdogInterval
// while healthy returns nil, until ctx ends. healthy must answer quickly; it
// should fail when some pipeline has made no progress for too long. While it
// fails, pings stop and the status line says why, so systemd kills and
// restarts a stalled daemon after WatchdogSec. Returns at once when the
// watchdog is off.
func (n *Notifier) RunWatchdog(ctx context.Context, healthy func() error) error {
	interval, err := WatchdogInterval()
	if err != nil {
		return err
	}
	if interval <= 0 {
		return nil
	}
	n.logger.Info("systemd watchdog on", "ping_every", interval)
	t := time.NewTicker(interval)
	defer t.Stop()
	stalled := false
	for {
		if err := healthy(); err != nil {
			if !stalled {
				n.logger.Error("watchdog pings withheld: a pipeline stalled; systemd will restart the service", "err", err)
				if serr := n.Status("stalled: " + err.Error()); serr != nil {
					n.logger.Warn("sd_notify status", "err", serr)
				}
			}
			stalled = true
		} else {
			if stalled {
				n.logger.Info("pipelines progressing again; watchdog pings resumed")
				if serr := n.Status("running"); serr != nil {
					n.logger.Warn("sd_notify status", "err", serr)
				}
			}
			stalled = false
			if err := n.notify("WATCHDOG=1"); err != nil {
				n.logger.Warn("watchdog ping", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ActivatedListener returns the stream listener systemd passed under name
// (FileDescriptorName=), else the first one passed, else nil when the process
// was not socket-activated, so the caller opens its own. Other passed
// listeners are closed. Call it once: it clears LISTEN_* from the environment.
func ActivatedListener(name string) (net.Listener, error) {
	type passed struct {
		name string
		ln   net.Listener
	}
	var all []passed
	var errs []error
	for _, f := range activation.Files(true) {
		ln, err := net.FileListener(f)
		f.Close() // FileListener made its own copy of the descriptor
		if err != nil {
			errs = append(errs, fmt.Errorf("socket activation fd %q: %w", f.Name(), err))
			continue
		}
		all = append(all, passed{f.Name(), ln})
	}
	if len(all) == 0 {
		return nil, errors.Join(errs...)
	}
	pick := 0
	for i, p := range all {
		if p.name == name {
			pick = i
			break
		}
	}
	for i, p := range all {
		if i != pick {
			p.ln.Close()
		}
	}
	return all[pick].ln, nil
}
