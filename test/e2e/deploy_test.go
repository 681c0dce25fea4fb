//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/harness"
)

// leaderElectionID is the operator's lease, as cmd/main.go names it.
const leaderElectionID = "extraction-operator.extraction.pybase.io"

const operatorUser = "system:serviceaccount:" + operatorNamespace + ":" + operatorServiceAccount

// canI asks the API server whether a user may do something.
func canI(user string, args ...string) string {
	GinkgoHelper()
	out, err := kubectl(append([]string{"auth", "can-i", "--as=" + user}, args...)...)
	answer := strings.TrimSpace(out)
	if err != nil && answer != "no" {
		Fail(err.Error())
	}
	return answer
}

var _ = Describe("The deployment in config/default", func() {
	// Every other spec of this suite runs against the operator with exactly
	// these permissions, which shows they are enough; these show they are
	// not more than needed.
	DescribeTable("grants the operator's ServiceAccount",
		func(want string, args ...string) {
			Expect(canI(operatorUser, args...)).To(Equal(want), "kubectl auth can-i %s", strings.Join(args, " "))
		},
		// What the operator does.
		Entry(nil, "yes", "watch", "extractionjobs.extraction.pybase.io", "-A"),
		Entry(nil, "yes", "list", "extractionjobs.extraction.pybase.io", "-A"),
		Entry(nil, "yes", "patch", "extractionjobs.extraction.pybase.io", "--subresource=status", "-n", "default"),
		Entry(nil, "yes", "create", "pods", "-n", "default"),
		Entry(nil, "yes", "delete", "pods", "-n", "default"),
		Entry(nil, "yes", "watch", "pods", "-A"),
		// Patch removes the attempt-tracking finalizer once an outcome is recorded.
		Entry(nil, "yes", "patch", "pods", "-n", "default"),
		Entry(nil, "yes", "create", "events.events.k8s.io", "-n", "default"),
		Entry(nil, "yes", "create", "tokenreviews.authentication.k8s.io"),
		Entry(nil, "yes", "create", "subjectaccessreviews.authorization.k8s.io"),
		Entry(nil, "yes", "update", "leases.coordination.k8s.io", "-n", operatorNamespace),
		// ExtractorClasses: read them, write their status; namespaces for
		// their namespaceSelector.
		Entry(nil, "yes", "get", "extractorclasses.extraction.pybase.io"),
		Entry(nil, "yes", "list", "extractorclasses.extraction.pybase.io"),
		Entry(nil, "yes", "watch", "extractorclasses.extraction.pybase.io"),
		Entry(nil, "yes", "update", "extractorclasses.extraction.pybase.io", "--subresource=status"),
		Entry(nil, "yes", "patch", "extractorclasses.extraction.pybase.io", "--subresource=status"),
		Entry(nil, "yes", "get", "namespaces"),
		Entry(nil, "yes", "list", "namespaces"),
		Entry(nil, "yes", "watch", "namespaces"),
		// Clusters with the OwnerReferencesPermissionEnforcement admission
		// plugin (OpenShift, hardened clusters) refuse a Pod whose owner
		// reference sets blockOwnerDeletion unless its creator may update the
		// owner's finalizers.
		Entry(nil, "yes", "update", "extractionjobs.extraction.pybase.io", "--subresource=finalizers", "-n", "default"),
		// What it must not: a GitOps tool owns the spec and the annotations.
		Entry(nil, "no", "update", "extractionjobs.extraction.pybase.io", "-n", "default"),
		Entry(nil, "no", "patch", "extractionjobs.extraction.pybase.io", "-n", "default"),
		Entry(nil, "no", "create", "extractionjobs.extraction.pybase.io", "-n", "default"),
		Entry(nil, "no", "update", "pods", "-n", "default"),
		// Only administrators say what runs.
		Entry(nil, "no", "create", "extractorclasses.extraction.pybase.io"),
		Entry(nil, "no", "update", "extractorclasses.extraction.pybase.io"),
		Entry(nil, "no", "patch", "extractorclasses.extraction.pybase.io"),
		Entry(nil, "no", "delete", "extractorclasses.extraction.pybase.io"),
		Entry(nil, "no", "update", "namespaces"),
		Entry(nil, "no", "create", "pods", "--subresource=exec", "-n", "default"),
		Entry(nil, "no", "get", "secrets", "-n", "default"),
		Entry(nil, "no", "list", "secrets", "-A"),
		Entry(nil, "no", "get", "configmaps", "-n", "default"),
		Entry(nil, "no", "create", "serviceaccounts", "--subresource=token", "-n", "default"),
		Entry(nil, "no", "create", "deployments.apps", "-n", operatorNamespace),
		Entry(nil, "no", "update", "leases.coordination.k8s.io", "-n", "default"),
		Entry(nil, "no", "delete", "nodes"),
		Entry(nil, "no", "bind", "clusterroles.rbac.authorization.k8s.io"),
		Entry(nil, "no", "impersonate", "users"),
		Entry(nil, "no", "*", "*", "-A"),
	)

	It("lets the operator hold its leader election lease in its own namespace", func() {
		lease := &coordinationv1.Lease{}
		Eventually(func() (string, error) {
			err := k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: leaderElectionID}, lease)
			if err != nil || lease.Spec.HolderIdentity == nil {
				return "", err
			}
			return *lease.Spec.HolderIdentity, nil
		}, time.Minute).ShouldNot(BeEmpty())
	})

	It("has a Deployment whose Pod passes the restricted Pod Security Standard", func() {
		By("the namespace enforcing restricted")
		privileged := `apiVersion: v1
kind: Pod
metadata:
  name: privileged
spec:
  containers:
  - name: c
    image: busybox
    securityContext:
      privileged: true
`
		cmd := exec.Command(kubectlBinary, "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-n", operatorNamespace, "-f", "-")
		cmd.Stdin = strings.NewReader(privileged)
		_, err := harness.Run(cmd)
		Expect(err).To(MatchError(ContainSubstring("violates PodSecurity")))

		By("the Deployment's ReplicaSet creating its Pod there")
		Eventually(func() ([]corev1.Pod, error) {
			pods := &corev1.PodList{}
			err := k8s.List(context.Background(), pods, client.InNamespace(operatorNamespace),
				client.MatchingLabels{"app.kubernetes.io/name": "extraction-operator"})
			return pods.Items, err
		}, time.Minute).ShouldNot(BeEmpty())
	})

	Describe("serves metrics over HTTPS", Ordered, func() {
		const ns = "e2e-metrics"
		url := func() string { return "https://" + metricsAddr + "/metrics" }
		get := func(token string) (code int, body string) {
			GinkgoHelper()
			Eventually(func() (err error) {
				code, body, err = harness.Scrape(url(), token)
				return err
			}, 30*time.Second).Should(Succeed())
			return code, body
		}
		token := func(sa string) string {
			GinkgoHelper()
			return strings.TrimSpace(kubectlOK("-n", ns, "create", "token", sa, "--duration=10m"))
		}

		BeforeAll(func() {
			createNamespace(ns)
			kubectlOK("-n", ns, "create", "serviceaccount", "scraper")
			kubectlOK("-n", ns, "create", "serviceaccount", "stranger")
			// config/rbac's metrics-reader role, as a Prometheus is bound to it.
			kubectlOK("create", "clusterrolebinding", "e2e-scraper-metrics-reader",
				"--clusterrole=extraction-operator-metrics-reader", "--serviceaccount="+ns+":scraper")
			DeferCleanup(func() {
				_, _ = kubectl("delete", "clusterrolebinding", "e2e-scraper-metrics-reader", "--ignore-not-found")
				_, _ = kubectl("delete", "namespace", ns, "--wait=false")
			})
		})

		It("refuses a client without credentials", func() {
			code, _ := get("")
			Expect(code).To(Equal(http.StatusUnauthorized))
		})

		It("refuses an authenticated client without the metrics-reader role", func() {
			code, _ := get(token("stranger"))
			Expect(code).To(Equal(http.StatusForbidden))
		})

		It("serves a client with the metrics-reader role", func() {
			code, body := get(token("scraper"))
			Expect(code).To(Equal(http.StatusOK))
			Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
		})
	})
})
