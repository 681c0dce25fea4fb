package sides

import (
	"context"
	"net/http"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/bench/measure"
	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/operator"
)

// NewOperator runs the operator binary as the operator's users would.
func NewOperator(binary string) Side { return &operatorSide{binary: binary} }

// operatorSide runs bin/manager as the operator's users would.
type operatorSide struct {
	binary      string
	metricsAddr string
	proc        *operator.Process
}

func (o *operatorSide) Name() string { return OperatorName }

func (o *operatorSide) Start(ctx context.Context, env Env) error {
	return startProcess(ctx, &o.proc, env, "operator", env.OperatorEnv, o.SyncedMarker(), func() ([]string, error) {
		kubeconfig, err := env.Cluster.Kubeconfig("extraction-operator")
		if err != nil {
			return nil, err
		}
		if o.metricsAddr, err = freeAddress(); err != nil {
			return nil, err
		}
		return []string{o.binary,
			"--kubeconfig=" + kubeconfig,
			"--kube-api-qps=" + strconv.FormatFloat(env.Limits.QPS, 'g', -1, 64),
			"--kube-api-burst=" + strconv.Itoa(env.Limits.Burst),
			"--max-concurrent-reconciles=" + strconv.Itoa(env.Limits.Concurrency),
			"--metrics-bind-address=" + o.metricsAddr, "--metrics-secure=false",
			"--health-probe-bind-address=0",
		}, nil
	})
}

func (o *operatorSide) Stop() {
	if o.proc != nil {
		o.proc.Stop()
	}
}
func (o *operatorSide) Process() *operator.Process { return o.proc }

// SyncedMarker: controller-runtime starts the workers once the caches synced.
func (o *operatorSide) SyncedMarker() string { return "Starting workers" }

func (o *operatorSide) HeapBytes(ctx context.Context) (float64, error) {
	return measure.ScrapeGauge(ctx, http.DefaultClient, "http://"+o.metricsAddr+"/metrics", "go_memstats_heap_alloc_bytes")
}

// OperatorView reads the operator's own metrics.
func (o *operatorSide) OperatorView(ctx context.Context) (*measure.OperatorView, error) {
	return measure.ScrapeOperatorView(ctx, "http://"+o.metricsAddr+"/metrics", "extractionjob")
}

func (o *operatorSide) NewJob(name string, plan workload.Plan) client.Object {
	return workload.ExtractionJob(name, plan)
}
func (o *operatorSide) JobType() client.Object { return &ejv1.ExtractionJob{} }
func (o *operatorSide) State(obj client.Object) workload.JobState {
	return workload.ExtractionJobState(obj)
}
