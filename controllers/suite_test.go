package controllers

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
)

// directReconcileLabel marks jobs that a spec reconciles by hand with a fake
// clock; the suite's running operator leaves them alone.
const directReconcileLabel = "test.extraction.pybase.io/direct"

const (
	defaultTestImage = "registry.example/extractor:test"
	pdfTestImage     = "registry.example/pdf-extractor:test"
	testPullGrace    = 2 * time.Second
)

var (
	testEnv    *envtest.Environment
	restConfig *rest.Config
	k8sClient  client.Client // reads around any cache, straight from the API server
	testScheme = runtime.NewScheme()
	stopOp     context.CancelFunc
	// metricsAddress is where the running operator serves /metrics, over plain HTTP.
	metricsAddress string
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ExtractionJob controller suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
	utilruntime.Must(ejv1.AddToScheme(testScheme))

	var err error
	testEnv, err = harness.Environment()
	Expect(err).NotTo(HaveOccurred())
	// envtest turns ServiceAccount admission off, since no controller creates
	// the default ServiceAccounts; the suite wants the API server's refusal of
	// a Pod whose ServiceAccount is missing, so newNamespace creates them.
	testEnv.ControlPlane.GetAPIServer().Configure().Disable("disable-admission-plugins")
	restConfig, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "starting kube-apiserver and etcd; run `make test` to build them")
	restConfig.QPS, restConfig.Burst = 200, 400

	k8sClient, err = client.New(restConfig, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(RegisterMetrics(k8sClient)).To(Succeed())
	for _, class := range testDefaultClasses() {
		Expect(k8sClient.Create(context.Background(), class)).To(Succeed())
	}
	metricsAddress = freeLoopbackAddress()
	stopOp = startOperator()
})

var _ = AfterSuite(func() {
	if stopOp != nil {
		stopOp()
	}
	Expect(testEnv.Stop()).To(Succeed())
})

// startOperator runs the suite's operator the way cmd/main.go does, with
// short image-pull grace and no jitter, for every job without the
// direct-reconcile label, and returns a function that stops it and waits
// until it has stopped.
func startOperator() context.CancelFunc {
	notDirect, err := labels.NewRequirement(directReconcileLabel, selection.DoesNotExist, nil)
	Expect(err).NotTo(HaveOccurred())
	return startOperatorWith(restConfig, labels.NewSelector().Add(*notDirect),
		metricsserver.Options{BindAddress: metricsAddress})
}

// startOperatorWith runs an operator with the given identity, on the jobs
// that the selector picks, serving metrics as the options say.
func startOperatorWith(identity *rest.Config, jobs labels.Selector, metricsOptions metricsserver.Options) context.CancelFunc {
	cacheOptions := CacheOptions()
	cacheOptions.ByObject[&ejv1.ExtractionJob{}] = cache.ByObject{Label: jobs}

	mgr, err := ctrl.NewManager(identity, ctrl.Options{
		Scheme:                 testScheme,
		Cache:                  cacheOptions,
		Metrics:                metricsOptions,
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true), MaxConcurrentReconciles: 4},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(SetupExtractionJob(mgr, Options{
		Jitter:               func() float64 { return 0 },
		ImagePullGracePeriod: testPullGrace,
	})).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return func() { cancel(); <-done }
}

func freeLoopbackAddress() string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer listener.Close()
	return listener.Addr().String()
}

// testDefaultClasses are the suite's default ExtractorClasses: one for pdf,
// with its own image, and one for every other format.
func testDefaultClasses() []*ejv1.ExtractorClass {
	others := slices.DeleteFunc(slices.Clone(ejv1.Formats), func(f ejv1.Format) bool { return f == ejv1.FormatPDF })
	return []*ejv1.ExtractorClass{
		testClass("test-pdf", pdfTestImage, ejv1.FormatPDF),
		testClass("test-default", defaultTestImage, others...),
	}
}

// testClass is a default class of the formats that runs the image.
func testClass(name, image string, formats ...ejv1.Format) *ejv1.ExtractorClass {
	return &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       ejv1.ExtractorClassSpec{Formats: formats, Default: true, Image: image},
	}
}

// newNamespace creates a namespace for one spec, with the default
// ServiceAccount that the controller manager would create.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ej-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: defaultServiceAccount, Namespace: ns.Name}})).To(Succeed())
	return ns.Name
}

