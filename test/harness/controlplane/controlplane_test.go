package controlplane

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// startForTest starts a control plane that the test's cleanup stops; short
// runs skip the test.
func startForTest(t *testing.T) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	cp, err := Start(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

// Clients made before a restart keep working after it, graceful or with
// SIGKILL, and the data survives: the certificates and etcd stay.
func TestRestartedAPIServerKeepsCertificatesAndData(t *testing.T) {
	cp := startForTest(t)
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

// etcd and kube-apiserver die with the test process, even when it is
// SIGKILLed and runs no cleanup.
func TestControlPlaneDiesWithTheTestProcess(t *testing.T) {
	if os.Getenv("CONTROLPLANE_CHILD_DIR") != "" {
		cp, err := Start(Options{Dir: os.Getenv("CONTROLPLANE_CHILD_DIR")})
		if err != nil {
			t.Fatal(err)
		}
		api, _ := cp.APIServerPID()
		etcd, _ := cp.EtcdPID()
		fmt.Printf("pids %d %d\n", api, etcd)
		time.Sleep(time.Minute) // until the parent kills this process
		return
	}
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	child := exec.Command(os.Args[0], "-test.run=^TestControlPlaneDiesWithTheTestProcess$", "-test.v")
	child.Env = append(os.Environ(), "CONTROLPLANE_CHILD_DIR="+t.TempDir())
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var api, etcd int
	scanner := bufio.NewScanner(out)
	for scanner.Scan() {
		if _, err := fmt.Sscanf(scanner.Text(), "pids %d %d", &api, &etcd); err == nil {
			break
		}
	}
	if api == 0 || etcd == 0 {
		_ = child.Process.Kill()
		t.Fatalf("the child process started no control plane")
	}
	_ = child.Process.Kill()
	_ = child.Wait()
	for _, pid := range []int{api, etcd} {
		waitGone(pid)
		// Dead is gone, or a zombie that nobody reaps in this container.
		if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if _, state, _, _ := parseStat(string(raw)); state != "Z" {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("process %d outlived the test process that started it", pid)
			}
		}
	}
}

// The default class is the default of every format and runs the image given.
func TestCreateDefaultClassServesEveryFormat(t *testing.T) {
	cp := startForTest(t)
	if _, err := cp.CreateDefaultClass(context.Background(), "registry.example/x:1"); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(ejv1.AddToScheme(scheme))
	cl, err := client.New(cp.Config(-1, 0), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	got := &ejv1.ExtractorClass{}
	if err := cl.Get(context.Background(), client.ObjectKey{Name: DefaultClassName}, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ejv1.Formats, got.Spec.Formats); diff != "" || !got.Spec.Default || got.Spec.Image != "registry.example/x:1" || got.Spec.MaxRunning != nil {
		t.Errorf("the stored class: default %t, image %q, maxRunning %v, formats (-want +got):\n%s", got.Spec.Default, got.Spec.Image, got.Spec.MaxRunning, diff)
	}
}
