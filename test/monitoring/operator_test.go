package monitoring

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/pybase/extraction-operator/test/harness/operator"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// runningOperator is the operator's binary, built from ./cmd and run as a
// process against the shared cluster, with the simulated kubelet playing
// its Pods.
type runningOperator struct {
	process *operator.Process
	// metricsAddress serves /metrics. Over plain HTTP: the exposition is the
	// same as behind the deployed operator's authenticating HTTPS endpoint,
	// which needs ServiceAccount tokens that envtest cannot issue.
	metricsAddress string
	stopKubelet    context.CancelFunc
}

var sharedOperator once[*runningOperator]

func theOperator(t *testing.T) *runningOperator {
	t.Helper()
	c := theCluster(t)
	return sharedOperator.get(t, func() (*runningOperator, error) {
		binary, err := operator.Build(root, c.dir)
		if err != nil {
			return nil, err
		}
		metricsAddress, probeAddress := freeAddress(), freeAddress()
		process, err := operator.New(c.dir, "operator", []string{binary,
			"--kubeconfig=" + c.cp.AdminKubeconfig,
			"--metrics-bind-address=" + metricsAddress, "--metrics-secure=false",
			"--health-probe-bind-address=" + probeAddress,
		}, operator.Options{})
		if err != nil {
			return nil, err
		}
		if err := process.Start(); err != nil {
			return nil, fmt.Errorf("starting the operator: %w", err)
		}
		op := &runningOperator{process: process, metricsAddress: metricsAddress}
		if err := waitReady(process, probeAddress); err != nil {
			op.stop()
			return nil, err
		}
		if op.stopKubelet, err = startKubelet(c); err != nil {
			op.stop()
			return nil, err
		}
		return op, nil
	})
}

func (op *runningOperator) stop() {
	if op.stopKubelet != nil {
		op.stopKubelet()
	}
	op.process.Stop()
}

func waitReady(process *operator.Process, probeAddress string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := process.Exited(); err != nil {
			return fmt.Errorf("the operator exited: %w\n%s", err, process.LogTail(30))
		}
		if resp, err := http.Get("http://" + probeAddress + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the operator was not ready within a minute:\n%s", process.LogTail(30))
}

// startKubelet plays the kubelet for every Pod, on an informer of its own.
func startKubelet(c *cluster) (context.CancelFunc, error) {
	cfg := c.cp.Config(100, 200)
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	informers, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = informers.Start(ctx) }()
	kubelet := sim.NewKubelet(sim.Options{Client: clientset, RunTime: func() time.Duration { return 500 * time.Millisecond }})
	if err := kubelet.Start(ctx, informers); err != nil {
		cancel()
		return nil, err
	}
	return cancel, nil
}

func freeAddress() string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer listener.Close()
	return listener.Addr().String()
}
