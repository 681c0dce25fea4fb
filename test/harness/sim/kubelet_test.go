package sim_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/controlplane"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// The kubelet plays each Pod's plan for its attempt, numbering Pods without
// an attempt label by their owner in the order it sees them, with one
// status write per step and no read.
func TestKubeletPlaysThePlanOfEachAttempt(t *testing.T) {
	const ns = "kubelet"
	ctx, cp, admin := startControlPlane(t, ns)

	var requests atomic.Int64
	counted := cp.Config(-1, 0)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) { requests.Add(1); return rt.RoundTrip(r) })
	})
	informers, err := cache.New(cp.Config(-1, 0), cache.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan sim.PodSeen, 10)
	kubelet := sim.NewKubelet(sim.Options{
		Client:  kubernetes.NewForConfigOrDie(counted),
		RunTime: func() time.Duration { return 100 * time.Millisecond },
		OnPod:   func(p sim.PodSeen) { seen <- p },
	})
	if err := kubelet.Start(ctx, informers); err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	informers.WaitForCacheSync(ctx)

	flaky := sim.Plan{Attempts: []sim.Token{sim.Fail, sim.OK}, Message: "ConnectionError: reset", Result: `{"pages":1}`}
	create := func(pod *corev1.Pod) sim.PodSeen {
		t.Helper()
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-seen:
			return p
		case <-time.After(30 * time.Second):
			t.Fatalf("the kubelet never saw Pod %s", pod.Name)
			return sim.PodSeen{}
		}
	}
	// Pods of a batch/v1 Job: an owner and no attempt label.
	owned := func(name string) *corev1.Pod {
		pod := builders.AttemptPod(ns, name, "", 0, flaky.Annotations(), nil)
		pod.Labels = nil
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "owner-1", Controller: ptr.To(true)}}
		return pod
	}
	want := map[string]sim.Result{}
	for _, c := range []struct {
		pod     *corev1.Pod
		attempt int
	}{
		{owned("owned-1"), 1},
		{owned("owned-2"), 2},
		{builders.AttemptPod(ns, "labelled-2", "job-1", 2, flaky.Annotations(), nil), 2},
		{builders.AttemptPod(ns, "evicted", "job-2", 1, sim.Plan{Attempts: []sim.Token{sim.Evict}}.Annotations(), nil), 1},
		{builders.AttemptPod(ns, "held", "job-3", 1, sim.Plan{Attempts: []sim.Token{sim.Hold}}.Annotations(), nil), 1},
	} {
		p := create(c.pod)
		if p.Attempt != c.attempt {
			t.Errorf("Pod %s was taken for attempt %d, want %d", c.pod.Name, p.Attempt, c.attempt)
		}
		plan, err := sim.ParsePlan(c.pod.Annotations)
		if err != nil {
			t.Fatal(err)
		}
		want[c.pod.Name] = plan.Attempt(c.attempt, nil).Result
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]sim.Result{}
		for name := range want {
			pod, err := admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got[name] = sim.Observe(pod)
		}
		diff := cmp.Diff(want, got)
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pod results (-want +got):\n%s", diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the held Pod gets no second write
	// Two writes for each of the four Pods that end, one for the held Pod.
	if got := requests.Load(); got != 9 {
		t.Errorf("the kubelet made %d requests, want 9", got)
	}
	if kubelet.LabelMismatches() != 0 || kubelet.FailedWrites() != 0 || kubelet.InvalidPlans() != 0 {
		t.Errorf("label mismatches %d, failed writes %d, invalid plans %d; want none",
			kubelet.LabelMismatches(), kubelet.FailedWrites(), kubelet.InvalidPlans())
	}
}

// startControlPlane starts etcd and kube-apiserver for a test, with the
// namespace ns, and returns the admin's client of it.
func startControlPlane(t *testing.T, ns string) (context.Context, *controlplane.ControlPlane, kubernetes.Interface) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	cp, err := controlplane.Start(controlplane.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	admin := kubernetes.NewForConfigOrDie(cp.Config(-1, 0))
	if _, err := admin.CoreV1().Namespaces().Create(ctx, builders.Namespace(ns, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ctx, cp, admin
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Finish decides how an attempt ends at the moment it ends, whatever its
// plan says: a backend down for a window of time.
func TestKubeletEndsAnAttemptAsFinishSays(t *testing.T) {
	const ns = "finish"
	ctx, cp, admin := startControlPlane(t, ns)
	informers, err := cache.New(cp.Config(-1, 0), cache.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	down := sim.Result{Phase: corev1.PodFailed, ContainerReason: sim.ReasonError, ContainerMessage: "ServiceUnavailable: 503", ExitCode: 69}
	asked := make(chan sim.Result, 1)
	kubelet := sim.NewKubelet(sim.Options{
		Client:  admin,
		RunTime: func() time.Duration { return 100 * time.Millisecond },
		Finish: func(pod *corev1.Pod, _ time.Time, planned sim.Result) sim.Result {
			asked <- planned
			return down
		},
	})
	if err := kubelet.Start(ctx, informers); err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	informers.WaitForCacheSync(ctx)

	ok := sim.Plan{Result: `{"pages":1}`}
	pod := builders.AttemptPod(ns, "ends-down", "job-1", 1, ok.Annotations(), nil)
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case planned := <-asked:
		if diff := cmp.Diff(ok.Attempt(1, nil).Result, planned); diff != "" {
			t.Errorf("Finish was asked about (-want +got):\n%s", diff)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Finish was never asked")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := admin.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		diff := cmp.Diff(down, sim.Observe(got))
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pod result (-want +got):\n%s", diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
