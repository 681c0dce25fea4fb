// Package controlplane runs etcd and kube-apiserver with envtest, in a
// directory that outlives kube-apiserver restarts: the serving certificate,
// the client CA and the service-account keys are made once and kept there,
// so a restarted API server presents the certificate its clients already
// trust and accepts the client certificates it issued before.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pybase/extraction-operator/test/harness"
)

// Options configure a control plane.
type Options struct {
	// Dir keeps the certificates, etcd's data, the logs and the kubeconfigs.
	Dir string
	// AssetsDir holds etcd and kube-apiserver; harness.AssetsDir by default.
	AssetsDir string
	// CRDDirectories are installed once the API server is up; the
	// repository's config/crd/bases by default.
	CRDDirectories []string
	// Scheme reads the CRDs; client-go's by default.
	Scheme *runtime.Scheme
	// StopTimeout is how long a graceful stop waits before SIGKILL; 10 s by
	// default, since a supervisor (the kubelet of a static Pod, systemd)
	// would not wait the minute that open watches can hold the API server.
	StopTimeout time.Duration
}

// ControlPlane is one etcd and one kube-apiserver.
type ControlPlane struct {
	env    *envtest.Environment
	dir    string
	apiLog *os.File
	starts int
	reaper *reaper
	// Admin is the client configuration of a user in system:masters.
	Admin *rest.Config
	// AdminKubeconfig is the path of Admin as a kubeconfig file.
	AdminKubeconfig string
}

// Start starts etcd and kube-apiserver and installs the CRDs.
func Start(opts Options) (*ControlPlane, error) {
	env, err := harness.Environment()
	if err != nil {
		return nil, err
	}
	if opts.AssetsDir != "" {
		env.BinaryAssetsDirectory = opts.AssetsDir
	}
	if len(opts.CRDDirectories) > 0 {
		env.CRDDirectoryPaths = opts.CRDDirectories
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	certDir := filepath.Join(opts.Dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	etcdLog, err := os.OpenFile(filepath.Join(opts.Dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	apiLog, err := os.OpenFile(filepath.Join(opts.Dir, "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	api := &envtest.APIServer{CertDir: certDir, Out: apiLog, Err: apiLog}
	// No Service endpoints to keep: the reconciler would only slow a stop.
	api.Configure().Set("endpoint-reconciler-type", "none")
	c := &ControlPlane{
		dir: opts.Dir, apiLog: apiLog,
		env: env,
	}
	env.ControlPlane = envtest.ControlPlane{
		APIServer: api,
		Etcd:      &envtest.Etcd{DataDir: filepath.Join(opts.Dir, "etcd-data"), Out: etcdLog, Err: etcdLog},
	}
	env.Scheme, env.ControlPlaneStopTimeout = opts.Scheme, opts.StopTimeout
	if c.reaper, err = startReaper(opts.Dir); err != nil {
		return nil, err
	}
	c.mark("start #1")
	c.starts = 1
	c.Admin, err = c.env.Start()
	if err == nil {
		err = c.watchProcesses()
	}
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", env.BinaryAssetsDirectory, err)
	}
	c.AdminKubeconfig = filepath.Join(opts.Dir, "admin.kubeconfig")
	if err := os.WriteFile(c.AdminKubeconfig, c.env.KubeConfig, 0o600); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// URL is the API server's address.
func (c *ControlPlane) URL() string { return strings.TrimSuffix(c.Admin.Host, "/") }

// Config is the admin's client configuration with the given client-side
// rate limits and a 30 s request timeout.
func (c *ControlPlane) Config(qps float32, burst int) *rest.Config {
	cfg := rest.CopyConfig(c.Admin)
	cfg.QPS, cfg.Burst = qps, burst
	cfg.Timeout = 30 * time.Second
	return cfg
}

// Kubeconfig writes a kubeconfig for a new user in system:masters, for a
// process such as the operator, and returns its path. Every such user is in
// API Priority and Fairness's exempt level: the server throttles none.
func (c *ControlPlane) Kubeconfig(name string) (string, error) {
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

// APIServerPID is the running kube-apiserver's process ID.
func (c *ControlPlane) APIServerPID() (int, error) { return childPID("kube-apiserver") }

// EtcdPID is etcd's process ID.
func (c *ControlPlane) EtcdPID() (int, error) { return childPID("etcd") }

// RestartAPIServer stops kube-apiserver, gracefully (SIGTERM, and SIGKILL
// after the stop timeout) or with SIGKILL, waits for the pause and starts it
// again on the same port with the same certificates; etcd keeps running and
// keeps the data. It returns how long the API server was unavailable.
func (c *ControlPlane) RestartAPIServer(kill bool, pause time.Duration) (time.Duration, error) {
	start := time.Now()
	pid, err := c.APIServerPID()
	if err != nil {
		return 0, err
	}
	api := c.env.ControlPlane.APIServer
	if kill {
		c.mark(fmt.Sprintf("SIGKILL to pid %d", pid))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return 0, fmt.Errorf("killing kube-apiserver: %w", err)
		}
		waitGone(pid)
		// Reaps the process; envtest signals nothing that has exited.
		if err := api.Stop(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return 0, fmt.Errorf("stopping the killed kube-apiserver: %w", err)
		}
	} else {
		c.mark(fmt.Sprintf("SIGTERM to pid %d", pid))
		// envtest sends SIGKILL after the stop timeout, and then reports it.
		if err := api.Stop(); err != nil {
			c.mark(fmt.Sprintf("still running after the stop timeout: SIGKILL (%v)", err))
		}
		waitGone(pid)
	}
	time.Sleep(pause)
	c.starts++
	c.mark(fmt.Sprintf("start #%d", c.starts))
	if err := api.Start(); err != nil {
		return time.Since(start), fmt.Errorf("starting kube-apiserver again: %w; see %s", err, c.apiLog.Name())
	}
	if err := c.watchProcesses(); err != nil {
		return time.Since(start), err
	}
	return time.Since(start), c.waitReady(2 * time.Minute)
}

// waitReady waits for /readyz through the admin's client, which trusts
// only the CA of the first start: a restarted API server with another
// certificate would never pass.
func (c *ControlPlane) waitReady(timeout time.Duration) error {
	client, err := rest.HTTPClientFor(c.Config(-1, 0))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL()+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz answered %s", resp.Status)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after %s (%v); see %s", timeout, last, c.apiLog.Name())
}

// Stop stops kube-apiserver and etcd.
func (c *ControlPlane) Stop() error {
	c.mark("stop")
	defer c.reaper.stop()
	return c.env.Stop()
}

// watchProcesses hands the running etcd and kube-apiserver to the reaper.
func (c *ControlPlane) watchProcesses() error {
	api, err := c.APIServerPID()
	if err != nil {
		return err
	}
	etcd, err := c.EtcdPID()
	if err != nil {
		return err
	}
	return c.reaper.watch(api, etcd)
}

// mark writes a line into the API server's log, to find restarts in it.
func (c *ControlPlane) mark(what string) {
	fmt.Fprintf(c.apiLog, "\n=== harness: kube-apiserver %s at %s ===\n", what, time.Now().Format(time.RFC3339Nano))
}
