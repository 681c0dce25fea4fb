//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/classwatch"
	"github.com/pybase/extraction-operator/test/harness/operator"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// holdFinalizer is the test's own finalizer on a Pod it wants to see
// terminating for a while: KWOK's pod-delete stage removes a Pod as soon as
// it has a deletionTimestamp, so without it "terminating" lasts no time.
const holdFinalizer = "e2e.extraction.pybase.io/hold"

// terminatingFor is how long a held Pod stays terminating: the slot it
// holds must stay taken all that time.
const terminatingFor = 4 * time.Second

// restartSettle excuses the queue after the restarted operator's workers
// start: its first pass reconciles every job before it reaches the heads.
const restartSettle = 3 * time.Second

var _ = Describe("An ExtractorClass with maxRunning 3", Ordered, func() {
	const (
		ns         = "e2e-classes"
		className  = "e2e-capped"
		maxRunning = 3
		jobs       = 20
	)
	ctx := context.Background()
	var watch *classwatch.Watch
	var report classwatch.Report
	// The first four jobs hold their Pods until the test ends them, so
	// that no slot frees by itself: the first is cancelled and the second
	// deleted while all three slots are held (the fourth starts in the
	// first's slot), the last two are cancelled before the kills.
	const heldJobs = maxRunning + 1
	name := func(i int) string { return fmt.Sprintf("fifo-%02d", i) }
	held := func(i int) bool { return i < heldJobs }

	BeforeAll(func() {
		createNamespace(ns)
		DeferCleanup(func() {
			_, _ = kubectl("delete", "namespace", ns, "--wait=false")
			_, _ = kubectl("delete", "extractorclass", className, "--ignore-not-found")
		})
		class := builders.ExtractorClass(className, "registry.example/extractor:e2e", builders.WithMaxRunning(maxRunning))
		Expect(k8s.Create(ctx, class)).To(Succeed())
		// The jobs come once the operator has seen the class (its status
		// controller wrote the class's status): jobs that find no class
		// wait for it outside the queue, and start in the order they are
		// reconciled when it appears.
		Eventually(func() (int64, error) {
			current := &ejv1.ExtractorClass{}
			err := k8s.Get(ctx, client.ObjectKeyFromObject(class), current)
			return current.Status.ObservedGeneration, err
		}).Should(Equal(int64(1)))
		var err error
		watch, err = classwatch.Start(ctx, classwatch.Options{Config: restConfig, Class: class})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			if watch != nil {
				watch.Stop()
			}
		})
		// Names sort in creation order, so the queue's tie-break (namespace,
		// then name) agrees with creation order even within one second.
		for i := range jobs {
			plan := sim.Plan{Attempts: []sim.Token{sim.OK}, RunSeconds: []int{2 + i%3}, Result: `{"pages":1}`}
			if held(i) {
				plan = sim.Plan{Attempts: []sim.Token{sim.Hold}}
			}
			Expect(k8s.Create(ctx, builders.ExtractionJob(ns, name(i), plan, builders.WithClass(className)))).To(Succeed())
		}
	})

	// podOf waits for a job's running Pod.
	podOf := func(i int) *corev1.Pod {
		GinkgoHelper()
		Eventually(phaseOf(ns, name(i))).Should(Equal(ejv1.PhaseRunning))
		job, err := getJob(ns, name(i))
		Expect(err).NotTo(HaveOccurred())
		pod := &corev1.Pod{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: job.Status.PodName}, pod)).To(Succeed())
		return pod
	}
	hold := func(pod *corev1.Pod) {
		GinkgoHelper()
		patch := client.MergeFrom(pod.DeepCopy())
		pod.Finalizers = append(pod.Finalizers, holdFinalizer)
		Expect(k8s.Patch(ctx, pod, patch)).To(Succeed())
	}
	release := func(pod *corev1.Pod) {
		GinkgoHelper()
		Eventually(func() error {
			current := &corev1.Pod{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), current); err != nil {
				return err
			}
			patch := client.MergeFrom(current.DeepCopy())
			var kept []string
			for _, f := range current.Finalizers {
				if f != holdFinalizer {
					kept = append(kept, f)
				}
			}
			current.Finalizers = kept
			return k8s.Patch(ctx, current, patch)
		}).Should(Succeed())
	}
	// freesItsSlotOnlyOnceGone ends a held job's running attempt with end
	// while its Pod is held terminating, and checks that no other Pod of
	// the class starts until the Pod is gone, and that the next one starts
	// soon after.
	freesItsSlotOnlyOnceGone := func(i int, end func()) {
		GinkgoHelper()
		// The three held jobs from i on fill the class.
		for k := i; k < i+maxRunning; k++ {
			Eventually(phaseOf(ns, name(k))).Should(Equal(ejv1.PhaseRunning), name(k))
		}
		Eventually(watch.InFlight).Should(Equal(maxRunning))
		pod := podOf(i)
		hold(pod)
		startedBefore := len(classwatch.Starts(watch.Timeline()))
		end()
		Eventually(func() (bool, error) {
			current := &corev1.Pod{}
			err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), current)
			return current.DeletionTimestamp != nil, err
		}).Should(BeTrue(), "the Pod of %s is not being deleted", name(i))
		Consistently(func() int { return len(classwatch.Starts(watch.Timeline())) }, terminatingFor).Should(Equal(startedBefore),
			"a Pod of the class started while the Pod of %s was terminating", name(i))
		Expect(watch.InFlight()).To(Equal(maxRunning), "the terminating Pod of %s must still count", name(i))
		release(pod)
		Eventually(func() int { return len(classwatch.Starts(watch.Timeline())) }, 30*time.Second).Should(BeNumerically(">", startedBefore),
			"no Pod of the class started after the Pod of %s was gone", name(i))
		// In the watch's order: the Pod was gone before the next one started.
		gone, next := -1, -1
		for k, ev := range watch.Timeline() {
			switch {
			case ev.Pod == pod.Name && ev.Kind == classwatch.Gone && gone < 0:
				gone = k
			case ev.Kind == classwatch.Started && len(classwatch.Starts(watch.Timeline()[:k+1])) == startedBefore+1:
				next = k
			}
		}
		Expect(gone).To(BeNumerically(">=", 0), "the watch never saw the Pod of %s gone", name(i))
		Expect(next).To(BeNumerically(">", gone), "the next Pod started before the Pod of %s was gone", name(i))
		GinkgoWriter.Printf("%s: its Pod held terminating for %s; the next Pod started %s after the Pod was gone\n",
			name(i), terminatingFor, watch.Timeline()[next].At.Sub(watch.Timeline()[gone].At).Round(time.Millisecond))
	}

	It("frees a cancelled job's slot once its Pod is gone, not before", func() {
		freesItsSlotOnlyOnceGone(0, func() {
			kubectlOK("patch", "-n", ns, "extractionjob", name(0), "--type", "merge", "-p", `{"spec":{"cancel":true}}`)
		})
		Eventually(phaseOf(ns, name(0))).Should(Equal(ejv1.PhaseCancelled))
	})

	It("frees a deleted job's slot once its Pod is gone, not before", func() {
		freesItsSlotOnlyOnceGone(1, func() {
			kubectlOK("delete", "-n", ns, "extractionjob", name(1), "--wait=false")
		})
	})

	It("holds the cap while the operator is SIGKILLed twice, and every job finishes", func() {
		for i := 2; i < heldJobs; i++ {
			Eventually(phaseOf(ns, name(i))).Should(Equal(ejv1.PhaseRunning))
			kubectlOK("patch", "-n", ns, "extractionjob", name(i), "--type", "merge", "-p", `{"spec":{"cancel":true}}`)
		}
		// Each kill hits a leading operator with the class full and jobs
		// waiting; the restarted one leads once the killed one's lease
		// expires.
		for kill := 1; kill <= 2; kill++ {
			time.Sleep(3 * time.Second)
			inFlight := watch.InFlight()
			watch.OperatorDown()
			op.Kill()
			time.Sleep(time.Second)
			Expect(op.Start()).To(Succeed())
			at, err := op.WaitMarker(ctx, operator.JobWorkersStarted, 3*time.Minute)
			Expect(err).NotTo(HaveOccurred())
			watch.OperatorUp(at.Add(restartSettle))
			GinkgoWriter.Printf("operator SIGKILL %d with %d Pods of the class in flight; its successor's workers started %s later\n",
				kill, inFlight, at.Sub(op.Started()).Round(time.Millisecond))
		}
		for i := heldJobs; i < jobs; i++ {
			// The restarted operator waits for the killed one's lease to expire.
			Eventually(phaseOf(ns, name(i)), 3*time.Minute).Should(Equal(ejv1.PhaseSucceeded), name(i))
		}
		for i := 2; i < heldJobs; i++ {
			Eventually(phaseOf(ns, name(i))).Should(Equal(ejv1.PhaseCancelled))
		}
		Eventually(watch.InFlight).Should(BeZero())
		report = watch.Stop()
		watch = nil
		Expect(report.Violations).To(BeEmpty())
		Expect(report.Peak).To(Equal(maxRunning), "the peak in flight: the class must have been full")
	})

	It("starts the jobs first come, first served", func() {
		starts := classwatch.Starts(report.Timeline)
		var order []string
		for _, s := range starts {
			order = append(order, s.Job)
		}
		Expect(order).To(HaveLen(jobs), "one started Pod per job")
		// Admission is in order, but the Pods of jobs admitted together are
		// created by parallel workers, so they may appear in either order
		// within a moment: an inversion counts only when the earlier job's
		// Pod came a second or more after the later one's.
		firstStart := map[string]time.Time{}
		for _, s := range starts {
			firstStart[s.Job] = s.At
		}
		inversions := 0
		for i := range jobs {
			for k := i + 1; k < jobs; k++ {
				if late := firstStart[name(i)].Sub(firstStart[name(k)]); late > 0 {
					inversions++
					Expect(late).To(BeNumerically("<", time.Second), "%s started %s after %s, which came after it", name(i), late, name(k))
				}
			}
		}
		GinkgoWriter.Printf("class %s: %d jobs, peak in flight %d of %d, Pod events checked %d, relists %d, jobs queued %d, longest Queued with a free slot %s, start order %v (%d inversions within a second)\n",
			className, jobs, report.Peak, maxRunning, report.Events, report.Relists, report.JobsQueued, report.LongestFreeWait.Round(time.Millisecond), order, inversions)
		AddReportEntry("class figures", fmt.Sprintf("peak in flight %d/%d, events %d, jobs %d", report.Peak, maxRunning, report.Events, jobs))
	})

})

