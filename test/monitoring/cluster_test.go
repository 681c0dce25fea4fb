package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/controlplane"
)

// cluster is the one etcd and kube-apiserver (envtest's, from
// KUBEBUILDER_ASSETS) that the tests share, with the operator's CRDs.
type cluster struct {
	cp *controlplane.ControlPlane
	// client acts as an admin.
	client client.Client
	// dir keeps the control plane's and the operator's logs.
	dir string
}

var (
	sharedCluster once[*cluster]
	scheme        = runtime.NewScheme()
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ejv1.AddToScheme(scheme))
}

func theCluster(t *testing.T) *cluster {
	t.Helper()
	return sharedCluster.get(t, func() (*cluster, error) {
		dir, err := os.MkdirTemp("", "extraction-monitoring-")
		if err != nil {
			return nil, err
		}
		cp, err := controlplane.Start(controlplane.Options{Dir: filepath.Join(dir, "control-plane"), Scheme: scheme})
		if err != nil {
			return nil, err
		}
		c, err := client.New(cp.Config(100, 200), client.Options{Scheme: scheme})
		if err != nil {
			_ = cp.Stop()
			return nil, fmt.Errorf("connecting to the API server: %w", err)
		}
		fmt.Printf("monitoring: control plane at %s, logs in %s\n", cp.URL(), dir)
		return &cluster{cp: cp, client: c, dir: dir}, nil
	})
}

// stopCluster stops what the tests started, the operator and then the
// control plane, and removes their directory, which a failed run keeps for
// a person to read.
func stopCluster(failed bool) {
	if op := sharedOperator.value; op != nil {
		op.stop()
	}
	c := sharedCluster.value
	if c == nil {
		return
	}
	if err := c.cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring: stopping the control plane:", err)
	}
	if failed {
		fmt.Printf("monitoring: logs and the scrape kept in %s\n", c.dir)
		return
	}
	if err := os.RemoveAll(c.dir); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring:", err)
	}
}
