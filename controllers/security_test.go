package controllers

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

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
