// Command pause is the sandbox ("pause") image's program for the real-node
// tests, in the place of registry.k8s.io/pause, which cannot be pulled
// here: it holds a Pod's namespaces by sleeping until SIGTERM or SIGINT, and
// as PID 1 of the Pod's PID namespace it reaps the orphans that are handed
// to it, as the upstream pause does.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		return
	}
}

// reap waits for every child that has exited, without blocking: one SIGCHLD
// may stand for several.
func reap() {
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
