// Package operator runs the operator for a test: as a process that can be
// started, SIGKILLed and started again (Process), or in-process on a client
// the test controls (StartInProcess); and reads what it logged.
package operator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MarkerPrefix starts the lines the harness writes into a process's log
// between its incarnations.
const MarkerPrefix = "=== harness:"

// Options configure a Process.
type Options struct {
	// Env is added to the test's environment.
	Env []string
	// Markers are strings whose first appearance in the output is timed,
	// for WaitMarker. Without any, the output goes straight to the log.
	Markers []string
}

// Process is a program (the operator, or the Job controller it is measured
// against) run as a child of the test, so that its CPU time and memory are
// its own and a SIGKILL is a real crash. Every incarnation appends to one
// log, separated by marker lines. A Process dies with the test binary.
type Process struct {
	Name    string
	LogPath string
	command []string
	opts    Options
	log     *os.File

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	started time.Time
	starts  int
	kills   int
	markers map[string]time.Time // marker → when a line containing it first appeared
	notify  chan struct{}        // closed and replaced whenever a marker is first seen
}

// New prepares a process that logs to dir/name.log; Start starts it.
func New(dir, name string, command []string, opts Options) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Process{Name: name, LogPath: logPath, command: command, opts: opts, log: log, notify: make(chan struct{})}, nil
}

// Start starts a new incarnation.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	fmt.Fprintf(p.log, "%s start #%d of %s at %s ===\n", MarkerPrefix, p.starts, p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.command[0], p.command[1:]...)
	cmd.Env = append(os.Environ(), p.opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	afterExit := func() {}
	var output *io.PipeReader
	if len(p.opts.Markers) == 0 {
		cmd.Stdout, cmd.Stderr = p.log, p.log
	} else {
		p.markers = map[string]time.Time{}
		for _, m := range p.opts.Markers {
			p.markers[m] = time.Time{}
		}
		r, w := io.Pipe()
		cmd.Stdout, cmd.Stderr = w, w
		output, afterExit = r, func() { w.Close() }
	}
	if err := cmd.Start(); err != nil {
		afterExit()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	if output != nil {
		go p.scan(output)
	}
	p.watch(cmd, afterExit)
	return nil
}

// watch records a started incarnation and notes its exit.
func (p *Process) watch(cmd *exec.Cmd, afterExit func()) {
	exited := make(chan struct{})
	p.cmd, p.exited, p.started = cmd, exited, time.Now()
	go func() {
		err := cmd.Wait()
		afterExit()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(exited)
	}()
}

// scan copies the output to the log and notes when each marker first shows.
func (p *Process) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
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
		fmt.Fprintln(p.log, line)
	}
	_, _ = io.Copy(io.Discard, r)
}

// Started is when the current incarnation started.
func (p *Process) Started() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// PID is the current incarnation's process ID.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	cmd, exited, alive := p.release()
	switch {
	case cmd == nil:
	case !alive:
		fmt.Fprintf(p.log, "%s %s had already exited (%v) ===\n", MarkerPrefix, p.Name, cmd.ProcessState)
	default:
		fmt.Fprintf(p.log, "\n%s SIGKILL to %s (pid %d) at %s ===\n", MarkerPrefix, p.Name, cmd.Process.Pid, time.Now().Format(time.RFC3339Nano))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		p.mu.Lock()
		p.kills++
		p.mu.Unlock()
	}
}

// Stop sends SIGTERM, and SIGKILL if the process has not ended 15 s later.
func (p *Process) Stop() {
	cmd, exited, alive := p.release()
	if !alive {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// release takes the current incarnation out of the Process, for ending it,
// and tells whether it is still alive.
func (p *Process) release() (*exec.Cmd, chan struct{}, bool) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil, nil, false
	}
	select {
	case <-exited:
		return cmd, exited, false
	default:
		return cmd, exited, true
	}
}

// Running reports whether the current incarnation is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Exited is an error when the current incarnation ended on its own, for a
// test to fail fast; nil while it runs or after Kill and Stop.
func (p *Process) Exited() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited on its own: %v", p.Name, p.exitErr)
	default:
		return nil
	}
}

// Kills is how many SIGKILLs ended an incarnation.
func (p *Process) Kills() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills
}

// WaitMarker waits until a line containing marker (one of Options.Markers)
// appears and returns when it did; it fails early when the process exits.
func (p *Process) WaitMarker(ctx context.Context, marker string, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		at, known := p.markers[marker]
		notify, exited, exitErr := p.notify, p.exited, p.exitErr
		p.mu.Unlock()
		if !known {
			return time.Time{}, fmt.Errorf("%q is not a marker of %s", marker, p.Name)
		}
		if !at.IsZero() {
			return at, nil
		}
		select {
		case <-notify:
		case <-exited:
			return time.Time{}, fmt.Errorf("%s exited before logging %q: %v", p.Name, marker, exitErr)
		case <-deadline:
			return time.Time{}, fmt.Errorf("%s did not log %q within %s", p.Name, marker, timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// LogSize is the log's current length, an offset for ReadLog.
func (p *Process) LogSize() int64 { return LogSize(p.LogPath) }

// LogTail is the log's last lines.
func (p *Process) LogTail(lines int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
