// Command kubectl-extraction is a kubectl plugin for ExtractionJobs: installed
// on the PATH as kubectl-extraction, it runs as `kubectl extraction …`.
//
// It acts with the user's own kubeconfig credentials, so RBAC decides who may
// retry or cancel a job.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	// controller-runtime's client logs nothing a plugin's user needs, and it
	// complains when no logger was set.
	logf.SetLogger(logr.Discard())

	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := NewRootCommand(streams, clock.RealClock{}).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
