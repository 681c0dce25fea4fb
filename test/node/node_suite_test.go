//go:build node

// Package node tests the operator on a real node: a kubelet built from
// k8s.io/kubernetes, containerd with Debian's runc and CNI plugins, and
// kube-proxy, brought up on this machine by hack/node.sh. The operator runs
// from its image (`make images`) as the Deployment of config/default, and
// the jobs run the real extractor image, or a test-only one, against an
// HTTP server in this test process, on the Pods' bridge. Run it, as root,
// with `make test-node`.
//
// Where the end-to-end suite on KWOK checks what the operator makes of what
// a simulated kubelet reports, this one checks what a real kubelet reports:
// termination messages, FallbackToLogsOnError, OOMKilled under a memory
// limit, activeDeadlineSeconds, ErrImageNeverPull, a read-only root file
// system under UID 65532.
//
// Environment:
//
//	KUBECTL       kubectl to use (default: kubectl on PATH)
//	NODE_RESULTS  the directory the latency experiment (label "latency",
//	              `make bench-node`) writes its figures to
package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/api/podcontract"
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
)

const (
	// What config/default deploys.
	operatorNamespace  = "extraction-system"
	operatorDeployment = "extraction-operator-controller-manager"
	// The images `make images` builds.
	extractorImage     = "ghcr.io/pybase/extraction-extractor:v0.1.0"
	testExtractorImage = "ghcr.io/pybase/extraction-testextractor:v0.1.0"
	// The Pods' bridge's gateway, this machine as a Pod sees it (hack/node.sh).
	gateway = "10.88.0.1"
	// imagePullGracePeriod replaces the operator's 5-minute default, so that
	// the ErrImageNeverPull job fails in seconds.
	imagePullGracePeriod = "20s"
)

var (
	root          string // the repository
	nodeDir       string // bin/node, resolved: hack/node.sh's state and logs
	artifacts     string // bin/node-test: what this run keeps
	kubectlBinary string
	kubeconfig    string
	k8s           client.Client
	k8sWatch      client.WithWatch
	files         *fileServer
	hostBefore    hostState
	nodeIsUp      bool
	suiteReady    bool            // BeforeSuite finished
	bringUps      []time.Duration // each `hack/node.sh up`
	suiteStart    time.Time
)

func TestNode(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(3 * time.Minute)
	SetDefaultEventuallyPollingInterval(500 * time.Millisecond)
	RunSpecs(t, "A real node")
}

var _ = BeforeSuite(func() {
	suiteStart = time.Now()
	Expect(os.Geteuid()).To(BeZero(), "the real-node tests need root: they install packages and start a kubelet (make test: NODE_TESTS=skip skips them)")
	var err error
	root, err = harness.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(filepath.Join(root, "bin", "node"), 0o755)).To(Succeed())
	nodeDir, err = filepath.EvalSymlinks(filepath.Join(root, "bin", "node"))
	Expect(err).NotTo(HaveOccurred())
	artifacts = filepath.Join(root, "bin", "node-test")
	Expect(os.RemoveAll(artifacts)).To(Succeed())
	Expect(os.MkdirAll(artifacts, 0o755)).To(Succeed())
	kubectlBinary = harness.EnvOr("KUBECTL", "kubectl")
	if os.Getenv("KUBECACHEDIR") == "" {
		Expect(os.Setenv("KUBECACHEDIR", filepath.Join(root, "bin", "kubectl-cache"))).To(Succeed())
	}

	// The leftover check compares with the machine as it was before the node.
	_, err = harness.Run(exec.Command(filepath.Join(root, "hack", "node.sh"), "status"))
	Expect(err).To(HaveOccurred(), "a real node runs already (make dev DEV_NODE=real?): bring it down first with hack/node.sh down")
	hostBefore = readHost()
	bringUp()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ejv1.AddToScheme(scheme))
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	k8sWatch, err = client.NewWithWatch(config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	k8s = k8sWatch

	By("deploying config/default as `make deploy` does, from the images of `make images`")
	deploy := exec.Command(filepath.Join(root, "hack", "deploy.sh"), "apply")
	deploy.Env = append(os.Environ(), "KUBECTL="+kubectlBinary, "KUBECONFIG="+kubeconfig,
		"DEPLOY_OVERLAY="+filepath.Join(artifacts, "deploy"))
	out, err := harness.Run(deploy)
	Expect(err).NotTo(HaveOccurred(), out)
	// The one change to what config/default ships: a shorter wait for an
	// image that is not there, so that job's failure comes in seconds.
	kubectlOK("-n", operatorNamespace, "patch", "deployment", operatorDeployment, "--type=json", "-p",
		`[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--image-pull-grace-period=`+imagePullGracePeriod+`"}]`)
	kubectlOK("-n", operatorNamespace, "rollout", "status", "deployment/"+operatorDeployment, "--timeout=3m")

	By("allowing the file server's address on the reference class, as an admin allows an internal store")
	// The sources are served on the bridge's gateway, a private address the
	// reference extractor refuses by default (issue 16); the class's env is
	// where an admin allows one, and the job's author cannot.
	Eventually(func() error {
		class := &ejv1.ExtractorClass{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: "reference"}, class); err != nil {
			return err
		}
		class.Spec.Env = append(class.Spec.Env, ejv1.EnvVar{Name: podcontract.EnvAllowedDestinations, Value: gateway})
		return k8s.Update(context.Background(), class)
	}).Should(Succeed())

	By("serving the sources on the Pods' bridge")
	files, err = startFileServer(gateway + ":0")
	Expect(err).NotTo(HaveOccurred())
	suiteReady = true
	GinkgoWriter.Printf("suite ready after %s\n", time.Since(suiteStart).Round(time.Millisecond))
})

