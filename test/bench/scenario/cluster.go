package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/controlplane"
)

// cluster is a run's own etcd and kube-apiserver, from the shared harness:
// every run gets a fresh one, so counters and caches start empty.
type cluster struct {
	*controlplane.ControlPlane
	// dir holds the control plane's certificates, data and logs only for
	// the run: etcd's data of 10,000 jobs is no result.
	dir string
	// Admin is the admin's configuration without a client-side rate limit:
	// the harness's own clients must never be what limits a side.
	Admin *rest.Config
	// AdminClient scrapes the API server's metrics.
	AdminClient kubernetes.Interface
	// APIServerPID and EtcdPID are measured for CPU like the controllers.
	APIServerPID, EtcdPID int
}

// startCluster starts etcd and kube-apiserver from assetsDir with the CRDs
// of the repository at root, and creates the benchmark's namespace and its
// default ExtractorClass.
func startCluster(ctx context.Context, root, assetsDir string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "bench-controlplane-")
	if err != nil {
		return nil, err
	}
	cp, err := controlplane.Start(controlplane.Options{
		Dir: dir, AssetsDir: assetsDir, Scheme: workload.Scheme,
		CRDDirectories: []string{filepath.Join(root, "config", "crd", "bases")},
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c := &cluster{ControlPlane: cp, dir: dir, Admin: rest.CopyConfig(cp.Admin)}
	c.Admin.QPS, c.Admin.Burst, c.Admin.RateLimiter = -1, 0, nil
	if c.APIServerPID, err = cp.APIServerPID(); err != nil {
		_ = c.stop()
		return nil, err
	}
	if c.EtcdPID, err = cp.EtcdPID(); err != nil {
		_ = c.stop()
		return nil, err
	}
	if c.AdminClient, err = kubernetes.NewForConfig(c.Admin); err != nil {
		_ = c.stop()
		return nil, err
	}
	cl, err := client.New(c.Admin, client.Options{Scheme: workload.Scheme})
	if err == nil {
		err = cl.Create(ctx, builders.Namespace(workload.Namespace, nil))
	}
	if err != nil {
		_ = c.stop()
		return nil, fmt.Errorf("creating namespace %s: %w", workload.Namespace, err)
	}
	// Only the operator reads it; every side's API server gets it all the
	// same, so that they all hold the same objects.
	if _, err := cp.CreateDefaultClass(ctx, workload.Image); err != nil {
		_ = c.stop()
		return nil, err
	}
	return c, nil
}

// stop stops kube-apiserver and etcd and removes their directory.
func (c *cluster) stop() error {
	done := make(chan error, 1)
	go func() { done <- c.Stop() }()
	select {
	case err := <-done:
		if err == nil {
			err = os.RemoveAll(c.dir)
		}
		return err
	case <-time.After(time.Minute):
		return fmt.Errorf("the control plane did not stop within a minute")
	}
}
