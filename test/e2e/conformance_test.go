//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// playedPlan is a plan to play through both kubelets: its annotations,
// the deadline its attemptTimeout gives, and how many attempts to play.
type playedPlan struct {
	name        string
	annotations map[string]string
	deadline    *int64
	attempts    int
}

// longestPlayed is the longest run time the test waits for; an attempt that
// would run longer is compared while it runs.
const longestPlayed = 20 * time.Second

// samplePlans are the plans of every job in config/samples, and a few
// attempts lists, each played for one attempt more than it names.
func samplePlans() []playedPlan {
	GinkgoHelper()
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var plans []playedPlan
	for _, file := range files {
		data, err := os.ReadFile(file)
		Expect(err).NotTo(HaveOccurred())
		job := &ejv1.ExtractionJob{}
		Expect(yaml.Unmarshal(data, job)).To(Succeed(), file)
		if job.Kind != "ExtractionJob" {
			continue // kustomization.yaml
		}
		p := playedPlan{name: job.Name}
		if job.Spec.PodTemplate != nil {
			p.annotations = job.Spec.PodTemplate.Metadata.Annotations
		}
		if t := job.Spec.AttemptTimeout; t != nil {
			p.deadline = ptr.To(int64(math.Ceil(t.Seconds()))) // as the operator sets it
		}
		plans = append(plans, p)
	}
	Expect(plans).To(HaveLen(len(sampleOutcomes)), "a sample is missing from config/samples or from sampleOutcomes")
	extra := map[string]sim.Plan{
		"attempts-fail-evict-perm": {Attempts: []sim.Token{sim.Fail, sim.Evict, sim.Perm}, Message: "ConnectionError: reset", RunSeconds: []int{1}},
		"attempts-evict-ok":        {Attempts: []sim.Token{sim.Evict, sim.OK}, Result: `{"pages":2}`, RunSeconds: []int{2, 1}},
		"attempts-oom-then-ok":     {Attempts: []sim.Token{sim.Fail, sim.OK}, Reason: "OOMKilled", RunSeconds: []int{1}},
		"attempts-hold":            {Attempts: []sim.Token{sim.Hold}},
		"waiting-image-pull":       {WaitingReason: "ErrImagePull", WaitingMessage: "registry.example.com: connection refused"},
	}
	for name, plan := range extra {
		plans = append(plans, playedPlan{name: name, annotations: plan.Annotations()})
	}
	plans = append(plans, playedPlan{name: "attempts-hold-deadline", annotations: sim.Plan{Attempts: []sim.Token{sim.Hold, sim.OK}}.Annotations(), deadline: ptr.To[int64](3)})
	for i := range plans {
		plan, err := sim.ParsePlan(plans[i].annotations)
		Expect(err).NotTo(HaveOccurred(), plans[i].name)
		n := max(len(plan.Attempts), len(plan.RunSeconds))
		if plan.FailAttempts != nil {
			n = max(n, *plan.FailAttempts)
		}
		plans[i].attempts = n + 1
	}
	return plans
}

// expectedResult is what the test must see of an attempt of a plan: the
// plan's outcome, or Running for an attempt that would outlast the test.
func expectedResult(p playedPlan, attempt int) sim.Result {
	GinkgoHelper()
	plan, err := sim.ParsePlan(p.annotations)
	Expect(err).NotTo(HaveOccurred())
	a := plan.Attempt(attempt, p.deadline)
	if a.Result.Phase != corev1.PodPending && a.RunTime > longestPlayed {
		return sim.Result{Phase: corev1.PodRunning}
	}
	return a.Result
}

var _ = Describe("The simulated kubelet and the KWOK stages", Ordered, func() {
	const kwokNS, simNS = "e2e-play-kwok", "e2e-play-sim"
	var plans []playedPlan
	var kubelet *sim.Kubelet

	BeforeAll(func() {
		plans = samplePlans()
		createNamespace(kwokNS)
		createNamespace(simNS)
		DeferCleanup(func() {
			_, _ = kubectl("delete", "namespace", kwokNS, simNS, "--wait=false")
		})

		By("running the simulated kubelet for the Pods of " + simNS)
		ctx, cancel := context.WithCancel(context.Background())
		DeferCleanup(cancel)
		informers, err := cache.New(restConfig, cache.Options{Scheme: k8s.Scheme(), DefaultNamespaces: map[string]cache.Config{simNS: {}}})
		Expect(err).NotTo(HaveOccurred())
		clientset, err := kubernetes.NewForConfig(restConfig)
		Expect(err).NotTo(HaveOccurred())
		kubelet = sim.NewKubelet(sim.Options{Client: clientset})
		Expect(kubelet.Start(ctx, informers)).To(Succeed())
		go func() { _ = informers.Start(ctx) }()
		Expect(informers.WaitForCacheSync(ctx)).To(BeTrue())

		By("creating every attempt's Pod in both namespaces")
		for _, p := range plans {
			for attempt := 1; attempt <= p.attempts; attempt++ {
				name := fmt.Sprintf("%s-%d", p.name, attempt)
				uid := types.UID("e2e-play-" + p.name)
				Expect(k8s.Create(ctx, builders.AttemptPod(kwokNS, name, uid, attempt, p.annotations, p.deadline))).To(Succeed())
				// No scheduler binds this one to KWOK's node, so only the
				// simulated kubelet plays it.
				unscheduled := builders.AttemptPod(simNS, name, uid, attempt, p.annotations, p.deadline)
				unscheduled.Spec.SchedulerName = "e2e-no-scheduler"
				Expect(k8s.Create(ctx, unscheduled)).To(Succeed())
			}
		}
	})

	It("end every attempt of every sample plan and attempts list the same way", func() {
		want := map[string]sim.Result{}
		for _, p := range plans {
			for attempt := 1; attempt <= p.attempts; attempt++ {
				want[fmt.Sprintf("%s-%d", p.name, attempt)] = expectedResult(p, attempt)
			}
		}
		results := func(namespace string) func() (map[string]sim.Result, error) {
			return func() (map[string]sim.Result, error) {
				pods := &corev1.PodList{}
				if err := k8s.List(context.Background(), pods, client.InNamespace(namespace)); err != nil {
					return nil, err
				}
				got := map[string]sim.Result{}
				for i := range pods.Items {
					got[pods.Items[i].Name] = sim.Observe(&pods.Items[i])
				}
				return got, nil
			}
		}
		Eventually(results(kwokNS), 2*time.Minute, time.Second).Should(Equal(want), "the Pods KWOK played")
		Eventually(results(simNS), 2*time.Minute, time.Second).Should(Equal(want), "the Pods the simulated kubelet played")
		kwok, err := results(kwokNS)()
		Expect(err).NotTo(HaveOccurred())
		played, err := results(simNS)()
		Expect(err).NotTo(HaveOccurred())
		Expect(played).To(Equal(kwok))
		Expect(kubelet.FailedWrites()).To(BeZero(), "failed status writes of the simulated kubelet")
		Expect(kubelet.InvalidPlans()).To(BeZero(), "plans the simulated kubelet could not read")
		names := slices.Sorted(maps.Keys(want))
		GinkgoWriter.Printf("played %d attempts through both: %s\n", len(names), strings.Join(names, " "))
	})
})
