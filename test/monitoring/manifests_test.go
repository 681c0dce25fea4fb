package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// prometheusOperatorModule pins the Prometheus Operator whose CRDs the API
// server learns, as a Go module version: the CRD files come from the project
// that owns them, checked against the Go checksum database. The files are
// fetched with `go mod download` rather than required in go.mod, because a
// requirement would bring the whole operator's dependency graph (its own
// k8s.io versions) into this module only to read YAML files.
const prometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

var prometheusOperatorCRDs once[struct{}]

// kubectl runs the kubectl on PATH (or $KUBECTL) against the shared cluster.
func kubectl(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	binary := os.Getenv("KUBECTL")
	if binary == "" {
		binary = "kubectl"
	}
	c := theCluster(t)
	return run(root, stdin, binary, append([]string{"--kubeconfig=" + c.cp.AdminKubeconfig}, args...)...)
}

// kustomize renders a kustomization of the repository with `kubectl kustomize`.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	out, err := kubectl(t, nil, "kustomize", repoPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// serverSideApply applies manifests as a user would, with the API server
// refusing any field its schema does not know.
func serverSideApply(t *testing.T, manifests []byte) (string, error) {
	t.Helper()
	return kubectl(t, manifests, "apply", "--server-side", "--validate=strict", "--field-manager=monitoring-test", "-f", "-")
}

// installPrometheusOperatorCRDs installs the monitoring.coreos.com CRDs of
// prometheusOperatorModule and waits until the API server serves them.
func installPrometheusOperatorCRDs(t *testing.T) {
	t.Helper()
	prometheusOperatorCRDs.get(t, func() (struct{}, error) {
		// Outside any module, so that no go.sum learns of it.
		out, err := run(os.TempDir(), nil, "go", "mod", "download", "-json", prometheusOperatorModule)
		if err != nil {
			return struct{}{}, err
		}
		var module struct{ Dir string }
		if err := json.Unmarshal([]byte(out), &module); err != nil {
			return struct{}{}, fmt.Errorf("reading go mod download's answer: %w", err)
		}
		crds := filepath.Join(module.Dir, "example", "prometheus-operator-crd")
		if _, err := kubectl(t, nil, "apply", "--server-side", "-f", crds); err != nil {
			return struct{}{}, err
		}
		_, err = kubectl(t, nil, "wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
		return struct{}{}, err
	})
}

func TestTheDefaultKustomizationIsAccepted(t *testing.T) {
	if out, err := serverSideApply(t, kustomize(t, "config/default")); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
}

func TestTheServiceMonitorAndPrometheusRuleAreAccepted(t *testing.T) {
	installPrometheusOperatorCRDs(t)
	// config/prometheus goes into the operator's namespace, which config/default creates.
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "extraction-system"}}
	if err := client.IgnoreAlreadyExists(theCluster(t).client.Create(context.Background(), namespace)); err != nil {
		t.Fatal(err)
	}
	manifests := kustomize(t, "config/prometheus")
	out, err := serverSideApply(t, manifests)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"servicemonitor.monitoring.coreos.com/extraction-operator serverside-applied", "prometheusrule.monitoring.coreos.com/extraction-operator serverside-applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply said %q, without %q", out, want)
		}
	}

	// The CRDs' schemas are enforced: a field the Prometheus Operator does
	// not know is refused, not dropped.
	misspelt := strings.Replace(string(manifests), "    expr:", "    expression:", 1)
	if misspelt == string(manifests) {
		t.Fatal("the PrometheusRule has no expr to misspell")
	}
	if out, err := serverSideApply(t, []byte(misspelt)); err == nil || !strings.Contains(out, "rules[0].expression: field not declared in schema") {
		t.Errorf("a PrometheusRule with an unknown field was not refused: %v\n%s", err, out)
	}
}
