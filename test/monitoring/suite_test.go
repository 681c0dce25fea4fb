// Package monitoring proves config/prometheus and config/grafana with the
// tools their users run: promtool checks and tests the alerting rules and
// lints the operator's /metrics, Prometheus' own PromQL parser reads the
// dashboard, and a real API server with the Prometheus Operator's CRDs
// accepts the ServiceMonitor and the PrometheusRule.
//
// It is a Go module of its own, run by `make test-monitoring`: Prometheus'
// module (for promql/parser) requires k8s.io and client_golang versions of
// its own, and none of that may enter the operator's go.mod or binary. It
// replaces the operator's module with this repository, to run the operator
// and the shared test harness at the versions the operator pins.
package monitoring

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pybase/extraction-operator/test/harness"
)

var (
	// root is the repository's directory.
	root string
	// promtool is the binary `make test-monitoring` built (PROMTOOL).
	promtool string
)

func TestMain(m *testing.M) {
	var err error
	if root, err = harness.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if promtool = os.Getenv("PROMTOOL"); promtool == "" {
		fmt.Fprintln(os.Stderr, "PROMTOOL is not set: run `make test-monitoring`, which builds promtool into bin/")
		os.Exit(1)
	}
	code := m.Run()
	stopCluster(code != 0)
	os.Exit(code)
}

// repoPath is a path in the repository.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{root}, elem...)...)
}

// run runs a command and returns its combined output, with the output in
// the error when it fails.
func run(dir string, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return string(out), nil
}

// once runs a shared, expensive set-up the first time a test asks for it
// and gives every later test the same result.
type once[T any] struct {
	sync.Once
	value T
	err   error
}

func (o *once[T]) get(t *testing.T, setUp func() (T, error)) T {
	t.Helper()
	o.Do(func() { o.value, o.err = setUp() })
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.value
}
