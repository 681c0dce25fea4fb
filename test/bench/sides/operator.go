package sides

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/bench/cluster"
	"github.com/pybase/extraction-operator/test/bench/measure"
	"github.com/pybase/extraction-operator/test/bench/workload"
)

// NewOperator runs the operator binary as the operator's users would.
func NewOperator(binary string) Side { return &operatorSide{binary: binary} }

// operatorSide runs bin/manager as the operator's users would.
type operatorSide struct {
	binary      string
	metricsAddr string
	proc        *cluster.Process
	starts      int
}

func (o *operatorSide) Name() string { return OperatorName }

func (o *operatorSide) Start(ctx context.Context, env Env) error {
	kubeconfig, err := env.Cluster.Kubeconfig("extraction-operator")
	if err != nil {
		return err
	}
	if o.metricsAddr, err = freeAddress(); err != nil {
		return err
	}
	o.starts++
	o.proc, err = cluster.StartProcess("operator", filepath.Join(env.Dir, fmt.Sprintf("operator-%d.log", o.starts)),
		env.OperatorEnv, []string{o.SyncedMarker()}, o.binary,
		"--kubeconfig="+kubeconfig,
		"--kube-api-qps="+strconv.FormatFloat(env.Limits.QPS, 'g', -1, 64),
		"--kube-api-burst="+strconv.Itoa(env.Limits.Burst),
		"--max-concurrent-reconciles="+strconv.Itoa(env.Limits.Concurrency),
		"--metrics-bind-address="+o.metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address=0",
		"--extractor-image="+workload.Image,
	)
	if err != nil {
		return err
	}
	_, err = o.proc.WaitMarker(ctx, o.SyncedMarker(), 2*time.Minute)
	return err
}

func (o *operatorSide) Stop() {
	if o.proc != nil {
		o.proc.Stop()
	}
}
func (o *operatorSide) Process() *cluster.Process { return o.proc }

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
