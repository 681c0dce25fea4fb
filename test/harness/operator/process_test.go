package operator

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Every incarnation of a process appends to one log between marker lines,
// a marker's first line is timed, and a SIGKILL ends it at once.
func TestProcessKillAndRestartShareOneLog(t *testing.T) {
	p, err := New(t.TempDir(), "sleeper", []string{"sh", "-c", "echo ready; exec sleep 60"}, Options{Markers: []string{"ready"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.WaitMarker(context.Background(), "ready", 10*time.Second); err != nil {
			t.Fatalf("incarnation %d: %v", i+1, err)
		}
		if !p.Running() || p.Exited() != nil {
			t.Fatalf("incarnation %d is not running: %v", i+1, p.Exited())
		}
		start := time.Now()
		p.Kill()
		if p.Running() || time.Since(start) > 5*time.Second {
			t.Fatalf("incarnation %d survived SIGKILL for %s", i+1, time.Since(start))
		}
	}
	if p.Kills() != 2 {
		t.Errorf("%d kills counted, want 2", p.Kills())
	}
	var markers, readies int
	for _, l := range ReadLog(p.LogPath, 0) {
		switch {
		case strings.HasPrefix(strings.TrimSpace(l.Raw), MarkerPrefix):
			markers++
		case l.Raw == "ready":
			readies++
		}
	}
	if markers != 4 || readies != 2 {
		t.Errorf("the log has %d marker lines and %d lines of output, want 4 and 2:\n%s", markers, readies, p.LogTail(20))
	}
}

// A process that ends by itself is reported, so a test can fail fast.
func TestProcessReportsAnExitOfItsOwn(t *testing.T) {
	p, err := New(t.TempDir(), "quitter", []string{"sh", "-c", "exit 3"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Exited() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Exited(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Exited() = %v, want the exit status 3", err)
	}
}
