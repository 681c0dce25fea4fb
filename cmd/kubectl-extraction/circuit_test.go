package main

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// openCircuit is the status of a circuit that opened a minute before testNow
// and lets its probes through 40 seconds after it.
func openCircuit() ejv1.ExtractorClassStatus {
	return ejv1.ExtractorClassStatus{Circuit: &ejv1.CircuitStatus{
		State: ejv1.CircuitOpen, Since: &metav1.Time{Time: testNow.Add(-time.Minute)},
		ReopenAt: &metav1.Time{Time: testNow.Add(40 * time.Second)}, OpenCount: 1,
		LastErrorType: "ServiceUnavailable", LastMessage: "503", LastHandledResetRequest: "2031-05-06T07:08:09Z",
	}}
}

func withBreaker(s *ejv1.ExtractorClassSpec) { s.CircuitBreaker = &ejv1.CircuitBreaker{} }

var _ = Describe("circuit", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("resets an open circuit with a fresh token, and says what the circuit was", func() {
		newClass(ctx, "werk24-api", openCircuit(), withBreaker)

		out, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "circuit", "reset", "werk24-api")

		Expect(err).NotTo(HaveOccurred())
		// The token made of testNow was handled already: the next one counts on.
		Expect(out).To(HavePrefix("extractorclass werk24-api: circuit reset requested " +
			"(extraction.pybase.io/circuit-reset-requested-at=2031-05-06T07:08:09Z-2); it was Open after ServiceUnavailable, probes in 40s\n"))
		class := &ejv1.ExtractorClass{}
		Expect(admin.Get(ctx, types.NamespacedName{Name: "werk24-api"}, class)).To(Succeed())
		Expect(class.Annotations).To(HaveKeyWithValue(ejv1.CircuitResetRequestAnnotation, "2031-05-06T07:08:09Z-2"))
	})

	It("refuses a class without a circuit breaker", func() {
		newClass(ctx, "plain", ejv1.ExtractorClassStatus{}, nil)

		_, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "circuit", "reset", "plain")

		Expect(err).To(MatchError("extractorclass plain has no spec.circuitBreaker: there is no circuit to reset"))
	})

	It("shows the circuit in classes when a class has a breaker", func() {
		newClass(ctx, "werk24-api", openCircuit(), withBreaker)
		newClass(ctx, "pdf", ejv1.ExtractorClassStatus{}, nil)
		var out strings.Builder

		Expect(Classes(ctx, admin, &out, testNow)).To(Succeed())

		Expect(out.String()).To(Equal(strings.Join([]string{
			"NAME         FORMATS   DEFAULT   RUNNING/MAX   QUEUED   PER NAMESPACE   CIRCUIT",
			"pdf          pdf       false     0/-           0        -               -",
			"werk24-api   pdf       false     0/-           0        -               Open after ServiceUnavailable, probes in 40s",
			"",
		}, "\n")))
	})

	It("shows the circuit of a job's class in status", func() {
		newClass(ctx, "werk24-api", openCircuit(), withBreaker)
		ns := newNamespace(ctx)
		jobIn(ctx, ns, "drawing", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseRetrying, ExtractorClassName: "werk24-api", Retries: "1/3"})

		out, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "-n", ns, "status", "drawing")

		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Circuit:     Open after ServiceUnavailable, probes in 40s (ExtractorClass werk24-api)\n"))
	})
})
