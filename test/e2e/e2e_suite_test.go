//go:build e2e

// Package e2e tests the operator end to end on a local KWOK cluster: a real
// API server, scheduler and garbage collector, with KWOK playing the kubelet
// through the stages in config/kwok. Run it with `make test-e2e`.
//
// The suite deploys config/default (namespace, CRD, RBAC, Deployment) and runs
// the operator as a process with the token of the ServiceAccount that the
// Deployment uses, so every scenario also shows that the generated RBAC is
// enough. No image can be built here, so the Deployment's own Pod only
// proves that its template passes the "restricted" Pod Security Standard.
//
// Environment:
//
//	E2E_CLUSTER       name of the kwok cluster (default extraction-e2e); created
//	                  with hack/kwok-cluster.sh and deleted afterwards
//	E2E_KUBECONFIG    use this cluster instead, and leave it alone afterwards
//	E2E_KEEP_CLUSTER  set to keep the kwok cluster after the run, for debugging
//	KUBECTL           kubectl to use (default: kubectl on PATH)
//
// The operator process, the builders and the simulated kubelet that the
// stages are checked against come from test/harness.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/operator"
)

const (
	// What config/default deploys.
	operatorNamespace      = "extraction-system"
	operatorServiceAccount = "extraction-operator-controller-manager"
	crdName                = "extractionjobs.extraction.pybase.io"
)

var (
	root           string // the repository
	artifacts      string // bin/e2e: logs and kubeconfigs of this run
	clusterName    string
	ownCluster     bool // the suite created the cluster and deletes it
	kubeconfig     string
	kubectlBinary  string
	restConfig     *rest.Config
	k8s            client.WithWatch
	op             *operator.Process
	operatorConfig string // kubeconfig with the operator ServiceAccount's token
	metricsAddr    string
	suiteStart     time.Time
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(3 * time.Minute)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)
	SetDefaultConsistentlyPollingInterval(500 * time.Millisecond)
	RunSpecs(t, "End-to-end on a KWOK cluster")
}

var _ = BeforeSuite(func() {
	suiteStart = time.Now()
	// The suite's own caches (the simulated kubelet's) log here.
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter)))
	var err error
	root, err = harness.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	artifacts = filepath.Join(root, "bin", "e2e")
	Expect(os.MkdirAll(artifacts, 0o755)).To(Succeed())
	kubectlBinary = harness.EnvOr("KUBECTL", "kubectl")
	// kubectl's discovery cache stays out of $HOME, for the scripts too.
	if os.Getenv("KUBECACHEDIR") == "" {
		Expect(os.Setenv("KUBECACHEDIR", filepath.Join(root, "bin", "kubectl-cache"))).To(Succeed())
	}

	By("bringing up the kwok cluster")
	clusterName = harness.EnvOr("E2E_CLUSTER", "extraction-e2e")
	if kubeconfig = os.Getenv("E2E_KUBECONFIG"); kubeconfig == "" {
		start := time.Now()
		out, err := harness.Run(exec.Command(filepath.Join(root, "hack", "kwok-cluster.sh"), "up", clusterName))
		Expect(err).NotTo(HaveOccurred(), out)
		ownCluster = true
		kubeconfig = strings.TrimSpace(harness.LastLine(out))
		GinkgoWriter.Printf("kwok cluster %s ready in %s\n", clusterName, time.Since(start).Round(time.Millisecond))
	}
	restConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	restConfig.QPS, restConfig.Burst = 50, 100
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ejv1.AddToScheme(scheme))
	k8s, err = client.NewWithWatch(restConfig, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("deploying config/default as `make deploy` does: namespace, CRDs, RBAC, Deployment and the default class")
	deploy := exec.Command(filepath.Join(root, "hack", "deploy.sh"), "apply")
	deploy.Env = append(os.Environ(), "KUBECTL="+kubectlBinary, "KUBECONFIG="+kubeconfig,
		"DEPLOY_OVERLAY="+filepath.Join(artifacts, "deploy"))
	_, err = harness.Run(deploy)
	Expect(err).NotTo(HaveOccurred())
	kubectlOK("wait", "--for=condition=Established", "crd/"+crdName, "--timeout=60s")

	By("building the operator")
	binary, err := operator.Build(root, artifacts)
	Expect(err).NotTo(HaveOccurred())

	By("running the operator as ServiceAccount " + operatorServiceAccount)
	token := kubectlOK("-n", operatorNamespace, "create", "token", operatorServiceAccount, "--duration=2h")
	operatorConfig = filepath.Join(artifacts, "operator.kubeconfig")
	writeTokenKubeconfig(operatorConfig, strings.TrimSpace(token))
	metricsAddr = freeAddress()
	probeAddr := freeAddress()
	args := []string{
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + probeAddr,
		"--image-pull-grace-period=3s",
		// As the Deployment does; outside the cluster the lease's namespace
		// must be given.
		"--leader-elect", "--leader-election-namespace=" + operatorNamespace,
	}
	// One log per run.
	Expect(os.RemoveAll(filepath.Join(artifacts, "operator.log"))).To(Succeed())
	op, err = operator.New(artifacts, "operator", append([]string{binary, "--kubeconfig", operatorConfig}, args...),
		operator.Options{Markers: []string{operator.JobWorkersStarted}})
	Expect(err).NotTo(HaveOccurred())
	Expect(op.Start()).To(Succeed())
	Eventually(func() (int, error) {
		if err := op.Exited(); err != nil {
			return 0, StopTrying(err.Error() + ":\n" + op.LogTail(30))
		}
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, time.Minute).Should(Equal(http.StatusOK))
	GinkgoWriter.Printf("suite ready after %s\n", time.Since(suiteStart).Round(time.Millisecond))
})

