// Package sides holds the ways of running the jobs that the benchmark
// compares: the operator, kube-controller-manager's Job controller, and the
// API-ceiling driver.
package sides

import (
	"context"
	"fmt"
	"net"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/controlplane"
	"github.com/pybase/extraction-operator/test/harness/operator"
)

// Side is one way of running the jobs: the operator, kube-controller-manager's
// Job controller, or the API-ceiling driver.
type Side interface {
	Name() string
	// Start starts the controller and returns once it is ready to work.
	Start(ctx context.Context, env Env) error
	// Stop stops it; Start may be called again, for a cold start.
	Stop()
	// Process is the controller's OS process, nil when it runs inside the harness.
	Process() *operator.Process
	// SyncedMarker is the log line that says its caches are synced.
	SyncedMarker() string
	// HeapBytes reads the Go heap in use from the controller's metrics.
	HeapBytes(ctx context.Context) (float64, error)
	NewJob(name string, plan workload.Plan) client.Object
	JobType() client.Object
	State(client.Object) workload.JobState
}

// Env is what a side runs in.
type Env struct {
	// Cluster writes the controllers' kubeconfigs.
	Cluster *controlplane.ControlPlane
	// Admin is the admin's configuration without a client-side rate limit,
	// for a side that runs inside the harness.
	Admin *rest.Config
	// Dir gets the side's logs.
	Dir    string
	Limits config.Limits
	// OperatorEnv is the operator process's environment.
	OperatorEnv []string
	// Counter counts the requests of a side that runs inside the harness.
	Counter *measure.RequestCounter
}

// The sides' names, as the -sides flag and the results call them.
const (
	OperatorName      = "operator"
	JobControllerName = "job-controller"
	CeilingName       = "api-ceiling"
)

// freeAddress picks a free loopback port.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startProcess starts a side's process and waits until it logs marker. The
// process is made on the first start, with the command that command
// returns, and started again on a later one, for a cold start: it keeps its
// kubeconfig, its ports and its log.
func startProcess(ctx context.Context, proc **operator.Process, env Env, name string, processEnv []string, marker string,
	command func() ([]string, error)) error {
	if *proc == nil {
		cmd, err := command()
		if err != nil {
			return fmt.Errorf("preparing %s: %w", name, err)
		}
		if *proc, err = operator.New(env.Dir, name, cmd, operator.Options{Env: processEnv, Markers: []string{marker}}); err != nil {
			return err
		}
	}
	if err := (*proc).Start(); err != nil {
		return err
	}
	_, err := (*proc).WaitMarker(ctx, marker, 2*time.Minute)
	return err
}
