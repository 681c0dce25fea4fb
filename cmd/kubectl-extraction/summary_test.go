package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// listRecorder wraps a client and keeps the limit and continue token of every List.
type listCall struct {
	limit     int64
	continued bool
}

func listRecorder(calls *[]listCall) client.Client {
	c, err := client.NewWithWatch(adminCfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	return interceptor.NewClient(c, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			o := (&client.ListOptions{}).ApplyOptions(opts)
			*calls = append(*calls, listCall{limit: o.Limit, continued: o.Continue != ""})
			return c.List(ctx, list, opts...)
		},
	})
}

// fillNamespace creates jobs in the phases and with the last errors given.
func fillNamespace(ctx context.Context, ns string, jobs map[string]ejv1.ExtractionJobStatus) {
	for name, status := range jobs {
		if status.Phase == "" {
			newJob(ctx, ns, name)
			continue
		}
		jobIn(ctx, ns, name, status)
	}
}

var _ = Describe("summary", func() {
	var (
		ctx context.Context
		ns  string
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	conn := func() *ejv1.Failure { return failure("ConnectionError", ejv1.ClassRetryable, 1, "refused") }
	corrupt := func() *ejv1.Failure { return failure("CorruptedFile", ejv1.ClassPermanent, 65, "no trailer") }
	oom := &ejv1.Failure{ErrorType: "OOMKilled", Class: ejv1.ClassRetryable}

	It("counts a namespace's jobs by phase and by last error, page by page", func() {
		fillNamespace(ctx, ns, map[string]ejv1.ExtractionJobStatus{
			"a": {Phase: ejv1.PhasePending},
			"b": {Phase: ejv1.PhaseRunning},
			"c": {Phase: ejv1.PhaseRetrying, LastFailure: conn()},
			"d": {Phase: ejv1.PhaseRetrying, LastFailure: conn()},
			"e": {Phase: ejv1.PhaseFailed, LastFailure: conn()},
			"f": {Phase: ejv1.PhaseFailed, LastFailure: corrupt()},
			"g": {Phase: ejv1.PhaseSucceeded, LastFailure: oom},
			"h": {Phase: ejv1.PhaseSucceeded},
			"i": {Phase: ejv1.PhaseCancelled},
		})
		other := newNamespace(ctx)
		fillNamespace(ctx, other, map[string]ejv1.ExtractionJobStatus{"x": {Phase: ejv1.PhaseFailed, LastFailure: corrupt()}})
		var calls []listCall
		var out bytes.Buffer

		Expect(Summary(ctx, listRecorder(&calls), &out, SummaryOptions{Namespace: ns, ChunkSize: 2})).To(Succeed())

		Expect(out.String()).To(Equal(strings.Join([]string{
			`9 ExtractionJobs in namespace "` + ns + `"`,
			"",
			"PHASE       JOBS",
			"Pending     1",
			"Queued      0",
			"Running     1",
			"Retrying    2",
			"Succeeded   2",
			"Failed      2",
			"Cancelled   1",
			"",
			"LAST ERROR        JOBS   PHASES",
			"ConnectionError   3      Retrying=2, Failed=1",
			"CorruptedFile     1      Failed=1",
			"OOMKilled         1      Succeeded=1",
			"",
		}, "\n")))
		Expect(calls).To(HaveLen(5), "9 jobs in pages of 2")
		for i, call := range calls {
			Expect(call.limit).To(BeEquivalentTo(2))
			Expect(call.continued).To(Equal(i > 0), "every page after the first continues the list")
		}
	})

	It("counts Queued jobs as a phase of their own, between Pending and Running", func() {
		fillNamespace(ctx, ns, map[string]ejv1.ExtractionJobStatus{
			"waiting-1": {Phase: ejv1.PhaseQueued, ExtractorClassName: "capped"},
			"waiting-2": {Phase: ejv1.PhaseQueued, ExtractorClassName: "capped", Attempt: 1, LastFailure: conn()},
			"started":   {Phase: ejv1.PhaseRunning, ExtractorClassName: "capped"},
		})
		var out bytes.Buffer

		Expect(Summary(ctx, admin, &out, SummaryOptions{Namespace: ns})).To(Succeed())

		Expect(out.String()).To(ContainSubstring("PHASE       JOBS\nPending     0\nQueued      2\nRunning     1\n"))
		Expect(out.String()).To(ContainSubstring("ConnectionError   1      Queued=1\n"))
	})

	It("asks for 500 jobs a page unless told otherwise", func() {
		var calls []listCall

		Expect(Summary(ctx, listRecorder(&calls), &bytes.Buffer{}, SummaryOptions{Namespace: ns})).To(Succeed())

		Expect(calls).To(Equal([]listCall{{limit: 500}}))
	})

	It("lists jobs the operator has not picked up as a phase of their own, and says when no job has an error", func() {
		fillNamespace(ctx, ns, map[string]ejv1.ExtractionJobStatus{"new": {}, "ok": {Phase: ejv1.PhaseSucceeded}})
		var out bytes.Buffer

		Expect(Summary(ctx, admin, &out, SummaryOptions{Namespace: ns})).To(Succeed())

		Expect(out.String()).To(ContainSubstring("Succeeded   1\n"))
		Expect(out.String()).To(ContainSubstring("<none>      1\n"))
		Expect(out.String()).To(HaveSuffix("\nNo job has a last error.\n"))
	})

	It("across all namespaces adds a table by namespace", func() {
		second := newNamespace(ctx)
		fillNamespace(ctx, ns, map[string]ejv1.ExtractionJobStatus{
			"a": {Phase: ejv1.PhaseFailed, LastFailure: corrupt()},
			"b": {Phase: ejv1.PhaseSucceeded},
		})
		fillNamespace(ctx, second, map[string]ejv1.ExtractionJobStatus{
			"c": {Phase: ejv1.PhaseRetrying, LastFailure: conn()},
		})
		var out bytes.Buffer

		Expect(Summary(ctx, admin, &out, SummaryOptions{AllNamespaces: true, ChunkSize: 1})).To(Succeed())

		Expect(out.String()).To(MatchRegexp(`\d+ ExtractionJobs in \d+ namespaces\n`))
		Expect(out.String()).To(MatchRegexp(`\nNAMESPACE\s+JOBS\s+PENDING\s+QUEUED\s+RUNNING\s+RETRYING\s+SUCCEEDED\s+FAILED\s+CANCELLED`))
		Expect(out.String()).To(MatchRegexp(fmt.Sprintf(`\n%s\s+2\s+0\s+0\s+0\s+0\s+1\s+1\s+0(\s+0)?\n`, ns)))
		Expect(out.String()).To(MatchRegexp(fmt.Sprintf(`\n%s\s+1\s+0\s+0\s+0\s+1\s+0\s+0\s+0(\s+0)?\n`, second)))
	})
})
