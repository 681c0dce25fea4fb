package controllers

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/pybase/extraction-operator/api/podcontract"
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// operatorServiceAccount is the identity config/default gives the operator.
const operatorServiceAccount = "system:serviceaccount:extraction-system:extraction-operator-controller-manager"

// impersonating is a client acting as the user, with the user's RBAC.
func impersonating(user string, groups ...string) (client.Client, *rest.Config) {
	GinkgoHelper()
	config := rest.CopyConfig(restConfig)
	config.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	c, err := client.New(config, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	return c, config
}

// decodeFile decodes the YAML documents of a file under config/ into objects.
func decodeFile[T any](path string) []*T {
	GinkgoHelper()
	file, err := os.Open(filepath.Join("..", "config", path))
	Expect(err).NotTo(HaveOccurred())
	defer file.Close()
	var objects []*T
	decoder := yaml.NewYAMLOrJSONDecoder(file, 4096)
	for {
		object := new(T)
		if err := decoder.Decode(object); err != nil {
			Expect(err.Error()).To(Equal("EOF"))
			return objects
		}
		objects = append(objects, object)
	}
}

// grant binds a role with these rules to a user in a namespace.
func grant(ctx context.Context, namespace, user string, rules ...rbacv1.PolicyRule) {
	GinkgoHelper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Namespace: namespace}, Rules: rules}
	Expect(k8sClient.Create(ctx, role)).To(Succeed())
	Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	})).To(Succeed())
}

var jobAuthorRules = []rbacv1.PolicyRule{{
	APIGroups: []string{ejv1.GroupVersion.Group}, Resources: []string{"extractionjobs"},
	Verbs: []string{"create", "get", "list", "watch", "update", "patch"},
}}

