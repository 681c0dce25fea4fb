package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// holdFinalizer keeps a deleted Pod terminating until a spec removes it.
const holdFinalizer = "test.extraction.pybase.io/hold"

var _ = Describe("ExtractorClass admission counts and status", Ordered, func() {
	var (
		ctx    = context.Background()
		cached client.Reader
		stop   context.CancelFunc
	)

	// An operator of its own runs the class status controller on a cache
	// with the admission indexes, as setupWithManager wires them.
	BeforeAll(func() {
		mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
			Scheme:                 testScheme,
			Cache:                  CacheOptions(),
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(registerAdmissionIndexes(mgr.GetFieldIndexer())).To(Succeed())
		Expect(setupExtractorClassStatus(mgr, clock.RealClock{})).To(Succeed())
		var runCtx context.Context
		runCtx, stop = context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(mgr.Start(runCtx)).To(Succeed())
		}()
		Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
		cached = mgr.GetCache()
		DeferCleanup(func() { stop(); <-done })
	})

	newClass := func(name string) *ejv1.ExtractorClass {
		class := &ejv1.ExtractorClass{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       ejv1.ExtractorClassSpec{Formats: []ejv1.Format{ejv1.FormatPDF}, Image: defaultTestImage},
		}
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, class))).To(Succeed()) })
		return class
	}

	// createClassPod creates an attempt-like Pod of the class in the phase.
	createClassPod := func(ns, name, class string, phase corev1.PodPhase, mutate func(*corev1.Pod)) *corev1.Pod {
		GinkgoHelper()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
				Labels: map[string]string{ejv1.JobUIDLabel: "no-job", ejv1.ExtractorClassLabel: class}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: extractorContainerName, Image: defaultTestImage}}},
		}
		if mutate != nil {
			mutate(pod)
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		if phase != corev1.PodPending {
			updatePodStatus(ctx, pod, func(s *corev1.PodStatus) { s.Phase = phase })
		}
		return pod
	}

	It("counts the unfinished Pods of a class, terminating and gated ones included, from the cache's index", func() {
		ns := newNamespace(ctx)
		class := "counted-" + ns
		createClassPod(ns, "pending", class, corev1.PodPending, nil)
		createClassPod(ns, "running", class, corev1.PodRunning, nil)
		createClassPod(ns, "succeeded", class, corev1.PodSucceeded, nil)
		createClassPod(ns, "failed", class, corev1.PodFailed, nil)
		createClassPod(ns, "other-class", "other-"+ns, corev1.PodRunning, nil)
		createClassPod(ns, "gated", class, corev1.PodPending, func(p *corev1.Pod) {
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
		})
		terminating := createClassPod(ns, "terminating", class, corev1.PodRunning, func(p *corev1.Pod) {
			p.Finalizers = []string{holdFinalizer}
		})
		Expect(k8sClient.Delete(ctx, terminating)).To(Succeed())

		q := newAdmissionQueue(cached, clock.RealClock{})
		counted := func(g Gomega) int {
			load, err := q.load(ctx, class)
			g.Expect(err).NotTo(HaveOccurred())
			return load.running
		}
		Eventually(counted).Should(Equal(4), "pending, running, gated and terminating")
		Consistently(counted).WithTimeout(500 * time.Millisecond).Should(Equal(4))

		// The terminating Pod is gone once its finalizer is.
		Eventually(func(g Gomega) {
			current := &corev1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(terminating), current)).To(Succeed())
			current.Finalizers = nil
			g.Expect(k8sClient.Update(ctx, current)).To(Succeed())
		}).Should(Succeed())
		Eventually(counted).Should(Equal(3))
	})

	It("writes a class's running and queued counts, observedGeneration and Ready", func() {
		ns := newNamespace(ctx)
		class := newClass("status-" + ns)
		class.Spec.MaxRunning = ptr.To[int32](3)
		Expect(k8sClient.Create(ctx, class)).To(Succeed())
		createClassPod(ns, "running-1", class.Name, corev1.PodRunning, nil)
		createClassPod(ns, "running-2", class.Name, corev1.PodPending, nil)
		createClassPod(ns, "done", class.Name, corev1.PodSucceeded, nil)

		job := newJob(ns, "waiting")
		job.Labels = map[string]string{directReconcileLabel: "true"}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		job.Status.Phase, job.Status.ExtractorClassName = ejv1.PhaseQueued, class.Name
		Expect(k8sClient.Status().Update(ctx, job)).To(Succeed())

		Eventually(func(g Gomega) {
			current := &ejv1.ExtractorClass{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(class), current)).To(Succeed())
			g.Expect(current.Status.Running).To(BeNumerically("==", 2))
			g.Expect(current.Status.Queued).To(BeNumerically("==", 1))
			g.Expect(current.Status.ObservedGeneration).To(Equal(current.Generation))
			g.Expect(meta.IsStatusConditionTrue(current.Status.Conditions, ejv1.ConditionReady)).To(BeTrue())
		}).WithTimeout(20 * time.Second).Should(Succeed())

		By("exporting the same counts as gauges")
		Eventually(func(g Gomega) {
			families := scrape(g)
			byClass := map[string]string{"extractor_class": class.Name}
			g.Expect(sample(families, "extractionjob_running_attempts", byClass)).To(BeNumerically("==", 2))
			g.Expect(sample(families, "extractionjob_queued", byClass)).To(BeNumerically("==", 1))
			g.Expect(sample(families, "extractionjob_jobs", map[string]string{"phase": "Queued", "format": "pdf"})).To(BeNumerically(">=", 1))
		}).Should(Succeed())
	})

	It("says so on both default classes that compete for a namespace", func() {
		ns := newNamespace(ctx)
		namespace := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: ns}, namespace)).To(Succeed())
		namespace.Labels = map[string]string{"test.extraction.pybase.io/competing": ns}
		Expect(k8sClient.Update(ctx, namespace)).To(Succeed())

		older, newer := newClass("older-"+ns), newClass("newer-"+ns)
		for _, c := range []*ejv1.ExtractorClass{older, newer} {
			c.Spec.Default = true
			c.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: namespace.Labels}
			Expect(k8sClient.Create(ctx, c)).To(Succeed())
		}
		for mine, theirs := range map[*ejv1.ExtractorClass]*ejv1.ExtractorClass{older: newer, newer: older} {
			Eventually(func(g Gomega) {
				current := &ejv1.ExtractorClass{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(mine), current)).To(Succeed())
				competing := meta.FindStatusCondition(current.Status.Conditions, ejv1.ConditionCompetingDefaults)
				g.Expect(competing).NotTo(BeNil())
				g.Expect(competing.Message).To(ContainSubstring(theirs.Name))
			}).WithTimeout(20 * time.Second).Should(Succeed())
		}
	})
})
