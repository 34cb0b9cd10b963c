package camera

import (
	"context"
	"fmt"
	"os"
	"time"

	"gocv.io/x/gocv"
)

// fileCheckInterval is how often a playing file is checked for removal:
// a deleted file stays readable through its open descriptor, so without the
// check a looping camera would notice only at the end of the loop.
const fileCheckInterval = time.Second

// captureLoop opens the source, reads it and reopens it with backoff until
// ctx ends or a file played once ends.
func (c *Camera) captureLoop(ctx context.Context) {
	backoff := c.cfg.Reconnect.Min
	failed := false // the last attempt failed: the next open is a reconnection
	for ctx.Err() == nil {
		c.captureProgress.Store(time.Now().UnixNano())
		if failed {
			c.reconnects.Add(1)
		}
		failed = true
		vc, err := c.src.open()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("camera source failed", "source", c.src.String(), "err", err, "retry_in", backoff)
			c.setStatus(StatusReconnecting, err)
			c.captureProgress.Store(time.Now().UnixNano())
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, c.cfg.Reconnect.Max)
			continue
		}
		frames, err := c.readLoop(ctx, vc)
		vc.Close()
		c.captureFPS.reset()
		if ctx.Err() != nil {
			return
		}
		if frames > 0 {
			backoff = c.cfg.Reconnect.Min
		}
		if err == errEndOfFile && frames > 0 {
			if !c.src.Loop {
				c.log.Info("camera file ended", "source", c.src.String(), "frames", frames)
				c.captureIdle.Store(true)
				c.setStatus(StatusEnded, nil)
				return
			}
			failed = false
			continue // replay at once
		}
		if err == errEndOfFile {
			err = fmt.Errorf("read %s: no frame could be decoded", c.src)
		}
		c.log.Warn("camera source failed", "source", c.src.String(), "err", err, "retry_in", backoff)
		c.setStatus(StatusReconnecting, err)
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, c.cfg.Reconnect.Max)
	}
}

// readLoop reads frames into the slot until the source fails or ends (a
// file's end returns errEndOfFile) or ctx ends. It returns the frames read.
func (c *Camera) readLoop(ctx context.Context, vc *gocv.VideoCapture) (int, error) {
	isFile := c.src.Kind == SourceFile
	var interval time.Duration // between reads, for paced files
	if isFile {
		switch {
		case c.src.Live:
			fps := vc.Get(gocv.VideoCaptureFPS)
			if fps <= 0 || fps > 1000 {
				fps = 25
			}
			interval = time.Duration(float64(time.Second) / fps)
		case c.cfg.MaxFPS > 0:
			interval = time.Duration(float64(time.Second) / c.cfg.MaxFPS)
		}
	}
	var gap time.Duration // between analysed frames, for the cap on live sources
	if c.cfg.MaxFPS > 0 && c.src.Live {
		gap = time.Duration(float64(time.Second) / c.cfg.MaxFPS)
	}
	start := time.Now()
	nextCheck := start.Add(fileCheckInterval)
	var nextDue time.Time
	frames := 0
	for {
		now := time.Now()
		c.captureProgress.Store(now.UnixNano())
		if ctx.Err() != nil {
			return frames, ctx.Err()
		}
		if isFile && now.After(nextCheck) {
			nextCheck = now.Add(fileCheckInterval)
			if _, err := os.Stat(c.src.Target); err != nil {
				return frames, fmt.Errorf("read %s: %w", c.src, err)
			}
		}
		if interval > 0 {
			due := start.Add(time.Duration(frames) * interval)
			if due.Before(now.Add(-time.Second)) {
				// Far behind (a slow disk, a suspended process): do not burst to catch up.
				start, frames = now, 0
			} else if !sleepCtx(ctx, due.Sub(now)) {
				return frames, ctx.Err()
			}
		}
		f := c.slot.fresh()
		if !vc.Read(&f.mat) || f.mat.Empty() {
			c.slot.recycle(f)
			if isFile {
				return frames, errEndOfFile
			}
			return frames, fmt.Errorf("read %s: the stream ended or broke", c.src)
		}
		frames++
		read := time.Now()
		c.captured.Add(1)
		c.captureFPS.tick(read)
		if frames == 1 {
			c.setStatus(StatusConnected, nil)
		}
		if gap > 0 {
			// A quarter-gap tolerance keeps timing jitter from skipping a frame that is due.
			if read.Before(nextDue.Add(-gap / 4)) {
				c.skipped.Add(1)
				c.slot.recycle(f)
				continue
			}
			nextDue = nextDue.Add(gap)
			if nextDue.Before(read) {
				nextDue = read.Add(gap)
			}
		}
		f.seq = uint64(frames)
		f.time = read
		if err := c.slot.put(ctx, f, !c.src.Live); err != nil {
			return frames, err
		}
	}
}
