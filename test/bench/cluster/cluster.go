// Package cluster runs what every side runs on: a fresh etcd and
// kube-apiserver, controller processes, and the fake kubelet.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pybase/extraction-operator/test/bench/measure"
)

// Cluster is one fresh etcd and kube-apiserver, started by envtest from the
// bin/ cache. Every run gets its own, so counters and caches start empty.
type Cluster struct {
	env   *envtest.Environment
	Admin *rest.Config
	// AdminClient scrapes the API server's metrics.
	AdminClient kubernetes.Interface
	// APIServerPID and EtcdPID are measured for CPU like the controllers.
	APIServerPID, EtcdPID int
	dir                   string
}

// Start starts etcd and kube-apiserver from assetsDir with the CRDs under
// root, and creates the namespace; runDir gets the kubeconfigs.
func Start(ctx context.Context, root, assetsDir, runDir, namespace string) (*Cluster, error) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assetsDir,
	}
	// envtest already runs etcd with --unsafe-no-fsync; its data lives in a
	// temporary directory removed on Stop.
	admin, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assetsDir, err)
	}
	c := &Cluster{env: env, Admin: withoutLimits(admin), dir: runDir}
	if c.APIServerPID, err = measure.ChildPID("kube-apiserver"); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if c.EtcdPID, err = measure.ChildPID("etcd"); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if c.AdminClient, err = kubernetes.NewForConfig(c.Admin); err != nil {
		_ = c.Stop()
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := c.AdminClient.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	return c, nil
}

// Kubeconfig writes a kubeconfig for a new user in system:masters, for a
// controller process. Both controllers get the same rights, which also puts
// both in API Priority and Fairness's exempt level: neither is throttled by
// the server, only by its own client-side limits.
func (c *Cluster) Kubeconfig(name string) (string, error) {
	user, err := c.env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", name, err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.dir, name+".kubeconfig")
	return path, os.WriteFile(path, raw, 0o600)
}

// Stop stops kube-apiserver and etcd and removes their data.
func (c *Cluster) Stop() error {
	done := make(chan error, 1)
	go func() { done <- c.env.Stop() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		return fmt.Errorf("envtest did not stop within a minute")
	}
}

// withoutLimits is cfg without a client-side rate limit: the harness's own
// clients must never be what limits a side.
func withoutLimits(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.QPS, out.Burst, out.RateLimiter = -1, 0, nil
	return out
}
