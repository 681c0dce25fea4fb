package sides

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/bench/measure"
	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/operator"
)

// NewJobController runs kube-controller-manager's Job controller.
func NewJobController(binary string) Side { return &jobControllerSide{binary: binary} }

// jobControllerSide runs kube-controller-manager with the Job controller only.
type jobControllerSide struct {
	binary string
	port   int
	proc   *operator.Process
}

func (j *jobControllerSide) Name() string { return JobControllerName }

func (j *jobControllerSide) Start(ctx context.Context, env Env) error {
	return startProcess(ctx, &j.proc, env, "kube-controller-manager", nil, j.SyncedMarker(), func() ([]string, error) {
		kubeconfig, err := env.Cluster.Kubeconfig("kube-controller-manager")
		if err != nil {
			return nil, err
		}
		addr, err := freeAddress()
		if err != nil {
			return nil, err
		}
		_, portStr, _ := net.SplitHostPort(addr)
		j.port, _ = strconv.Atoi(portStr)
		return []string{j.binary,
			"--kubeconfig=" + kubeconfig,
			"--controllers=job",
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--kube-api-qps=" + strconv.FormatFloat(env.Limits.QPS, 'g', -1, 64),
			"--kube-api-burst=" + strconv.Itoa(env.Limits.Burst),
			"--concurrent-job-syncs=" + strconv.Itoa(env.Limits.Concurrency),
			// Metrics over HTTPS without authentication, for the Go heap.
			"--bind-address=127.0.0.1",
			"--secure-port=" + portStr,
			"--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
			"--cert-dir=" + filepath.Join(env.Dir, "kcm-certs"),
		}, nil
	})
}

func (j *jobControllerSide) Stop() {
	if j.proc != nil {
		j.proc.Stop()
	}
}
func (j *jobControllerSide) Process() *operator.Process { return j.proc }

// SyncedMarker: the Job controller is the only controller running, so the
// only one that waits for caches and logs this once they synced.
func (j *jobControllerSide) SyncedMarker() string { return `"Caches are synced"` }

func (j *jobControllerSide) HeapBytes(ctx context.Context) (float64, error) {
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return measure.ScrapeGauge(ctx, insecure, fmt.Sprintf("https://127.0.0.1:%d/metrics", j.port), "go_memstats_heap_alloc_bytes")
}

func (j *jobControllerSide) NewJob(name string, plan workload.Plan) client.Object {
	return workload.BatchJob(name, plan)
}
func (j *jobControllerSide) JobType() client.Object { return &batchv1.Job{} }
func (j *jobControllerSide) State(obj client.Object) workload.JobState {
	return workload.BatchJobState(obj)
}
