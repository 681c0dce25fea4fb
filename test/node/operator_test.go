//go:build node

package node

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/harness"
)

// leaderElectionID is the operator's lease, as cmd/main.go names it.
const leaderElectionID = "extraction-operator.extraction.pybase.io"

// leaseHolder is the identity holding the operator's lease: the leader
// Pod's name and a suffix.
func leaseHolder() (string, error) {
	lease := &coordinationv1.Lease{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: leaderElectionID}, lease)
	if err != nil || lease.Spec.HolderIdentity == nil {
		return "", err
	}
	return *lease.Spec.HolderIdentity, nil
}

// nodeCommand runs `hack/node.sh NAME ARGS`: crictl or ctr against the
// node's containerd.
func nodeCommand(name string, args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(root, "hack", "node.sh"), append([]string{name}, args...)...)
}

func metricsSpecs() {
	Describe("the operator's metrics, through its Service and kube-proxy", func() {
		const scraperNamespace = "node-metrics"
		var url string

		scrape := func(token string) (code int, body string) {
			GinkgoHelper()
			Eventually(func() (err error) {
				code, body, err = harness.Scrape(url, token)
				return err
			}, 30*time.Second).Should(Succeed())
			return code, body
		}

		BeforeAll(func() {
			svc := &corev1.Service{}
			Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: "extraction-operator-controller-manager-metrics"}, svc)).To(Succeed())
			url = "https://" + svc.Spec.ClusterIP + ":8443/metrics"
			kubectlOK("create", "namespace", scraperNamespace)
			kubectlOK("-n", scraperNamespace, "create", "serviceaccount", "scraper")
			// config/rbac's metrics-reader role, as a Prometheus is bound to it.
			kubectlOK("create", "clusterrolebinding", "node-scraper-metrics-reader",
				"--clusterrole=extraction-operator-metrics-reader", "--serviceaccount="+scraperNamespace+":scraper")
		})

		It("answers a scrape with the metrics-reader role's token", func() {
			token := strings.TrimSpace(kubectlOK("-n", scraperNamespace, "create", "token", "scraper", "--duration=10m"))
			code, body := scrape(token)
			Expect(code).To(Equal(http.StatusOK))
			Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
		})

		It("refuses an anonymous scrape", func() {
			code, _ := scrape("")
			Expect(code).To(Equal(http.StatusUnauthorized))
		})
	})
}

func bringDownSpecs() {
	It("comes down leaving nothing behind, and comes up again on the same machine", func() {
		bringDown()
		Expect(cmp.Diff(hostBefore, readHost())).To(BeEmpty(), "hack/node.sh down left something behind (-before +after)")

		bringUp()
		Expect(kubectlOK("get", "node", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`)).To(Equal("True"))
		bringDown()
		Expect(cmp.Diff(hostBefore, readHost())).To(BeEmpty(), "the second hack/node.sh down left something behind (-before +after)")
	})
}
