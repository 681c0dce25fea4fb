package controlplane

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// reaper SIGKILLs etcd and kube-apiserver when the test process dies, even
// by SIGKILL or a `go test -timeout` panic that runs no cleanup. envtest
// starts them in process groups of their own and cannot ask the kernel to
// signal them when their parent dies, so a small shell does: it blocks
// reading a pipe whose only writer is the test process, which the kernel
// closes when that process ends, and then kills the process groups listed
// in a file.
type reaper struct {
	pidFile string
	writer  *os.File
	cmd     *exec.Cmd
}

func startReaper(dir string) (*reaper, error) {
	r := &reaper{pidFile: filepath.Join(dir, "reaper.pgids")}
	if err := os.WriteFile(r.pidFile, nil, 0o644); err != nil {
		return nil, err
	}
	read, write, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r.cmd = exec.Command("sh", "-c", `read -r _; kill -KILL $(cat "$0") 2>/dev/null; exit 0`, r.pidFile)
	r.cmd.Stdin = read
	if err := r.cmd.Start(); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	read.Close()
	r.writer = write
	go func() { _ = r.cmd.Wait() }()
	return r, nil
}

// watch makes the processes the ones to kill.
func (r *reaper) watch(pids ...int) error {
	var groups []byte
	for _, pid := range pids {
		groups = fmt.Appendf(groups, "-%d ", pid)
	}
	return os.WriteFile(r.pidFile, groups, 0o644)
}

// stop ends the reaper once the processes are gone.
func (r *reaper) stop() {
	_ = os.WriteFile(r.pidFile, nil, 0o644)
	r.writer.Close()
}