// newJob is a valid job with a one-second backoff, so that retries happen
// within a spec's patience.
func newJob(namespace, name string) *ejv1.ExtractionJob {
	return &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatPDF,
			Source: ejv1.Source{URL: "s3://bucket/" + name + ".pdf"},
			RetryPolicy: ejv1.RetryPolicy{
				MaxRetries:     ptr.To[int32](3),
				MaxDisruptions: ptr.To[int32](5),
				Backoff: ejv1.Backoff{
					Base:       metav1.Duration{Duration: time.Second},
					Multiplier: 2,
					Max:        metav1.Duration{Duration: time.Minute},
				},
			},
		},
	}
}

func getJob(g Gomega, ctx context.Context, job *ejv1.ExtractionJob) *ejv1.ExtractionJob {
	current := &ejv1.ExtractionJob{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), current)).To(Succeed())
	return current
}

// waitForPhase waits until the job reaches the phase and returns it.
func waitForPhase(ctx context.Context, job *ejv1.ExtractionJob, phase ejv1.Phase) *ejv1.ExtractionJob {
	GinkgoHelper()
	var current *ejv1.ExtractionJob
	Eventually(func(g Gomega) {
		current = getJob(g, ctx, job)
		g.Expect(current.Status.Phase).To(Equal(phase), "status: %+v", current.Status)
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return current
}

// waitForAttemptPod waits until the job has started the attempt and returns its Pod.
func waitForAttemptPod(ctx context.Context, job *ejv1.ExtractionJob, attempt int32) *corev1.Pod {
	GinkgoHelper()
	pod := &corev1.Pod{}
	Eventually(func(g Gomega) {
		current := getJob(g, ctx, job)
		g.Expect(current.Status.Attempt).To(BeNumerically(">=", attempt))
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: podName(current, attempt)}, pod)).To(Succeed())
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return pod
}

// The kubelet's part: envtest has none, so the specs move Pods along.

func setPodRunning(ctx context.Context, pod *corev1.Pod) {
	GinkgoHelper()
	updatePodStatus(ctx, pod, func(status *corev1.PodStatus) {
		status.Phase = corev1.PodRunning
		status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: extractorContainerName, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}}
	})
}

func setPodSucceeded(ctx context.Context, pod *corev1.Pod, message string) {
	GinkgoHelper()
	setPodTerminated(ctx, pod, corev1.PodSucceeded, 0, "Completed", message)
}

func setPodFailed(ctx context.Context, pod *corev1.Pod, exitCode int32, message string) {
	GinkgoHelper()
	setPodTerminated(ctx, pod, corev1.PodFailed, exitCode, "Error", message)
}

func setPodTerminated(ctx context.Context, pod *corev1.Pod, phase corev1.PodPhase, exitCode int32, reason, message string) {
	GinkgoHelper()
	updatePodStatus(ctx, pod, func(status *corev1.PodStatus) {
		status.Phase = phase
		status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: extractorContainerName, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCode, Reason: reason, Message: message,
				StartedAt: metav1.Now(), FinishedAt: metav1.Now(),
			}},
		}}
	})
}

func updatePodStatus(ctx context.Context, pod *corev1.Pod, mutate func(*corev1.PodStatus)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		current := &corev1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), current)).To(Succeed())
		mutate(&current.Status)
		g.Expect(k8sClient.Status().Update(ctx, current)).To(Succeed())
	}).Should(Succeed())
}

// attemptPods lists the job's Pods.
func attemptPods(g Gomega, ctx context.Context, job *ejv1.ExtractionJob) []corev1.Pod {
	current := getJob(g, ctx, job)
	pods := &corev1.PodList{}
	g.Expect(k8sClient.List(ctx, pods, client.InNamespace(job.Namespace),
		client.MatchingLabels{ejv1.JobUIDLabel: string(current.UID)})).To(Succeed())
	return pods.Items
}

// eventNotes lists the notes of the job's events with the reason, as
// "reason: note".
func eventNotes(g Gomega, ctx context.Context, job *ejv1.ExtractionJob) []string {
	list := &eventsv1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(job.Namespace))).To(Succeed())
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Name == job.Name && e.Regarding.Kind == "ExtractionJob" {
			notes = append(notes, fmt.Sprintf("%s: %s", e.Reason, e.Note))
		}
	}
	return notes
}

func condition(job *ejv1.ExtractionJob, conditionType string) *metav1.Condition {
	for i := range job.Status.Conditions {
		if job.Status.Conditions[i].Type == conditionType {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}
