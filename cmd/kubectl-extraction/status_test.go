package main

import (
	"bytes"
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func at(d time.Duration) *metav1.Time { return ptr.To(metav1.NewTime(testNow.Add(d))) }

var _ = Describe("status", func() {
	var (
		ctx context.Context
		ns  string
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	retrying := func() ejv1.ExtractionJobStatus {
		return ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseRetrying, RetryCount: 2, Attempt: 2, Retries: "2/3",
			Message:     "Retry 2/3: ConnectionError: connection refused by s3.example:443",
			NextRetryAt: ptr.To(ejv1.NewPreciseTime(testNow.Add(2*time.Minute + 3*time.Second))),
			PodName:     "drawing-1a2b3c-2",
			StartTime:   at(-10 * time.Minute),
			LastFailure: &ejv1.Failure{ErrorType: "ConnectionError", Class: ejv1.ClassRetryable, ExitCode: ptr.To[int32](1),
				Reason: "Error", Message: "connection refused by s3.example:443"},
			Attempts: []ejv1.AttemptRecord{
				{Attempt: 1, PodName: "drawing-1a2b3c-1", StartTime: *at(-10 * time.Minute), FinishTime: at(-9*time.Minute - 15*time.Second),
					Outcome: ejv1.OutcomeFailed, ErrorType: "PodEvicted", Class: ejv1.ClassDisruption},
				{Attempt: 2, PodName: "drawing-1a2b3c-2", StartTime: *at(-3 * time.Minute), FinishTime: at(-3*time.Minute + 42*time.Second),
					Outcome: ejv1.OutcomeFailed, ErrorType: "ConnectionError", Class: ejv1.ClassRetryable, ExitCode: ptr.To[int32](1)},
			},
		}
	}

	It("shows phase, format, source, retries, message, next retry, last error and the attempt history", func() {
		job := jobIn(ctx, ns, "drawing", retrying())
		var out bytes.Buffer

		Expect(Status(ctx, admin, &out, client.ObjectKeyFromObject(job), newClock())).To(Succeed())

		Expect(out.String()).To(Equal(strings.Join([]string{
			"Name:        drawing",
			"Namespace:   " + ns,
			"Phase:       Retrying",
			"Format:      pdf",
			"Source:      s3://drawings/drawing.pdf",
			"Retries:     2/3",
			"Message:     Retry 2/3: ConnectionError: connection refused by s3.example:443",
			"Next retry:  in 2m3s (2031-05-06T07:10:12Z)",
			"Pod:         drawing-1a2b3c-2",
			"Started:     10m ago (2031-05-06T06:58:09Z)",
			"Last error:",
			"  Type:      ConnectionError",
			"  Class:     Retryable",
			"  Exit code: 1",
			"  Reason:    Error",
			"  Message:   connection refused by s3.example:443",
			"Result:      <none>",
			"Attempts (latest 2, oldest first):",
			"  ATTEMPT   POD                STARTED   DURATION   OUTCOME   ERROR             CLASS        EXIT",
			"  1         drawing-1a2b3c-1   10m ago   45s        Failed    PodEvicted        Disruption   -",
			"  2         drawing-1a2b3c-2   3m ago    42s        Failed    ConnectionError   Retryable    1",
			"",
		}, "\n")))
	})

	It("counts the next retry down with the clock and says due once its time has passed", func() {
		job := jobIn(ctx, ns, "drawing", retrying())
		clk := newClock()
		show := func() string {
			var out bytes.Buffer
			Expect(Status(ctx, admin, &out, client.ObjectKeyFromObject(job), clk)).To(Succeed())
			return out.String()
		}

		clk.Step(time.Minute)
		Expect(show()).To(ContainSubstring("Next retry:  in 1m3s (2031-05-06T07:10:12Z)\n"))
		clk.Step(62*time.Second + 500*time.Millisecond)
		Expect(show()).To(ContainSubstring("Next retry:  in 1s (2031-05-06T07:10:12Z)\n"), "rounded up, never early")
		clk.Step(time.Second)
		Expect(show()).To(ContainSubstring("Next retry:  due (was 2031-05-06T07:10:12Z)\n"))
	})

	It("pretty-prints the result of a job that succeeded", func() {
		job := jobIn(ctx, ns, "done", ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseSucceeded, Retries: "0/3", Attempt: 1, Message: "Succeeded.",
			Result: &runtime.RawExtension{Raw: []byte(`{"pages":3,"sha256":"ab12","entities":{"LINE":7}}`)},
			Attempts: []ejv1.AttemptRecord{{Attempt: 1, PodName: "done-9f8e7d-1", StartTime: *at(-2 * time.Hour),
				FinishTime: at(-2*time.Hour + 61*time.Minute + 5*time.Second), Outcome: ejv1.OutcomeSucceeded}},
		})
		var out bytes.Buffer

		Expect(Status(ctx, admin, &out, client.ObjectKeyFromObject(job), newClock())).To(Succeed())

		Expect(out.String()).To(ContainSubstring("Last error:  <none>\n"))
		Expect(out.String()).To(ContainSubstring("Next retry:  <none>\n"))
		Expect(out.String()).To(ContainSubstring("Result:\n  {\n    \"entities\": {\n      \"LINE\": 7\n    },\n    \"pages\": 3,\n    \"sha256\": \"ab12\"\n  }\n"))
		Expect(out.String()).To(MatchRegexp(`\n  1\s+done-9f8e7d-1\s+120m ago\s+1h1m5s\s+Succeeded\s+-\s+-\s+-\n`))
	})

	It("shows a running attempt's time so far and a retry request the operator has not handled", func() {
		job := jobIn(ctx, ns, "busy", ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseRunning, Attempt: 1, Retries: "0/3", PodName: "busy-1-1",
			Attempts: []ejv1.AttemptRecord{{Attempt: 1, PodName: "busy-1-1", StartTime: *at(-90 * time.Second), Outcome: ejv1.OutcomeRunning}},
		}, func(j *ejv1.ExtractionJob) {
			j.Annotations = map[string]string{ejv1.RetryRequestAnnotation: "t1"}
			j.Spec.Cancel = true
		})
		var out bytes.Buffer

		Expect(Status(ctx, admin, &out, client.ObjectKeyFromObject(job), newClock())).To(Succeed())

		Expect(out.String()).To(ContainSubstring("Cancel:      requested (spec.cancel is true)\n"))
		Expect(out.String()).To(ContainSubstring("Retry:       requested (t1), not handled by the operator yet\n"))
		Expect(out.String()).To(MatchRegexp(`\n  1\s+busy-1-1\s+90s ago\s+1m30s\s+Running\s+-\s+-\s+-\n`))
	})

	It("shows the memory each attempt ran with, as the OOM ladder grew it", func() {
		job := jobIn(ctx, ns, "big", ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseRunning, ExtractorClassName: "pdf-large", Attempt: 3, Retries: "2/3", OOMKilledCount: 2,
			Attempts: []ejv1.AttemptRecord{
				{Attempt: 1, PodName: "big-1", StartTime: *at(-3 * time.Minute), FinishTime: at(-170 * time.Second),
					Outcome: ejv1.OutcomeFailed, ErrorType: "OOMKilled", Class: ejv1.ClassRetryable, ExitCode: ptr.To[int32](137), Memory: ptr.To(apiresource.MustParse("512Mi"))},
				{Attempt: 2, PodName: "big-2", StartTime: *at(-2 * time.Minute), FinishTime: at(-110 * time.Second),
					Outcome: ejv1.OutcomeFailed, ErrorType: "OOMKilled", Class: ejv1.ClassRetryable, ExitCode: ptr.To[int32](137), Memory: ptr.To(apiresource.MustParse("1Gi"))},
				{Attempt: 3, PodName: "big-3", StartTime: *at(-time.Minute), Outcome: ejv1.OutcomeRunning, Memory: ptr.To(apiresource.MustParse("2Gi"))},
			},
		}, func(j *ejv1.ExtractionJob) { j.Spec.ExtractorClassName = "pdf-large" })
		var out bytes.Buffer

		Expect(Status(ctx, admin, &out, client.ObjectKeyFromObject(job), newClock())).To(Succeed())

		Expect(out.String()).To(ContainSubstring("Format:      pdf\nExtractor:   pdf-large (ExtractorClass)\n"))
		Expect(out.String()).To(HaveSuffix(strings.Join([]string{
			"Attempts (latest 3, oldest first):",
			"  ATTEMPT   POD     STARTED   DURATION   OUTCOME   ERROR       CLASS       EXIT   MEMORY",
			"  1         big-1   3m ago    10s        Failed    OOMKilled   Retryable   137    512Mi",
			"  2         big-2   2m ago    10s        Failed    OOMKilled   Retryable   137    1Gi",
			"  3         big-3   60s ago   1m         Running   -           -           -      2Gi",
			"",
		}, "\n")))
	})

	It("writes - for an attempt without a recorded memory next to one with it", func() {
		job := jobIn(ctx, ns, "edited", ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseRunning, Attempt: 2, Retries: "1/3",
			Attempts: []ejv1.AttemptRecord{
				{Attempt: 1, PodName: "edited-1", StartTime: *at(-time.Minute), FinishTime: at(-50 * time.Second), Outcome: ejv1.OutcomeFailed},
				{Attempt: 2, PodName: "edited-2", StartTime: *at(-30 * time.Second), Outcome: ejv1.OutcomeRunning, Memory: ptr.To(apiresource.MustParse("256Mi"))},
			},
		})
		var out bytes.Buffer

		Expect(Status(ctx, admin, &out, client.ObjectKeyFromObject(job), newClock())).To(Succeed())

		Expect(out.String()).To(MatchRegexp(`\n  1\s+edited-1\s+.*Failed\s+-\s+-\s+-\s+-\n`))
		Expect(out.String()).To(MatchRegexp(`\n  2\s+edited-2\s+.*Running\s+-\s+-\s+-\s+256Mi\n`))
	})

	It("shows a job the operator has not picked up yet", func() {
		job := newJob(ctx, ns, "fresh")
		var out bytes.Buffer

		Expect(Status(ctx, admin, &out, client.ObjectKeyFromObject(job), newClock())).To(Succeed())

		Expect(out.String()).To(ContainSubstring("Phase:       not started yet\n"))
		Expect(out.String()).To(HaveSuffix("Attempts:    <none>\n"))
	})

	It("says plainly that a job does not exist", func() {
		err := Status(ctx, admin, &bytes.Buffer{}, types.NamespacedName{Namespace: ns, Name: "nope"}, newClock())

		Expect(err).To(MatchError(`extractionjob "nope" not found in namespace "` + ns + `"`))
	})
})

