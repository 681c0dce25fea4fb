package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// Limits are the client-side settings a side runs with. Both controllers
// get the same: QPS and burst per client, and concurrency as
// MaxConcurrentReconciles against --concurrent-job-syncs.
type Limits struct {
	Name        string  `json:"name"`
	QPS         float64 `json:"qps"` // negative: no client-side rate limit
	Burst       int     `json:"burst"`
	Concurrency int     `json:"concurrency"`
}

func (l Limits) String() string {
	if l.QPS < 0 {
		return fmt.Sprintf("%s (no rate limit, %d workers)", l.Name, l.Concurrency)
	}
	return fmt.Sprintf("%s (QPS %g, burst %d, %d workers)", l.Name, l.QPS, l.Burst, l.Concurrency)
}

// Side is one way of running the jobs: the operator, kube-controller-manager's
// Job controller, or the API-ceiling driver.
type Side interface {
	Name() string
	// Start starts the controller and returns once it is ready to work.
	Start(ctx context.Context, r *Run) error
	// Stop stops it; Start may be called again, for a cold start.
	Stop()
	// Process is the controller's OS process, nil when it runs inside the harness.
	Process() *Process
	// SyncedMarker is the log line that says its caches are synced.
	SyncedMarker() string
	// HeapBytes reads the Go heap in use from the controller's metrics.
	HeapBytes(ctx context.Context) (float64, error)
	NewJob(name string, plan Plan) client.Object
	JobType() client.Object
	State(client.Object) JobState
}

// operatorSide runs bin/manager as the operator's users would.
type operatorSide struct {
	binary      string
	metricsAddr string
	proc        *Process
	starts      int
}

func (o *operatorSide) Name() string { return "operator" }

func (o *operatorSide) Start(ctx context.Context, r *Run) error {
	kubeconfig, err := r.Cluster.Kubeconfig("extraction-operator")
	if err != nil {
		return err
	}
	if o.metricsAddr, err = freeAddress(); err != nil {
		return err
	}
	o.starts++
	o.proc, err = startProcess("operator", filepath.Join(r.Dir, fmt.Sprintf("operator-%d.log", o.starts)),
		r.Settings.OperatorEnv, []string{o.SyncedMarker()}, o.binary,
		"--kubeconfig="+kubeconfig,
		"--kube-api-qps="+strconv.FormatFloat(r.Limits.QPS, 'g', -1, 64),
		"--kube-api-burst="+strconv.Itoa(r.Limits.Burst),
		"--max-concurrent-reconciles="+strconv.Itoa(r.Limits.Concurrency),
		"--metrics-bind-address="+o.metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address=0",
		"--extractor-image="+benchImage,
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
func (o *operatorSide) Process() *Process { return o.proc }

// SyncedMarker: controller-runtime starts the workers once the caches synced.
func (o *operatorSide) SyncedMarker() string { return "Starting workers" }

func (o *operatorSide) HeapBytes(ctx context.Context) (float64, error) {
	return scrapeGauge(ctx, http.DefaultClient, "http://"+o.metricsAddr+"/metrics", "go_memstats_heap_alloc_bytes")
}

func (o *operatorSide) NewJob(name string, plan Plan) client.Object { return extractionJob(name, plan) }
func (o *operatorSide) JobType() client.Object                      { return &ejv1.ExtractionJob{} }
func (o *operatorSide) State(obj client.Object) JobState            { return extractionJobState(obj) }

// jobControllerSide runs kube-controller-manager with the Job controller only.
type jobControllerSide struct {
	binary string
	port   int
	proc   *Process
	starts int
}

func (j *jobControllerSide) Name() string { return "job-controller" }

func (j *jobControllerSide) Start(ctx context.Context, r *Run) error {
	kubeconfig, err := r.Cluster.Kubeconfig("kube-controller-manager")
	if err != nil {
		return err
	}
	addr, err := freeAddress()
	if err != nil {
		return err
	}
	_, portStr, _ := net.SplitHostPort(addr)
	j.port, _ = strconv.Atoi(portStr)
	j.starts++
	qps := r.Limits.QPS
	j.proc, err = startProcess("kube-controller-manager", filepath.Join(r.Dir, fmt.Sprintf("kube-controller-manager-%d.log", j.starts)),
		nil, []string{j.SyncedMarker()}, j.binary,
		"--kubeconfig="+kubeconfig,
		"--controllers=job",
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--kube-api-qps="+strconv.FormatFloat(qps, 'g', -1, 64),
		"--kube-api-burst="+strconv.Itoa(r.Limits.Burst),
		"--concurrent-job-syncs="+strconv.Itoa(r.Limits.Concurrency),
		// Metrics over HTTPS without authentication, for the Go heap.
		"--bind-address=127.0.0.1",
		"--secure-port="+portStr,
		"--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
		"--cert-dir="+filepath.Join(r.Dir, "kcm-certs"),
	)
	if err != nil {
		return err
	}
	_, err = j.proc.WaitMarker(ctx, j.SyncedMarker(), 2*time.Minute)
	return err
}

func (j *jobControllerSide) Stop() {
	if j.proc != nil {
		j.proc.Stop()
	}
}
func (j *jobControllerSide) Process() *Process { return j.proc }

// SyncedMarker: the Job controller is the only controller running, so the
// only one that waits for caches and logs this once they synced.
func (j *jobControllerSide) SyncedMarker() string { return `"Caches are synced"` }

func (j *jobControllerSide) HeapBytes(ctx context.Context) (float64, error) {
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return scrapeGauge(ctx, insecure, fmt.Sprintf("https://127.0.0.1:%d/metrics", j.port), "go_memstats_heap_alloc_bytes")
}

func (j *jobControllerSide) NewJob(name string, plan Plan) client.Object { return batchJob(name, plan) }
func (j *jobControllerSide) JobType() client.Object                      { return &batchv1.Job{} }
func (j *jobControllerSide) State(obj client.Object) JobState            { return batchJobState(obj) }

// freeAddress picks a free loopback port.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrapeGauge reads one unlabelled gauge from a Prometheus endpoint.
func scrapeGauge(ctx context.Context, c *http.Client, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	families, err := parseFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	f, ok := families[name]
	if !ok || len(f.GetMetric()) == 0 {
		return 0, fmt.Errorf("%s has no %s", url, name)
	}
	m := f.GetMetric()[0]
	if g := m.GetGauge(); g != nil {
		return g.GetValue(), nil
	}
	return m.GetUntyped().GetValue(), nil
}
