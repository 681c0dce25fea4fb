package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
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
		Expect(setupExtractorClassStatus(mgr, clock.RealClock{}, newAdmissionQueue(mgr.GetCache(), clock.RealClock{}))).To(Succeed())
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

// createClass creates a cluster-scoped class for one spec, and deletes it
// after the spec.
func createClass(ctx context.Context, class *ejv1.ExtractorClass) *ejv1.ExtractorClass {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, class)).To(Succeed())
	DeferCleanup(func(ctx context.Context) { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, class))).To(Succeed()) })
	return class
}

// createFullClass creates fullClass for the namespace's jobs, with what the
// API server's admission wants to exist for it: its PriorityClass,
// RuntimeClass and, in the namespace, its ServiceAccount.
func createFullClass(ctx context.Context, namespace string) *ejv1.ExtractorClass {
	GinkgoHelper()
	class := fullClass()
	class.Name = "everything-" + namespace
	Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: class.Spec.PriorityClassName}, Value: 100}))).To(Succeed())
	Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: *class.Spec.RuntimeClassName}, Handler: "runsc"}))).To(Succeed())
	Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: class.Spec.ServiceAccountName, Namespace: namespace}})).To(Succeed())
	return createClass(ctx, class)
}

// memoryClass grows its 64Mi by the factor after each OOMKilled attempt, up to maxMemory.
func memoryClass(name string, factor int32, maxMemory string) *ejv1.ExtractorClass {
	class := testClass(name, "registry.example/large:1", ejv1.FormatPDF)
	class.Spec.Default = false
	class.Spec.Resources = &ejv1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}
	class.Spec.OnOOMKilled = &ejv1.OnOOMKilled{MemoryFactor: factor, MaxMemory: resource.MustParse(maxMemory)}
	return class
}

// editClass changes a class's spec as an administrator would. A merge
// patch, not an update: the class status controller writes the class too.
func editClass(ctx context.Context, class *ejv1.ExtractorClass, edit func(*ejv1.ExtractorClass)) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(class), class)).To(Succeed())
	patch := client.MergeFrom(class.DeepCopy())
	edit(class)
	Expect(k8sClient.Patch(ctx, class, patch)).To(Succeed())
}

func setPodOOMKilled(ctx context.Context, pod *corev1.Pod) {
	GinkgoHelper()
	setPodTerminated(ctx, pod, corev1.PodFailed, 137, "OOMKilled", "")
}

func podMemoryLimit(pod *corev1.Pod) string {
	limit := pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
	return limit.String()
}