var _ = DescribeTable("extractorClass says which class runs the job and how it was chosen",
	func(named, inUse, want string) {
		job := &ejv1.ExtractionJob{Spec: ejv1.ExtractionJobSpec{Format: ejv1.FormatDXF, ExtractorClassName: named}}
		job.Status.ExtractorClassName = inUse
		Expect(extractorClass(job)).To(Equal(want))
	},
	Entry("a default class", "", "cad", "cad (the default ExtractorClass for dxf)"),
	Entry("a class the job names", "cad-big", "cad-big", "cad-big (ExtractorClass)"),
	Entry("a named class the job does not use yet, such as a missing one", "cad-big", "", "cad-big (ExtractorClass named by the job, not in use yet)"),
	Entry("no class yet", "", "", ""),
)

var _ = DescribeTable("compactDuration writes whole seconds as Go does, without zero units at the end",
	func(d time.Duration, want string) { Expect(compactDuration(d)).To(Equal(want)) },
	Entry("seconds", 42*time.Second, "42s"),
	Entry("minutes and seconds", 123*time.Second, "2m3s"),
	Entry("whole minutes", 5*time.Minute, "5m"),
	Entry("whole hours", time.Hour, "1h"),
	Entry("hours and minutes", 90*time.Minute, "1h30m"),
	Entry("hours and seconds", time.Hour+5*time.Second, "1h0m5s"),
	Entry("zero", time.Duration(0), "0s"),
)
