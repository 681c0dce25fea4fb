package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a controller running as its own OS process, so that its CPU
// time and memory are its own. Its output goes to a log file, and the times
// at which chosen lines first appear are recorded.
type Process struct {
	Name    string
	Started time.Time
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error

	mu      sync.Mutex
	markers map[string]time.Time // marker → when a line containing it first appeared
	notify  chan struct{}        // closed and replaced whenever a marker is first seen
}

// StartProcess starts binary with args and env added to this process's
// environment, its output going to logPath, watching for the markers.
func StartProcess(name, logPath string, env, markers []string, binary string, args ...string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	pipeR, pipeW := io.Pipe()
	cmd.Stdout, cmd.Stderr = pipeW, pipeW
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), markers: map[string]time.Time{}, notify: make(chan struct{})}
	for _, m := range markers {
		p.markers[m] = time.Time{}
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.Started = time.Now()
	go p.scan(pipeR, logFile)
	go func() {
		p.exitErr = cmd.Wait()
		pipeW.Close()
		close(p.done)
	}()
	return p, nil
}

// scan copies the output to the log and notes when each marker first shows.
func (p *Process) scan(r io.Reader, log *os.File) {
	defer log.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		p.mu.Lock()
		for m, at := range p.markers {
			if at.IsZero() && strings.Contains(line, m) {
				p.markers[m] = now
				close(p.notify)
				p.notify = make(chan struct{})
			}
		}
		p.mu.Unlock()
		fmt.Fprintln(log, line)
	}
	_, _ = io.Copy(io.Discard, r)
}

// PID is the process's ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// WaitMarker waits until a line containing marker appears and returns when
// it did; it fails early when the process exits.
func (p *Process) WaitMarker(ctx context.Context, marker string, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		at, notify := p.markers[marker], p.notify
		p.mu.Unlock()
		if !at.IsZero() {
			return at, nil
		}
		select {
		case <-notify:
		case <-p.done:
			return time.Time{}, fmt.Errorf("%s exited before logging %q: %v", p.Name, marker, p.exitErr)
		case <-deadline:
			return time.Time{}, fmt.Errorf("%s did not log %q within %s", p.Name, marker, timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// Exited reports an unexpected exit, for runs to fail fast.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v", p.Name, p.exitErr)
	default:
		return nil
	}
}

// Stop sends SIGTERM, and SIGKILL if the process has not ended 15 s later.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
