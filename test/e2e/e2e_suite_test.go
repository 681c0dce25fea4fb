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
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
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
	operator       *operatorProcess
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
	var err error
	root, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	artifacts = filepath.Join(root, "bin", "e2e")
	Expect(os.MkdirAll(artifacts, 0o755)).To(Succeed())
	kubectlBinary = envOr("KUBECTL", "kubectl")
	// kubectl's discovery cache stays out of $HOME, for the scripts too.
	if os.Getenv("KUBECACHEDIR") == "" {
		Expect(os.Setenv("KUBECACHEDIR", filepath.Join(root, "bin", "kubectl-cache"))).To(Succeed())
	}

	By("bringing up the kwok cluster")
	clusterName = envOr("E2E_CLUSTER", "extraction-e2e")
	if kubeconfig = os.Getenv("E2E_KUBECONFIG"); kubeconfig == "" {
		start := time.Now()
		out, err := run(exec.Command(filepath.Join(root, "hack", "kwok-cluster.sh"), "up", clusterName))
		Expect(err).NotTo(HaveOccurred(), out)
		ownCluster = true
		kubeconfig = strings.TrimSpace(lastLine(out))
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

	By("deploying config/default: namespace, CRD, RBAC and Deployment")
	kubectlOK("apply", "--server-side", "--force-conflicts", "-k", filepath.Join(root, "config", "default"))
	kubectlOK("wait", "--for=condition=Established", "crd/"+crdName, "--timeout=60s")

	By("building the operator")
	binary := filepath.Join(artifacts, "manager")
	build := exec.Command("go", "build", "-o", binary, "./cmd")
	build.Dir = root
	out, err := run(build)
	Expect(err).NotTo(HaveOccurred(), out)

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
	operator = startOperator(binary, operatorConfig, filepath.Join(artifacts, "operator.log"), args...)
	Eventually(func() (int, error) {
		if operator.exited() {
			return 0, StopTrying("the operator exited:\n" + operator.logTail(30))
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
	if operator != nil {
		operator.stop()
		GinkgoWriter.Printf("operator log: %s\n", operator.logPath)
	}
	if ownCluster && os.Getenv("E2E_KEEP_CLUSTER") == "" {
		out, err := run(exec.Command(filepath.Join(root, "hack", "kwok-cluster.sh"), "down", clusterName))
		Expect(err).NotTo(HaveOccurred(), out)
	}
	GinkgoWriter.Printf("suite took %s\n", time.Since(suiteStart).Round(time.Millisecond))
})

// A failed spec shows what the operator saw and did.
var _ = ReportAfterEach(func(report SpecReport) {
	if !report.Failed() || operator == nil {
		return
	}
	fmt.Fprintf(GinkgoWriter, "\n--- last lines of %s:\n%s\n", operator.logPath, operator.logTail(40))
	out, _ := kubectl("get", "extractionjobs,pods", "-A", "-o", "wide")
	fmt.Fprintf(GinkgoWriter, "--- kubectl get extractionjobs,pods -A:\n%s\n", out)
})

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// run runs a command and returns its stdout; stderr is added to the error.
func run(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

// kubectl runs kubectl as the cluster's admin.
func kubectl(args ...string) (string, error) {
	return run(exec.Command(kubectlBinary, append([]string{"--kubeconfig", kubeconfig}, args...)...))
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

// insecureHTTPS talks to the operator's metrics endpoint, which serves a
// self-signed certificate.
var insecureHTTPS = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // self-signed test endpoint
}

// operatorProcess is the operator running as a child of the test.
type operatorProcess struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startOperator(binary, kubeconfig, logPath string, args ...string) *operatorProcess {
	GinkgoHelper()
	logFile, err := os.Create(logPath)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(binary, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The operator dies with the test binary, even when that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	Expect(cmd.Start()).To(Succeed())
	p := &operatorProcess{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p
}

func (p *operatorProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *operatorProcess) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *operatorProcess) logTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// createNamespace creates a namespace that enforces the "restricted" Pod
// Security Standard, so every attempt Pod the operator creates there must
// meet it, and waits for the ServiceAccount that Pods need.
func createNamespace(name string) {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
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
