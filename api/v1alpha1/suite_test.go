package v1alpha1_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
)

// k8sClient talks to a real kube-apiserver that serves the generated CRDs, so
// that the schema and its CEL rules are checked as a cluster checks them.
var (
	k8sClient  client.Client
	restConfig *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(runWithAPIServer(m))
}

func runWithAPIServer(m *testing.M) int {
	testEnv, err := harness.Environment()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	restConfig, err = testEnv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting kube-apiserver and etcd (run `make tools` to build them):", err)
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping kube-apiserver and etcd:", err)
		}
	}()
	scheme := runtime.NewScheme()
	utilruntime.Must(ejv1.AddToScheme(scheme))
	k8sClient, err = client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating a client:", err)
		return 1
	}
	return m.Run()
}

// invalidFields lists the field paths that an Invalid error from the API
// server names, such as "spec.onOOMKilled.maxMemory".
func invalidFields(t *testing.T, err error) []string {
	t.Helper()
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		t.Fatalf("want an Invalid error that names its fields, got %v", err)
	}
	var fields []string
	for _, cause := range status.Status().Details.Causes {
		fields = append(fields, cause.Field)
	}
	return fields
}

// wantRefusedAt fails the test unless err is an Invalid error naming the field.
func wantRefusedAt(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server accepted it; want a refusal naming %s", field)
	}
	fields := invalidFields(t, err)
	for _, f := range fields {
		if f == field {
			return
		}
	}
	t.Fatalf("the refusal names %s, want %s: %v", strings.Join(fields, ", "), field, err)
}
