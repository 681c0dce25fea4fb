package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
)

// readerName is a user whom RBAC lets get, list and watch ExtractionJobs and nothing else.
const readerName = "reader"

var (
	testEnv    *envtest.Environment
	adminCfg   *rest.Config
	admin      client.Client // system:masters
	testScheme = runtime.NewScheme()

	adminKubeconfig, readerKubeconfig string
)

func TestKubectlExtraction(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl extraction suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
	utilruntime.Must(ejv1.AddToScheme(testScheme))

	var err error
	testEnv, err = harness.Environment()
	Expect(err).NotTo(HaveOccurred())
	// envtest defaults to RBAC already; say so, because the Forbidden specs depend on it.
	testEnv.ControlPlane.GetAPIServer().Configure().Set("authorization-mode", "RBAC")

	adminCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "starting kube-apiserver and etcd; run `make test` to build them")
	adminCfg.QPS, adminCfg.Burst = 100, 200
	admin, err = client.New(adminCfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())

	reader, err := testEnv.AddUser(envtest.User{Name: readerName}, adminCfg)
	Expect(err).NotTo(HaveOccurred())
	grantReadOnly(readerName)

	dir := GinkgoT().TempDir()
	adminKubeconfig = writeKubeconfig(dir, "admin", adminCfg)
	readerKubeconfig = writeKubeconfigFor(dir, readerName, reader)
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// grantReadOnly lets user get, list and watch ExtractionJobs in every namespace.
func grantReadOnly(user string) {
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "extractionjob-viewer"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{ejv1.GroupVersion.Group},
			Resources: []string{"extractionjobs"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
	Expect(admin.Create(ctx, role)).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "extractionjob-viewer-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
}

func writeKubeconfig(dir, name string, cfg *rest.Config) string {
	user, err := testEnv.AddUser(envtest.User{Name: "admin-cli", Groups: []string{"system:masters"}}, cfg)
	Expect(err).NotTo(HaveOccurred())
	return writeKubeconfigFor(dir, name, user)
}

func writeKubeconfigFor(dir, name string, user *envtest.AuthenticatedUser) string {
	data, err := user.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, name+".kubeconfig")
	Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	return path
}

// newNamespace creates a namespace of its own for one spec, so that counts
// never include another spec's jobs.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kx-"}}
	Expect(admin.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// newJob creates a job with the given labels and annotations, created by
// fieldManager (as a GitOps tool would be) when it is not empty.
func newJob(ctx context.Context, namespace, name string, mutate ...func(*ejv1.ExtractionJob)) *ejv1.ExtractionJob {
	job := &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatPDF,
			Source: ejv1.Source{URL: "s3://drawings/" + name + ".pdf"},
		},
	}
	for _, m := range mutate {
		m(job)
	}
	Expect(admin.Create(ctx, job)).To(Succeed())
	return job
}

// setStatus writes the status through the status subresource, as the
// operator does.
func setStatus(ctx context.Context, job *ejv1.ExtractionJob, status ejv1.ExtractionJobStatus) {
	job.Status = status
	Expect(admin.Status().Update(ctx, job)).To(Succeed())
}

// jobIn creates a job and gives it a status in one go.
func jobIn(ctx context.Context, namespace, name string, status ejv1.ExtractionJobStatus, mutate ...func(*ejv1.ExtractionJob)) *ejv1.ExtractionJob {
	job := newJob(ctx, namespace, name, mutate...)
	setStatus(ctx, job, status)
	return job
}

func failure(errorType string, class ejv1.FailureClass, exit int32, message string) *ejv1.Failure {
	return &ejv1.Failure{ErrorType: errorType, Class: class, ExitCode: &exit, Message: message}
}

func fetch(ctx context.Context, key types.NamespacedName) *ejv1.ExtractionJob {
	job := &ejv1.ExtractionJob{}
	Expect(admin.Get(ctx, key, job)).To(Succeed())
	return job
}

// testNow is the fake clock's time: whole seconds, as metav1.Time stores them.
var testNow = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

func newClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(testNow)
}

// cli runs `kubectl extraction args…` as a user would, with the fake clock.
func cli(clk *clocktesting.FakeClock, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := NewRootCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut}, clk)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}
