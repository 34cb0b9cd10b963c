package camera

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

// rtspServer is a small RTSP camera on a loopback port: it answers
// OPTIONS, DESCRIBE, SETUP (RTP over the RTSP connection, interleaved, as
// OpenCV asks for), PLAY and TEARDOWN. While it listens, a real ffmpeg
// encodes a test pattern to RTP/JPEG (RFC 2435) on a local UDP port, and
// the server relays the packets into each playing client's connection.
type rtspServer struct {
	t       *testing.T
	ffmpeg  string
	port    int
	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	playing map[net.Conn]func([]byte) error
	cmd     *exec.Cmd
	wg      sync.WaitGroup
}

func newRTSPServer(t *testing.T) *rtspServer {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg is not installed (make deps installs it)")
	}
	s := &rtspServer{t: t, ffmpeg: bin, port: testenv.FreePort(t)}
	t.Cleanup(s.stop)
	return s
}

func (s *rtspServer) url() string { return fmt.Sprintf("rtsp://127.0.0.1:%d/stream", s.port) }

// start listens on the server's port (the same one each time).
func (s *rtspServer) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.ln, s.conns, s.playing = ln, map[net.Conn]struct{}{}, map[net.Conn]func([]byte) error{}
	s.mu.Unlock()
	s.encode()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
}

// stop closes the port, every connection and every ffmpeg, like a camera
// losing power.
func (s *rtspServer) stop() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd = nil
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *rtspServer) serve(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.playing, c)
		s.mu.Unlock()
		c.Close()
	}()
	var wmu sync.Mutex // replies and relayed packets share the connection
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Write(b)
		return err
	}
	br := bufio.NewReader(c)
	tp := textproto.NewReader(br)
	play := false
	for {
		if b, err := br.Peek(1); err != nil {
			return
		} else if b[0] == '$' { // the client's RTCP, interleaved: skip it
			var h [4]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return
			}
			if _, err := br.Discard(int(binary.BigEndian.Uint16(h[2:]))); err != nil {
				return
			}
			continue
		}
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		hdr, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		if n, _ := strconv.Atoi(hdr.Get("Content-Length")); n > 0 {
			br.Discard(n)
		}
		method, _, _ := strings.Cut(line, " ")
		reply := "RTSP/1.0 200 OK\r\nCSeq: " + hdr.Get("Cseq") + "\r\n"
		var body string
		switch method {
		case "OPTIONS":
			reply += "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
		case "DESCRIBE":
			body = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
				"m=video 0 RTP/AVP 26\r\na=control:track1\r\n"
			reply += "Content-Base: " + s.url() + "/\r\nContent-Type: application/sdp\r\n"
		case "SETUP":
			if !strings.Contains(hdr.Get("Transport"), "RTP/AVP/TCP") {
				reply = "RTSP/1.0 461 Unsupported Transport\r\nCSeq: " + hdr.Get("Cseq") + "\r\n"
				break
			}
			reply += "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678\r\n"
		case "PLAY":
			reply += "Session: 12345678\r\nRange: npt=0.000-\r\n"
			play = true
		case "GET_PARAMETER":
			reply += "Session: 12345678\r\n"
		case "TEARDOWN":
			write([]byte(reply + "\r\n"))
			return
		default:
			reply = "RTSP/1.0 405 Method Not Allowed\r\nCSeq: " + hdr.Get("Cseq") + "\r\n"
		}
		if body != "" {
			reply += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
		}
		if err := write([]byte(reply + "\r\n" + body)); err != nil {
			return
		}
		if play {
			play = false
			s.mu.Lock()
			s.playing[c] = write
			s.mu.Unlock()
		}
	}
}

// encode starts the camera's encoder: an ffmpeg sending a 25 frames/s
// test pattern as RTP/JPEG to a UDP port of ours; each packet goes to every
// playing client as interleaved channel 0.
func (s *rtspServer) encode() {
	s.t.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	port := udp.LocalAddr().(*net.UDPAddr).Port
	// RFC 2435 wants the standard Huffman tables and both quantization tables.
	cmd := exec.Command(s.ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-an",
		"-c:v", "mjpeg", "-huffman", "default", "-force_duplicated_matrix", "1", "-pix_fmt", "yuvj420p",
		"-f", "rtp", fmt.Sprintf("rtp://127.0.0.1:%d?rtcpport=%d", port, port))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		udp.Close()
		s.t.Fatal(err)
	}
	s.cmd = cmd
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer udp.Close()
		go func() { cmd.Wait(); udp.Close() }()
		buf := make([]byte, 64<<10)
		for {
			n, _, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 2 || buf[1]&0x7f >= 72 && buf[1]&0x7f <= 76 {
				continue // RTCP (sender reports): not relayed
			}
			frame := append([]byte{'$', 0, byte(n >> 8), byte(n)}, buf[:n]...)
			s.mu.Lock()
			for _, write := range s.playing {
				write(frame)
			}
			s.mu.Unlock()
		}
	}()
}

// An RTSP camera whose port is not listening yet when the camera starts,
// then stops and comes back: reading frames again within 5 s of the port
// listening each time.
func TestRTSPCameraReconnectsWhenThePortListens(t *testing.T) {
	t.Parallel() // mostly waiting: it overlaps the other reconnection test
	srv := newRTSPServer(t)
	c, err := StartCamera(Config{ID: "rtspcam", URL: srv.url(), MaxFPS: 10}, Analysis{}, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer stopCamera(t, c)
	for round, down := range []time.Duration{6 * time.Second, 8 * time.Second} {
		waitFor(t, 10*time.Second, "the camera to report the lost stream", func() bool {
			s := c.State()
			return !s.Connected && s.Status == StatusReconnecting && s.LastError != ""
		})
		time.Sleep(down) // long enough for the backoff to reach its cap
		srv.start()
		took := waitFor(t, 15*time.Second, "the camera to read frames again", func() bool { return c.State().Connected })
		n := c.Stats().FramesCaptured
		waitFor(t, 10*time.Second, "frames after reconnecting", func() bool { return c.Stats().FramesCaptured > n+5 })
		t.Logf("round %d: down %v, connected %v after the port listened", round, down, took.Round(10*time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("round %d: reconnecting took %v after the port listened, want within 5 s", round, took)
		}
		srv.stop()
	}
}