var _ = AfterSuite(func() {
	if op != nil {
		op.Stop()
		GinkgoWriter.Printf("operator log: %s\n", op.LogPath)
	}
	if ownCluster && os.Getenv("E2E_KEEP_CLUSTER") == "" {
		out, err := harness.Run(exec.Command(filepath.Join(root, "hack", "kwok-cluster.sh"), "down", clusterName))
		Expect(err).NotTo(HaveOccurred(), out)
	}
	GinkgoWriter.Printf("suite took %s\n", time.Since(suiteStart).Round(time.Millisecond))
})

// A failed spec shows what the operator saw and did.
var _ = ReportAfterEach(func(report SpecReport) {
	if !report.Failed() || op == nil {
		return
	}
	fmt.Fprintf(GinkgoWriter, "\n--- last lines of %s:\n%s\n", op.LogPath, op.LogTail(40))
	out, _ := kubectl("get", "extractionjobs,pods", "-A", "-o", "wide")
	fmt.Fprintf(GinkgoWriter, "--- kubectl get extractionjobs,pods -A:\n%s\n", out)
})

// kubectl runs kubectl as the cluster's admin.
func kubectl(args ...string) (string, error) {
	return harness.Run(exec.Command(kubectlBinary, append([]string{"--kubeconfig", kubeconfig}, args...)...))
}

func kubectlOK(args ...string) string {
	GinkgoHelper()
	out, err := kubectl(args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

func freeAddress() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// writeTokenKubeconfig writes a kubeconfig for the admin kubeconfig's cluster
// that authenticates with a bearer token.
func writeTokenKubeconfig(path, token string) {
	admin, err := clientcmd.LoadFromFile(kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	current := admin.Contexts[admin.CurrentContext]
	Expect(current).NotTo(BeNil())
	config := clientcmdapi.NewConfig()
	config.Clusters["kwok"] = admin.Clusters[current.Cluster].DeepCopy()
	config.AuthInfos["token"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["token"] = &clientcmdapi.Context{Cluster: "kwok", AuthInfo: "token"}
	config.CurrentContext = "token"
	Expect(clientcmd.WriteToFile(*config, path)).To(Succeed())
}

// createNamespace creates a namespace that enforces the "restricted" Pod
// Security Standard, so every attempt Pod the operator creates there must
// meet it, and waits for the ServiceAccount that Pods need.
func createNamespace(name string) {
	GinkgoHelper()
	ns := builders.Namespace(name, builders.RestrictedLabels)
	ctx := context.Background()
	err := k8s.Create(ctx, ns)
	if apierrors.IsAlreadyExists(err) {
		// Left over by an earlier run against a kept cluster: start afresh.
		// (It may be terminating already, which makes Delete answer Conflict.)
		_ = k8s.Delete(ctx, ns)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(ns), &corev1.Namespace{}))
		}).Should(BeTrue(), "namespace %s left over by an earlier run is not going away", name)
		err = k8s.Create(ctx, ns)
	}
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: name, Name: "default"}, &corev1.ServiceAccount{})
	}).Should(Succeed())
}

func getJob(namespace, name string) (*ejv1.ExtractionJob, error) {
	job := &ejv1.ExtractionJob{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, job)
	return job, err
}

// jobPods lists the Pods of the job with the given UID.
func jobPods(namespace string, uid string) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	err := k8s.List(context.Background(), pods, client.InNamespace(namespace),
		client.MatchingLabels{ejv1.JobUIDLabel: uid})
	return pods.Items, err
}

func phaseOf(namespace, name string) func() (ejv1.Phase, error) {
	return func() (ejv1.Phase, error) {
		job, err := getJob(namespace, name)
		if err != nil {
			return "", err
		}
		return job.Status.Phase, nil
	}
}

var errNotYet = errors.New("not yet")
