package controlplane

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Clients made before a restart keep working after it, graceful or with
// SIGKILL, and the data survives: the certificates and etcd stay.
func TestRestartedAPIServerKeepsCertificatesAndData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	cp, err := Start(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	fromFile, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	operatorPath, err := cp.Kubeconfig("operator")
	if err != nil {
		t.Fatal(err)
	}
	operator, err := clientcmd.BuildConfigFromFlags("", operatorPath)
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]*rest.Config{"admin": cp.Config(-1, 0), "admin kubeconfig": fromFile, "operator kubeconfig": operator}
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(configs["admin"])
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := cp.APIServerPID()
	if err != nil {
		t.Fatal(err)
	}
	for _, kill := range []bool{false, true} {
		down, err := cp.RestartAPIServer(kill, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("restart (kill=%t): %v", kill, err)
		}
		t.Logf("restart (kill=%t): unavailable for %s", kill, down.Round(time.Millisecond))
		for name, cfg := range configs {
			if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{}); err != nil {
				t.Errorf("after the restart (kill=%t), the %s client cannot read the namespace made before: %v", kill, name, err)
			}
		}
	}
	if after, err := cp.APIServerPID(); err != nil || after == before {
		t.Errorf("kube-apiserver has pid %d before and %d after two restarts (%v)", before, after, err)
	}
}