var _ = Describe("Jobs that waited for a missing ExtractorClass", Ordered, func() {
	const (
		ns        = "e2e-class-appears"
		className = "e2e-late"
		jobs      = 6
	)
	ctx := context.Background()
	name := func(i int) string { return fmt.Sprintf("late-%d", i) }

	BeforeAll(func() {
		createNamespace(ns)
		DeferCleanup(func() {
			_, _ = kubectl("delete", "namespace", ns, "--wait=false")
			_, _ = kubectl("delete", "extractorclass", className, "--ignore-not-found")
		})
	})

	It("start first come, first served once the class appears", func() {
		class := builders.ExtractorClass(className, "registry.example/extractor:e2e", builders.WithMaxRunning(1))
		watchCtx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		watch, err := classwatch.Start(watchCtx, classwatch.Options{Config: restConfig, Class: class})
		Expect(err).NotTo(HaveOccurred())
		// One a second, so creation times alone give the order.
		for i := range jobs {
			plan := sim.Plan{Attempts: []sim.Token{sim.OK}, RunSeconds: []int{1}, Result: `{"pages":1}`}
			Expect(k8s.Create(ctx, builders.ExtractionJob(ns, name(i), plan, builders.WithClass(className)))).To(Succeed())
			time.Sleep(time.Second)
		}
		for i := range jobs {
			Eventually(func() (string, error) {
				job, err := getJob(ns, name(i))
				return job.Status.Message, err
			}).Should(ContainSubstring("does not exist"), name(i))
		}
		Expect(k8s.Create(ctx, class)).To(Succeed())
		for i := range jobs {
			Eventually(phaseOf(ns, name(i)), 2*time.Minute).Should(Equal(ejv1.PhaseSucceeded), name(i))
		}
		report := watch.Stop()
		Expect(report.Violations).To(BeEmpty())
		var order []string
		for _, s := range classwatch.Starts(report.Timeline) {
			order = append(order, s.Job)
		}
		GinkgoWriter.Printf("class %s appeared after its %d jobs: start order %v, peak in flight %d\n", className, jobs, order, report.Peak)
		Expect(order).To(Equal([]string{name(0), name(1), name(2), name(3), name(4), name(5)}), "the order the jobs were created in")
	})
})
