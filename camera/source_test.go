package camera

import "testing"

func TestParseSource(t *testing.T) {
	cases := []struct {
		url  string
		loop bool
		want Source
	}{
		{"/dev/video0", false, Source{Kind: SourceV4L2, Target: "/dev/video0", Live: true}},
		{"2", false, Source{Kind: SourceV4L2, Device: 2, Live: true}},
		{"v4l2://1", false, Source{Kind: SourceV4L2, Device: 1, Live: true}},
		{"v4l2:///dev/video3", false, Source{Kind: SourceV4L2, Target: "/dev/video3", Live: true}},
		{"/data/hall.avi", true, Source{Kind: SourceFile, Target: "/data/hall.avi", Loop: true, Live: true}},
		{"file:///data/hall.avi?loop=true&live=false", false, Source{Kind: SourceFile, Target: "/data/hall.avi", Loop: true}},
		{"file:///data/hall.avi?loop=false", true, Source{Kind: SourceFile, Target: "/data/hall.avi", Live: true}},
		{"rtsp://u:p@10.0.0.5:554/s", false, Source{Kind: SourceStream, Target: "rtsp://u:p@10.0.0.5:554/s", Live: true}},
		{"gst:nvarguscamerasrc ! nvvidconv ! appsink", false, Source{Kind: SourceGStreamer, Target: "nvarguscamerasrc ! nvvidconv ! appsink", Live: true}},
	}
	for _, tc := range cases {
		got, err := ParseSource(tc.url, tc.loop)
		if err != nil || got != tc.want {
			t.Errorf("ParseSource(%q, %v) = %+v, %v; want %+v", tc.url, tc.loop, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-1", "ftp://x/y", "gst:", "file:///a.avi?loop=maybe", "v4l2://cam"} {
		if _, err := ParseSource(bad, false); err == nil {
			t.Errorf("ParseSource(%q) accepted", bad)
		}
	}
	s, _ := ParseSource("rtsp://u:p@10.0.0.5:554/s", false)
	if got := s.String(); got != "rtsp://u:xxxxx@10.0.0.5:554/s" {
		t.Errorf("String() = %q shows or mangles credentials", got)
	}
}