var _ = AfterSuite(func() {
	if files != nil {
		files.close()
	}
	if nodeIsUp {
		if !suiteReady {
			keepNodeLogs() // a failed spec kept them already
		}
		bringDown()
	}
})

// A failed spec keeps the node's logs and what the cluster looked like.
var _ = ReportAfterEach(func(report SpecReport) {
	if !report.Failed() || !nodeIsUp {
		return
	}
	keepNodeLogs()
})

// The summary line.
var _ = ReportAfterSuite("summary", func(report Report) {
	counts := map[types.SpecState]int{}
	for _, spec := range report.SpecReports {
		if spec.LeafNodeType == types.NodeTypeIt {
			counts[spec.State]++
		}
	}
	ups := make([]string, len(bringUps))
	for i, d := range bringUps {
		ups[i] = d.Round(100 * time.Millisecond).String()
	}
	fmt.Printf("real node: %d passed, %d failed, %d skipped in %s; node bring-ups %s; logs of failures under bin/node-test\n",
		counts[types.SpecStatePassed], counts[types.SpecStateFailed]+counts[types.SpecStatePanicked]+counts[types.SpecStateTimedout],
		counts[types.SpecStateSkipped]+counts[types.SpecStatePending], report.RunTime.Round(time.Second), strings.Join(ups, ", "))
})

func readHost() hostState {
	GinkgoHelper()
	binaries := []string{
		filepath.Join("kube-v1.37.2", "kubelet"), filepath.Join("kube-v1.37.2", "kube-proxy"),
		filepath.Join("containerd-v2.4.2", "containerd"), filepath.Join("containerd-v2.4.2", "containerd-shim-runc-v2"),
	}
	bin, err := filepath.EvalSymlinks(filepath.Join(root, "bin"))
	Expect(err).NotTo(HaveOccurred())
	for i, b := range binaries {
		binaries[i] = filepath.Join(bin, b)
	}
	state, err := readHostState(nodeDir, binaries)
	Expect(err).NotTo(HaveOccurred())
	return state
}

func bringUp() {
	GinkgoHelper()
	By("bringing up the real node with hack/node.sh up")
	start := time.Now()
	out, err := harness.Run(exec.Command(filepath.Join(root, "hack", "node.sh"), "up"))
	Expect(err).NotTo(HaveOccurred(), out)
	bringUps = append(bringUps, time.Since(start))
	nodeIsUp = true
	kubeconfig = harness.LastLine(out)
}

func bringDown() {
	GinkgoHelper()
	By("bringing the node down with hack/node.sh down")
	out, err := harness.Run(exec.Command(filepath.Join(root, "hack", "node.sh"), "down"))
	nodeIsUp = false
	Expect(err).NotTo(HaveOccurred(), out)
}

// keepNodeLogs copies the node's logs, with the cluster's objects and the
// operator's log, to bin/node-test/failed-TIME.
func keepNodeLogs() {
	dir := filepath.Join(artifacts, "failed-"+time.Now().Format("150405"))
	_ = os.MkdirAll(dir, 0o755)
	_, _ = harness.Run(exec.Command("cp", "-r", filepath.Join(nodeDir, "logs"), dir))
	for name, args := range map[string][]string{
		"objects.txt":  {"get", "extractionjobs,extractorclasses,pods,events", "-A", "-o", "wide"},
		"jobs.yaml":    {"get", "extractionjobs", "-A", "-o", "yaml"},
		"operator.log": {"-n", operatorNamespace, "logs", "deployment/" + operatorDeployment, "--all-containers", "--tail=-1"},
	} {
		out, err := kubectl(args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		_ = os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644)
	}
	fmt.Fprintf(GinkgoWriter, "the node's logs and the cluster's objects are in %s\n", dir)
}

func kubectl(args ...string) (string, error) {
	return harness.Run(exec.Command(kubectlBinary, append([]string{"--kubeconfig", kubeconfig}, args...)...))
}

func kubectlOK(args ...string) string {
	GinkgoHelper()
	out, err := kubectl(args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

// operatorPods lists the running Pods of the operator's Deployment, not
// those on their way out (a rollout's old Pod stays Running while it
// terminates).
func operatorPods() ([]string, error) {
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(operatorNamespace),
		client.MatchingLabels{"app.kubernetes.io/name": "extraction-operator"}); err != nil {
		return nil, err
	}
	var names []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names, nil
}

func deployment() (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: operatorDeployment}, d)
	return d, err
}