var _ = Describe("Security", func() {
	var (
		ctx       context.Context
		namespace string
	)
	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	It("runs jobs with exactly the generated RBAC, which cannot read Secrets", func() {
		for _, role := range decodeFile[rbacv1.ClusterRole]("rbac/role.yaml") {
			role.Name = "test-" + role.Name
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, role))).To(Succeed())
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operatorServiceAccount}},
			}))).To(Succeed())
		}
		asOperator, operatorConfig := impersonating(operatorServiceAccount, "system:serviceaccounts")
		rbacOnly := labels.SelectorFromSet(labels.Set{directReconcileLabel: "rbac"})
		stop := startOperatorWith(operatorConfig, rbacOnly, metricsserver.Options{BindAddress: "0"})
		DeferCleanup(stop)

		By("reading Secrets being refused")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-reader", Namespace: namespace}, StringData: map[string]string{"AWS_SECRET_ACCESS_KEY": "x"}}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		Expect(apierrors.IsForbidden(asOperator.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.Secret{}))).To(BeTrue())
		Expect(apierrors.IsForbidden(asOperator.List(ctx, &corev1.SecretList{}, client.InNamespace(namespace)))).To(BeTrue())

		By("a foreign Pod standing beside the job's Pods")
		foreign := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: namespace, Labels: map[string]string{"app": "other"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "other"}}},
		}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())

		By("running one job to success and cancelling another")
		succeeding, cancelled := newJob(namespace, "rbac-success"), newJob(namespace, "rbac-cancel")
		for _, job := range []*ejv1.ExtractionJob{succeeding, cancelled} {
			job.Labels = map[string]string{directReconcileLabel: "rbac"}
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
		}
		setPodFailed(ctx, waitForAttemptPod(ctx, succeeding, 1), 1, "ConnectionError: once")
		setPodSucceeded(ctx, waitForAttemptPod(ctx, succeeding, 2), `{"ok":true}`)
		waitForPhase(ctx, succeeding, ejv1.PhaseSucceeded)
		setPodRunning(ctx, waitForAttemptPod(ctx, cancelled, 1))
		waitForPhase(ctx, cancelled, ejv1.PhaseRunning)
		patch := client.MergeFrom(cancelled.DeepCopy())
		cancelled.Spec.Cancel = true
		Expect(k8sClient.Patch(ctx, cancelled, patch)).To(Succeed())
		waitForPhase(ctx, cancelled, ejv1.PhaseCancelled)
		Eventually(func(g Gomega) {
			g.Expect(eventNotes(g, ctx, succeeding)).To(ContainElement(HavePrefix("Succeeded:")))
		}).Should(Succeed(), "the operator's identity may write events")

		current := &corev1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(foreign), current)).To(Succeed())
		Expect(current.DeletionTimestamp).To(BeNil())
		Expect(current.ResourceVersion).To(Equal(foreign.ResourceVersion), "the foreign Pod was never written")
	})

	It("never adopts or deletes a Pod that squats on an attempt's name", func() {
		job := newJob(namespace, "squatted")
		job.Labels = map[string]string{directReconcileLabel: "true"}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		squatter := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: podName(job, 1), Namespace: namespace,
				Labels: map[string]string{ejv1.JobUIDLabel: string(job.UID)}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "extractor", Image: "attacker"}}},
		}
		Expect(k8sClient.Create(ctx, squatter)).To(Succeed())

		reconciler := NewExtractionJobReconciler(k8sClient, k8sClient, events.NewFakeRecorder(10), Options{
			Jitter: func() float64 { return 0 }})
		_, err := reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(job)})
		Expect(err).To(MatchError(ContainSubstring("does not belong to this job")))
		Expect(getJob(Default, ctx, job).Status.PodName).To(BeEmpty())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(squatter), &corev1.Pod{})).To(Succeed())
	})

	It("lets a job author run only the configured image, restricted and without a token", func() {
		Expect(k8sClient.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}},
			client.Merge)).To(Succeed())
		grant(ctx, namespace, "author", jobAuthorRules...)
		asAuthor, _ := impersonating("author")

		By("the author being unable to create Pods directly")
		direct := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "direct", Namespace: namespace},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "anything"}}}}
		Expect(apierrors.IsForbidden(asAuthor.Create(ctx, direct))).To(BeTrue())

		By("Pod Security admission refusing a Pod that is not restricted, even from an admin")
		err := k8sClient.Create(ctx, direct)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("violates PodSecurity"))

		By("the author's job getting the configured image in a restricted Pod")
		job := newJob(namespace, "authored")
		job.Spec.Format = ejv1.FormatIFC
		Expect(asAuthor.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.Containers).To(HaveLen(1))
		Expect(pod.Spec.Containers[0].Image).To(Equal(defaultTestImage))
		Expect(pod.Spec.AutomountServiceAccountToken).To(Equal(ptr.To(false)))
		for _, volume := range pod.Spec.Volumes {
			Expect(volume.Projected).To(BeNil(), "no service-account token volume")
		}
	})

	It("refuses a job whose secretRef names a Secret its author may not read", func() {
		for _, policy := range decodeFile[admissionv1.ValidatingAdmissionPolicy]("policy/secretref-policy.yaml")[:1] {
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, policy))).To(Succeed())
		}
		binding := decodeFile[admissionv1.ValidatingAdmissionPolicyBinding]("policy/secretref-policy.yaml")[1]
		binding.Kind = "ValidatingAdmissionPolicyBinding"
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, binding))).To(Succeed())

		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-reader", Namespace: namespace}})).To(Succeed())
		grant(ctx, namespace, "author", jobAuthorRules...)
		asAuthor, _ := impersonating("author")
		withSecret := func(name string) *ejv1.ExtractionJob {
			job := newJob(namespace, name)
			job.Labels = map[string]string{directReconcileLabel: "true"}
			job.Spec.Source.SecretRef = &ejv1.SecretReference{Name: "s3-reader"}
			return job
		}

		Eventually(func(g Gomega) {
			err := asAuthor.Create(ctx, withSecret("stealing"))
			g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "err = %v", err)
			g.Expect(err.Error()).To(ContainSubstring("spec.source.secretRef.name: author may not get Secret s3-reader"))
		}).WithTimeout(20*time.Second).Should(Succeed(), "the policy takes effect")

		By("a job without a secretRef still being allowed")
		plain := newJob(namespace, "plain")
		plain.Labels = map[string]string{directReconcileLabel: "true"}
		Expect(asAuthor.Create(ctx, plain)).To(Succeed())

		By("the author being allowed once they may read the Secret")
		grant(ctx, namespace, "author", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{"s3-reader"}, Verbs: []string{"get"}})
		Eventually(func() error { return asAuthor.Create(ctx, withSecret("allowed")) }).Should(Succeed())
	})

	It("refuses cancel and retry to a user who may only read jobs", func() {
		job := newJob(namespace, "read-only")
		job.Labels = map[string]string{directReconcileLabel: "true"}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		grant(ctx, namespace, "viewer", rbacv1.PolicyRule{APIGroups: []string{ejv1.GroupVersion.Group},
			Resources: []string{"extractionjobs"}, Verbs: []string{"get", "list", "watch"}})
		asViewer, _ := impersonating("viewer")

		Expect(asViewer.Get(ctx, client.ObjectKeyFromObject(job), &ejv1.ExtractionJob{})).To(Succeed())
		cancel := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"cancel":true}}`))
		Expect(apierrors.IsForbidden(asViewer.Patch(ctx, job, cancel))).To(BeTrue())
		retry := client.RawPatch("application/merge-patch+json",
			[]byte(`{"metadata":{"annotations":{"`+ejv1.RetryRequestAnnotation+`":"please"}}}`))
		Expect(apierrors.IsForbidden(asViewer.Patch(ctx, job, retry))).To(BeTrue())
	})

	It("lets a job author pick a class by name but not change what it runs", func() {
		grant(ctx, namespace, "author", jobAuthorRules...)
		asAuthor, _ := impersonating("author")
		class := testClass("admins-"+namespace, "registry.example/admins:1", ejv1.FormatPDF)
		class.Spec.Default = false
		createClass(ctx, class)

		By("the author being unable to create, change or delete a class")
		own := testClass("authors-"+namespace, "attacker/extractor:1", ejv1.FormatPDF)
		Expect(apierrors.IsForbidden(asAuthor.Create(ctx, own))).To(BeTrue(), "creating a class")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(class), class)).To(Succeed())
		edited := class.DeepCopy()
		edited.Spec.Image = "attacker/extractor:1"
		Expect(apierrors.IsForbidden(asAuthor.Update(ctx, edited))).To(BeTrue(), "changing a class's image")
		Expect(apierrors.IsForbidden(asAuthor.Delete(ctx, class))).To(BeTrue(), "deleting a class")

		By("the author being unable to claim another class in the Pod's labels")
		job := newJob(namespace, "picks-a-class")
		job.Spec.ExtractorClassName = class.Name
		job.Spec.PodTemplate = &ejv1.PodTemplate{Metadata: ejv1.PodTemplateMetadata{
			Labels: map[string]string{ejv1.ExtractorClassLabel: "uncapped"}}}
		Expect(apierrors.IsInvalid(asAuthor.Create(ctx, job.DeepCopy()))).To(BeTrue())

		By("the author's job running the class's image")
		job.Spec.PodTemplate = nil
		Expect(asAuthor.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.Containers[0].Image).To(Equal("registry.example/admins:1"))
		Expect(pod.Labels).To(HaveKeyWithValue(ejv1.ExtractorClassLabel, class.Name), "the attempt counts against its real class")

		By("the author being unable to move the job to another class afterwards")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
		job.Spec.ExtractorClassName = testDefaultClasses()[0].Name
		err := asAuthor.Update(ctx, job)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "err = %v", err)
		Expect(err.Error()).To(ContainSubstring("extractorClassName is immutable"))
	})

	It("keeps the attempt Pod restricted whatever the class sets, in a namespace that enforces the restricted profile", func() {
		Expect(k8sClient.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}},
			client.Merge)).To(Succeed())
		class := createFullClass(ctx, namespace)
		grant(ctx, namespace, "author", jobAuthorRules...)
		asAuthor, _ := impersonating("author")
		job := newJob(namespace, "everything-set")
		job.Spec.ExtractorClassName = class.Name
		Expect(asAuthor.Create(ctx, job)).To(Succeed())

		// Pod Security admission let it in: it passes the restricted profile.
		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.SecurityContext).To(Equal(&corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      class.Spec.RunAsUser,
			RunAsGroup:     class.Spec.RunAsGroup,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}), "only the UID and GID are the class's")
		Expect(pod.Spec.Containers).To(HaveLen(1))
		Expect(pod.Spec.InitContainers).To(BeEmpty())
		Expect(pod.Spec.Containers[0].SecurityContext).To(Equal(&corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}))
		Expect(pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC).To(BeFalse())
		for _, volume := range pod.Spec.Volumes {
			Expect(volume.HostPath).To(BeNil(), "volume %s", volume.Name)
		}
		Expect(getJob(Default, ctx, job).Status.Phase).To(Equal(ejv1.PhasePending))
	})

	It("refuses unauthenticated scrapes of the metrics endpoint", func() {
		address := freeLoopbackAddress()
		stop := startOperatorWith(restConfig, labels.SelectorFromSet(labels.Set{directReconcileLabel: "none"}),
			metricsserver.Options{BindAddress: address, SecureServing: true, FilterProvider: filters.WithAuthenticationAndAuthorization})
		DeferCleanup(stop)

		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		for _, token := range []string{"", "not-a-token"} {
			Eventually(func(g Gomega) {
				request, err := http.NewRequest(http.MethodGet, "https://"+address+"/metrics", nil)
				g.Expect(err).NotTo(HaveOccurred())
				if token != "" {
					request.Header.Set("Authorization", "Bearer "+token)
				}
				response, err := insecure.Do(request)
				g.Expect(err).NotTo(HaveOccurred())
				defer response.Body.Close()
				body, err := io.ReadAll(response.Body)
				g.Expect(err).NotTo(HaveOccurred())
				// Without a token the filter answers 401; a token the API server
				// cannot review fails authentication with a 500. Neither gets metrics.
				g.Expect(response.StatusCode).To(BeElementOf(http.StatusUnauthorized, http.StatusInternalServerError))
				g.Expect(string(body)).NotTo(ContainSubstring("extractionjob_"))
				if token == "" {
					g.Expect(response.StatusCode).To(Equal(http.StatusUnauthorized))
				}
			}).WithTimeout(20 * time.Second).Should(Succeed())
		}
	})
})

// The destinations a job's URL may aim at inside the cluster, which its
// author may not reach themselves: the cloud metadata service and the API
// server's ClusterIP.
var internalSources = []struct{ name, url, class string }{
	{"metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "cloud metadata (link-local)"},
	{"apiserver", "https://10.96.0.1/api/v1/namespaces/kube-system/secrets", "private"},
}

var _ = Describe("A job author aiming a job at an internal address", func() {
	// What an envtest can prove, with no kubelet and no CNI: that the author
	// may create jobs but not Pods, classes or ConfigMaps, so a job is their
	// only way to a request from inside the cluster and the allow-list is
	// the administrator's alone; that their Secret cannot set the allow-list
	// (the operator sets it empty in env, which Kubernetes ranks above
	// envFrom); that the Pod the operator builds, run as a kubelet would run
	// it (the real extractor with exactly that Pod's environment, in a
	// network namespace without a route anywhere), refuses both addresses,
	// and that the job then fails at once as DestinationNotAllowed; and that
	// the shipped egress policy is valid and selects the Pod. Not that a
	// real kubelet and CNI behave so (the real-node tier; a CNI that
	// enforces NetworkPolicy), nor that an answer's bytes never reach the
	// status, since nothing answers here: the extractor's own tests
	// (TestNoRemoteBytesInTheTerminationMessage) prove that.
	It("cannot read the metadata service or the API server through the operator", func() {
		ctx := context.Background()
		namespace := newNamespace(ctx)
		grant(ctx, namespace, "author", append(jobAuthorRules, rbacv1.PolicyRule{APIGroups: []string{""},
			Resources: []string{"secrets"}, ResourceNames: []string{"author-s3"}, Verbs: []string{"get"}})...)
		asAuthor, _ := impersonating("author")

		By("the author being unable to create Pods, classes or ConfigMaps")
		direct := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "direct", Namespace: namespace},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "curl",
				Args: []string{internalSources[0].url}}}}}
		Expect(apierrors.IsForbidden(asAuthor.Create(ctx, direct))).To(BeTrue(), "creating a Pod")
		allowing := testClass("allows-all-"+namespace, defaultTestImage, ejv1.FormatPDF)
		allowing.Spec.Default = false
		allowing.Spec.Env = []ejv1.EnvVar{{Name: podcontract.EnvAllowedDestinations, Value: "0.0.0.0/0,::/0"}}
		Expect(apierrors.IsForbidden(asAuthor.Create(ctx, allowing))).To(BeTrue(), "creating a class that allows everything")
		allowList := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "allowed-destinations", Namespace: namespace},
			Data: map[string]string{"list": "0.0.0.0/0"}}
		Expect(apierrors.IsForbidden(asAuthor.Create(ctx, allowList))).To(BeTrue(), "creating a ConfigMap a class could read")

		By("the egress policy of config/networkpolicy being created in the namespace")
		policy := decodeFile[networkingv1.NetworkPolicy]("networkpolicy/policy/attempt-egress.yaml")[0]
		policy.Namespace = namespace
		Expect(k8sClient.Create(ctx, policy)).To(Succeed(), "the API server accepts the shipped policy")
		selector, err := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector)
		Expect(err).NotTo(HaveOccurred())

		By("the author's Secret trying to allow every internal address")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "author-s3", Namespace: namespace},
			StringData: map[string]string{podcontract.EnvAllowedDestinations: "0.0.0.0/0,::/0"}}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())

		extractor := buildExtractor()
		for _, source := range internalSources {
			By("a job aimed at the " + source.name)
			job := newJob(namespace, source.name)
			job.Spec.Source = ejv1.Source{URL: source.url, SecretRef: &ejv1.SecretReference{Name: secret.Name}}
			Expect(asAuthor.Create(ctx, job)).To(Succeed())
			pod := waitForAttemptPod(ctx, job, 1)
			Expect(pod.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: podcontract.EnvAllowedDestinations}),
				"the class sets no allow-list, so the operator sets it empty above the Secret's key")
			Expect(selector.Matches(labels.Set(pod.Labels))).To(BeTrue(), "the egress policy selects the attempt Pod")

			exitCode, message := runAsKubelet(ctx, extractor, pod, secret)
			setPodFailed(ctx, pod, exitCode, message)
			failed := waitForPhase(ctx, job, ejv1.PhaseFailed)
			Expect(failed.Status.LastFailure).NotTo(BeNil())
			Expect(failed.Status.LastFailure.ErrorType).To(Equal(podcontract.DestinationNotAllowed))
			Expect(failed.Status.LastFailure.Class).To(Equal(ejv1.ClassPermanent))
			Expect(failed.Status.LastFailure.Message).To(ContainSubstring("refused to connect to a " + source.class + " address"))
			Expect(failed.Status.RetryCount).To(BeZero())
			Expect(failed.Status.Result).To(BeNil())
		}
	})
})

// buildExtractor builds the reference extractor as its image does.
func buildExtractor() string {
	GinkgoHelper()
	binary := filepath.Join(GinkgoT().TempDir(), "extractor")
	build := exec.Command("go", "build", "-o", binary, "../cmd/extractor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "building the extractor: %s", out)
	return binary
}

// runAsKubelet runs the extractor as a kubelet would run the Pod's
// container: with the Secret's keys as the environment, then the
// container's env above them (Kubernetes gives env precedence over
// envFrom), in a network namespace of its own with no interface up, so that
// nothing it tries leaves the machine. It needs root; without it the spec
// is skipped here, after what it proved of the API.
func runAsKubelet(ctx context.Context, binary string, pod *corev1.Pod, secret *corev1.Secret) (exitCode int32, message string) {
	GinkgoHelper()
	if os.Geteuid() != 0 {
		Skip("running the extractor in a network namespace of its own needs root")
	}
	container := pod.Spec.Containers[0]
	env := map[string]string{}
	for _, from := range container.EnvFrom {
		Expect(from.SecretRef).NotTo(BeNil())
		Expect(from.SecretRef.Name).To(Equal(secret.Name))
		for key, value := range secret.StringData {
			env[key] = value
		}
	}
	for _, e := range container.Env {
		Expect(e.ValueFrom).To(BeNil(), "the test class reads nothing from ConfigMaps")
		env[e.Name] = e.Value
	}
	terminationLog := filepath.Join(GinkgoT().TempDir(), "termination-log")
	env["EXTRACTION_TERMINATION_LOG"] = terminationLog

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary)
	for name, value := range env {
		cmd.Env = append(cmd.Env, name+"="+value)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	Expect(errors.As(err, &exitErr)).To(BeTrue(), "the extractor failed to run or succeeded: %v\n%s", err, out)
	written, err := os.ReadFile(terminationLog)
	Expect(err).NotTo(HaveOccurred())
	return int32(exitErr.ExitCode()), string(written)
}

// attemptEgressPolicy reads the egress policy that config/networkpolicy ships.
func attemptEgressPolicy(t *testing.T) *networkingv1.NetworkPolicy {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "config", "networkpolicy", "policy", "attempt-egress.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policy := &networkingv1.NetworkPolicy{}
	if err := sigsyaml.UnmarshalStrict(raw, policy); err != nil {
		t.Fatal(err)
	}
	return policy
}

// egressAllowsAddress says whether the policy lets a Pod it selects send to
// the address, as a CNI plugin reads ipBlocks: some rule has a block that
// contains the address and excepts no range that does.
func egressAllowsAddress(t *testing.T, policy *networkingv1.NetworkPolicy, addr netip.Addr) bool {
	t.Helper()
	contains := func(cidr string) bool {
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil {
			t.Fatalf("the policy's %q: %v", cidr, err)
		}
		return prefix.Contains(addr)
	}
	for _, rule := range policy.Spec.Egress {
		for _, peer := range rule.To {
			if peer.IPBlock != nil && contains(peer.IPBlock.CIDR) && !slices.ContainsFunc(peer.IPBlock.Except, contains) {
				return true
			}
		}
	}
	return false
}

func TestAttemptEgressPolicy(t *testing.T) {
	policy := attemptEgressPolicy(t)
	selector, err := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("it selects the attempt Pods the operator builds, whatever labels the job adds", func(t *testing.T) {
		job := testJob("drawing", "1")
		job.Spec.PodTemplate = &ejv1.PodTemplate{Metadata: ejv1.PodTemplateMetadata{Labels: map[string]string{"team": "cad"}}}
		for attempt := int32(1); attempt <= 3; attempt++ {
			pod, err := attemptPod(job, attempt, testClass("reference", "img", ejv1.FormatDXF))
			if err != nil {
				t.Fatal(err)
			}
			if !selector.Matches(labels.Set(pod.Labels)) {
				t.Errorf("attempt %d's Pod, labelled %v, is not selected by %s", attempt, pod.Labels, selector)
			}
		}
	})
	t.Run("it selects neither the operator's own Pod nor another Pod", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("..", "config", "manager", "manager.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		deployments := 0
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			deployment := &appsv1.Deployment{}
			if err := sigsyaml.Unmarshal([]byte(doc), deployment); err != nil || deployment.Kind != "Deployment" {
				continue
			}
			deployments++
			if pod := deployment.Spec.Template.Labels; selector.Matches(labels.Set(pod)) {
				t.Errorf("the operator's Pod, labelled %v, is selected: it would lose its way to the API server", pod)
			}
		}
		if deployments != 1 {
			t.Fatalf("config/manager/manager.yaml has %d Deployments, want the operator's", deployments)
		}
		if selector.Matches(labels.Set{"app": "other"}) {
			t.Error("a Pod without the operator's labels is selected")
		}
	})
	t.Run("it limits egress only", func(t *testing.T) {
		if !slices.Equal(policy.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) || len(policy.Spec.Ingress) != 0 {
			t.Errorf("policyTypes %v, ingress %v; want Egress alone", policy.Spec.PolicyTypes, policy.Spec.Ingress)
		}
	})
	t.Run("it lets DNS out to the cluster's resolver on port 53 only", func(t *testing.T) {
		dns := policy.Spec.Egress[0]
		udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
		port := intstr.FromInt32(53)
		wantPorts := []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}, {Protocol: &tcp, Port: &port}}
		wantTo := []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}}
		if diff := cmp.Diff(wantPorts, dns.Ports); diff != "" {
			t.Errorf("DNS ports (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantTo, dns.To); diff != "" {
			t.Errorf("DNS peers (-want +got):\n%s", diff)
		}
	})
	t.Run("it lets nothing out to private, link-local, loopback, carrier-grade NAT or multicast addresses", func(t *testing.T) {
		for _, addr := range []string{
			"169.254.169.254", "fd00:ec2::254", // cloud metadata
			"10.96.0.1", "10.244.1.7", "172.20.0.10", "192.168.49.2", "fd12:3456::1", // Services, Pods, nodes
			"100.64.0.1", "127.0.0.1", "::1", "169.254.20.10", "fe80::1", "0.0.0.0", "224.0.0.251", "ff02::fb",
			"64:ff9b::a9fe:a9fe", // the metadata service behind NAT64
		} {
			if egressAllowsAddress(t, policy, netip.MustParseAddr(addr)) {
				t.Errorf("%s is let out", addr)
			}
		}
	})
	t.Run("it lets the internet out on any port", func(t *testing.T) {
		for _, addr := range []string{"1.1.1.1", "52.95.110.1", "100.128.0.1", "172.32.0.1", "2606:4700::1111", "2a05:d018::1"} {
			if !egressAllowsAddress(t, policy, netip.MustParseAddr(addr)) {
				t.Errorf("%s is not let out", addr)
			}
		}
		if internet := policy.Spec.Egress[1]; len(internet.Ports) != 0 {
			t.Errorf("the internet rule limits ports to %v", internet.Ports)
		}
	})
}

func TestTheAllowListComesOnlyFromTheClass(t *testing.T) {
	allowList := func(pod *corev1.Pod) []corev1.EnvVar {
		return slices.DeleteFunc(slices.Clone(pod.Spec.Containers[0].Env), func(e corev1.EnvVar) bool {
			return e.Name != podcontract.EnvAllowedDestinations
		})
	}
	t.Run("a class without an allow-list gets an empty one, which the job's Secret cannot override", func(t *testing.T) {
		pod, err := attemptPod(testJob("a", "1"), 1, testClass("plain", "img", ejv1.FormatDXF))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]corev1.EnvVar{{Name: podcontract.EnvAllowedDestinations}}, allowList(pod)); diff != "" {
			t.Errorf("allow-list env (-want +got):\n%s", diff)
		}
		if len(pod.Spec.Containers[0].EnvFrom) != 1 {
			t.Fatalf("envFrom %v, want the job's Secret, below env", pod.Spec.Containers[0].EnvFrom)
		}
	})
	t.Run("a class's allow-list, a value or a ConfigMap key, is passed on alone", func(t *testing.T) {
		fromConfigMap := &ejv1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "egress"}, Key: "allowed"}}
		for _, env := range []ejv1.EnvVar{
			{Name: podcontract.EnvAllowedDestinations, Value: "10.20.0.0/16,minio.storage.svc"},
			{Name: podcontract.EnvAllowedDestinations, ValueFrom: fromConfigMap},
		} {
			class := testClass("internal-s3", "img", ejv1.FormatDXF)
			class.Spec.Env = []ejv1.EnvVar{env}
			pod, err := attemptPod(testJob("a", "1"), 1, class)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(classEnv(class.Spec.Env), allowList(pod)); diff != "" || len(allowList(pod)) != 1 {
				t.Errorf("allow-list env (-want +got):\n%s", diff)
			}
		}
	})
}