// retryWithToken asks for a manual retry of a finished job.
func retryWithToken(ctx context.Context, job *ejv1.ExtractionJob, token string) {
	GinkgoHelper()
	patch := client.RawPatch("application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"`+ejv1.RetryRequestAnnotation+`":"`+token+`"}}}`))
	Expect(k8sClient.Patch(ctx, job.DeepCopy(), patch)).To(Succeed())
}

// waitForWaitReason waits until the job is Pending for the reason, without a Pod.
func waitForWaitReason(ctx context.Context, job *ejv1.ExtractionJob, reason string) *ejv1.ExtractionJob {
	GinkgoHelper()
	var current *ejv1.ExtractionJob
	Eventually(func(g Gomega) {
		current = getJob(g, ctx, job)
		g.Expect(current.Status.Phase).To(Equal(ejv1.PhasePending))
		g.Expect(condition(current, ejv1.ConditionReconciling)).To(HaveField("Reason", reason), "status: %+v", current.Status)
		g.Expect(condition(current, ejv1.ConditionReady)).To(HaveField("Reason", reason))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	Expect(attemptPods(Default, ctx, job)).To(BeEmpty(), "a waiting job has no Pod")
	return current
}

var _ = Describe("ExtractorClass", func() {
	var (
		ctx       context.Context
		namespace string
	)
	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	It("puts every field of the class into the attempt's Pod", func() {
		class := createFullClass(ctx, namespace)
		job := newJob(namespace, "full")
		job.Spec.ExtractorClassName = class.Name
		Expect(k8sClient.Create(ctx, job)).To(Succeed())

		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.Tolerations).To(ContainElements(class.Spec.Tolerations))
		got := classFieldsOfPod(pod)
		// The API server adds tolerations of its own; the class's are all there.
		got.Tolerations = class.Spec.Tolerations
		Expect(got).To(Equal(classFieldsOf(class)))
		current := getJob(Default, ctx, job)
		Expect(current.Status.ExtractorClassName).To(Equal(class.Name))
		Expect(current.Status.Attempts[0].Memory).To(HaveValue(Equal(resource.MustParse("768Mi"))))
	})

	It("doubles the memory after each OOMKilled attempt up to maxMemory, and starts again after a manual retry", func() {
		class := createClass(ctx, memoryClass("ladder-"+namespace, 2, "200Mi"))
		job := newJob(namespace, "ladder")
		job.Spec.ExtractorClassName = class.Name
		job.Spec.RetryPolicy.MaxRetries = ptr.To[int32](3)
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		increases := func() float64 {
			return sample(scrape(Default), metricOOMMemoryIncreases, map[string]string{"extractor_class": class.Name})
		}
		before := increases()

		By("an OOMKilled attempt, then one with twice the memory, then one at maxMemory")
		for _, step := range []struct {
			attempt int32
			memory  string
		}{{1, "64Mi"}, {2, "128Mi"}, {3, "200Mi"}} {
			pod := waitForAttemptPod(ctx, job, step.attempt)
			Expect(podMemoryLimit(pod)).To(Equal(step.memory), "attempt %d", step.attempt)
			Expect(pod.Spec.Containers[0].Resources.Requests.Memory().String()).To(Equal(step.memory))
			setPodOOMKilled(ctx, pod)
		}
		By("a failure of another kind leaving the memory where it is")
		pod := waitForAttemptPod(ctx, job, 4)
		Expect(podMemoryLimit(pod)).To(Equal("200Mi"))
		setPodFailed(ctx, pod, 1, "ConnectionError: reset")
		failed := waitForPhase(ctx, job, ejv1.PhaseFailed)
		Expect(failed.Status.OOMKilledCount).To(Equal(int32(3)))
		var memories []string
		for _, record := range failed.Status.Attempts {
			memories = append(memories, record.Memory.String())
		}
		Expect(memories).To(Equal([]string{"64Mi", "128Mi", "200Mi", "200Mi"}))
		Eventually(increases).Should(Equal(before+2), "two attempts started with more memory than the one before")

		By("a manual retry starting from the class's memory again")
		retryWithToken(ctx, job, "after-the-fix")
		pod = waitForAttemptPod(ctx, job, 5)
		Expect(podMemoryLimit(pod)).To(Equal("64Mi"))
		Expect(getJob(Default, ctx, job).Status.OOMKilledCount).To(BeZero())
	})

	It("leaves a job whose class is missing Pending, and starts it as soon as the class appears", func() {
		job := newJob(namespace, "early")
		job.Spec.ExtractorClassName = "late-" + namespace
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		waiting := waitForWaitReason(ctx, job, ejv1.ReasonExtractorClassNotFound)
		Expect(waiting.Status.Message).To(Equal("ExtractorClass late-" + namespace + " does not exist; waiting for it."))

		By("a class of that name without the job's format")
		class := testClass("late-"+namespace, "registry.example/late:1", ejv1.FormatIFC)
		class.Spec.Default = false
		createClass(ctx, class)
		waiting = waitForWaitReason(ctx, job, ejv1.ReasonFormatNotServed)
		Expect(waiting.Status.Message).To(ContainSubstring("does not serve format pdf (it serves ifc)"))

		By("the administrator adding the format")
		editClass(ctx, class, func(class *ejv1.ExtractorClass) { class.Spec.Formats = []ejv1.Format{ejv1.FormatIFC, ejv1.FormatPDF} })
		// No periodic resync wakes a waiting job: only the class's watch event does.
		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.Containers[0].Image).To(Equal("registry.example/late:1"))
	})

	It("leaves a job Pending while no default serves its format, and starts it with the default that appears", func() {
		defaults := testDefaultClasses()[1]
		Expect(k8sClient.Delete(ctx, defaults)).To(Succeed())
		recreated := false
		DeferCleanup(func(ctx context.Context) {
			if !recreated {
				Expect(k8sClient.Create(ctx, testDefaultClasses()[1])).To(Succeed())
			}
		})
		job := newJob(namespace, "no-default")
		job.Spec.Format = ejv1.FormatDXF
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		waiting := waitForWaitReason(ctx, job, ejv1.ReasonExtractorClassNotFound)
		Expect(waiting.Status.Message).To(Equal("No default ExtractorClass serves format dxf in namespace " + namespace +
			"; waiting for one, or set spec.extractorClassName."))

		Expect(k8sClient.Create(ctx, testDefaultClasses()[1])).To(Succeed())
		recreated = true
		Expect(waitForAttemptPod(ctx, job, 1).Spec.Containers[0].Image).To(Equal(defaultTestImage))
	})

	It("fails a job whose namespace the class does not admit, and runs it on a retry after the class changes", func() {
		class := testClass("tenant-"+namespace, "registry.example/tenant:1", ejv1.FormatPDF)
		class.Spec.Default = false
		class.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "other"}}
		createClass(ctx, class)
		job := newJob(namespace, "outsider")
		job.Spec.ExtractorClassName = class.Name
		Expect(k8sClient.Create(ctx, job)).To(Succeed())

		failed := waitForPhase(ctx, job, ejv1.PhaseFailed)
		Expect(failed.Status.LastFailure).To(HaveField("ErrorType", ejv1.ErrorTypeExtractorClassNotAllowed))
		Expect(condition(failed, ejv1.ConditionFailed)).To(HaveField("Reason", ejv1.ReasonExtractorClassNotAllowed))
		Expect(failed.Status.Message).To(Equal("Permanent error: ExtractorClassNotAllowed: ExtractorClass " + class.Name +
			" does not admit namespace " + namespace + "."))
		Expect(attemptPods(Default, ctx, job)).To(BeEmpty())

		By("the administrator admitting the namespace, and the author asking for a retry")
		editClass(ctx, class, func(class *ejv1.ExtractorClass) {
			class.Spec.NamespaceSelector.MatchLabels = map[string]string{corev1.LabelMetadataName: namespace}
		})
		retryWithToken(ctx, job, "admitted")
		Expect(waitForAttemptPod(ctx, job, 1).Spec.Containers[0].Image).To(Equal("registry.example/tenant:1"))
	})

	It("applies a class edit from the next attempt on", func() {
		class := testClass("edited-"+namespace, "registry.example/edited:1", ejv1.FormatPDF)
		class.Spec.Default = false
		createClass(ctx, class)
		job := newJob(namespace, "edited")
		job.Spec.ExtractorClassName = class.Name
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		first := waitForAttemptPod(ctx, job, 1)
		setPodRunning(ctx, first)
		waitForPhase(ctx, job, ejv1.PhaseRunning)

		editClass(ctx, class, func(class *ejv1.ExtractorClass) { class.Spec.Image = "registry.example/edited:2" })
		Consistently(func(g Gomega) {
			g.Expect(attemptPods(g, ctx, job)).To(HaveLen(1))
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(first), first)).To(Succeed())
			g.Expect(first.Spec.Containers[0].Image).To(Equal("registry.example/edited:1"))
		}).WithTimeout(2*time.Second).Should(Succeed(), "the running attempt is left alone")

		setPodFailed(ctx, first, 1, "ConnectionError: reset")
		Expect(waitForAttemptPod(ctx, job, 2).Spec.Containers[0].Image).To(Equal("registry.example/edited:2"))
	})

	It("leaves a job Pending while its ServiceAccount is missing, and starts it once the ServiceAccount exists", func() {
		class := testClass("robot-"+namespace, "registry.example/robot:1", ejv1.FormatPDF)
		class.Spec.Default = false
		class.Spec.ServiceAccountName = "robot"
		createClass(ctx, class)
		job := newJob(namespace, "robot")
		job.Spec.ExtractorClassName = class.Name
		Expect(k8sClient.Create(ctx, job)).To(Succeed())

		waiting := waitForWaitReason(ctx, job, ejv1.ReasonServiceAccountNotFound)
		Expect(waiting.Status.Message).To(Equal("ServiceAccount robot does not exist in namespace " + namespace +
			"; the Pod is created once it does."))
		Expect(waiting.Status.Attempt).To(BeZero())
		Consistently(func(g Gomega) {
			g.Expect(eventNotes(g, ctx, job)).NotTo(ContainElement(HavePrefix(ejv1.ReasonPodCreateFailed)))
		}).WithTimeout(2*time.Second).Should(Succeed(), "a missing ServiceAccount is a wait, not a failing create")

		Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: namespace}})).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.ServiceAccountName).To(Equal("robot"))
	})
})
