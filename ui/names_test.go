package ui

import "testing"

func TestTrackNamesBoundedAndForgotten(t *testing.T) {
	n := NewTrackNames(2)
	n.Set("a", "Ada")
	n.Set("b", "Bo")
	n.Set("a", "Ada L.") // a rename keeps its place
	if got := n.Name("a"); got != "Ada L." {
		t.Fatalf("a: %q", got)
	}
	n.Set("c", "Cy") // past the bound: the oldest (a) goes
	if n.Name("a") != "" || n.Name("b") != "Bo" || n.Name("c") != "Cy" {
		t.Fatalf("after the bound: a %q b %q c %q", n.Name("a"), n.Name("b"), n.Name("c"))
	}
	n.Forget("b")
	n.Set("c", "")
	if n.Name("b") != "" || n.Name("c") != "" || len(n.order) != 0 || len(n.names) != 0 {
		t.Fatalf("forgotten tracks remain: %v %v", n.order, n.names)
	}
	var none *TrackNames
	if none.Name("x") != "" {
		t.Fatal("a nil store names nobody")
	}
}
