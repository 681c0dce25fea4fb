//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// sampleOutcome is where a sample of config/samples must end, and what it
// must have shown on the way.
type sampleOutcome struct {
	phase           ejv1.Phase
	retryCount      int32
	disruptionCount int32
	attempt         int32
	errorType       string            // the latest failed attempt's, in status.attempts and, unless the job succeeded, status.lastFailure; "" for none
	class           ejv1.FailureClass // its class
	message         string            // prefix of the final status.message
	seen            []string          // prefixes of status.message seen on the way, in order
	result          string            // status.result as JSON
	// extractorClass runs the job: config/default's default class unless the
	// sample names one.
	extractorClass string
	// memory is what each attempt ran with, when its class sets a memory limit.
	memory []string
}

// defaultClass is the default class that config/default installs.
const defaultClass = "reference"

var sampleOutcomes = map[string]sampleOutcome{
	"drawing-pdf": {
		phase: ejv1.PhaseSucceeded, attempt: 1,
		result: `{"pages":3,"tables":2,"title":"Sheet 12"}`,
	},
	"flaky-connection": {
		phase: ejv1.PhaseSucceeded, retryCount: 2, attempt: 3,
		errorType: "ConnectionError", class: ejv1.ClassRetryable,
		seen: []string{
			"Retry 1/3: ConnectionError: connection reset by peer while reading s3://drawings/plant-a/floor-2.dxf",
			"Retry 2/3: ConnectionError: connection reset by peer",
		},
		result: `{"entities":5120,"layers":14}`,
	},
	"retries-exhausted": {
		phase: ejv1.PhaseFailed, retryCount: 3, attempt: 4,
		errorType: "ServiceUnavailable", class: ejv1.ClassRetryable,
		message: "Max retries (3) exceeded. Last error: ServiceUnavailable: the model server answered 503",
		seen:    []string{"Retry 1/3: ServiceUnavailable: ", "Retry 2/3: ServiceUnavailable: ", "Retry 3/3: ServiceUnavailable: "},
	},
	"corrupted-file": {
		phase: ejv1.PhaseFailed, attempt: 1,
		errorType: "CorruptedFile", class: ejv1.ClassPermanent,
		message: "Permanent error: CorruptedFile: the STEP header ends after 1024 bytes",
	},
	"oom-killed": {
		phase: ejv1.PhaseSucceeded, retryCount: 1, attempt: 2,
		errorType: "OOMKilled", class: ejv1.ClassRetryable,
		seen:   []string{"Retry 1/3: OOMKilled: "},
		result: `{"pages":412}`,
		// large-pdf doubles the memory after an OOMKilled attempt.
		extractorClass: "large-pdf", memory: []string{"1Gi", "2Gi"},
	},
	"slow-timeout": {
		phase: ejv1.PhaseSucceeded, retryCount: 1, attempt: 2,
		errorType: "TimeoutError", class: ejv1.ClassRetryable,
		seen:   []string{"Retry 1/3: TimeoutError: "},
		result: `{"dimensions":38,"tolerances":12}`,
	},
	"evicted": {
		phase: ejv1.PhaseSucceeded, disruptionCount: 1, attempt: 2,
		errorType: "PodEvicted", class: ejv1.ClassDisruption,
		result: `{"layers":3}`,
	},
	"cancel-me": {
		phase: ejv1.PhaseCancelled, attempt: 1,
	},
	"manual-retry": {
		phase: ejv1.PhaseSucceeded, attempt: 2,
		seen:   []string{"Permanent error: AuthenticationFailed: the presigned URL expired"},
		result: `{"faces":1893,"solids":7}`,
	},
}

var _ = Describe("The samples in config/samples", Ordered, func() {
	const ns = "e2e-samples"
	var history *jobRecorder

	BeforeAll(func() {
		createNamespace(ns)
		history = recordJobs(ns)
		DeferCleanup(history.stop)
		kubectlOK("apply", "-n", ns, "-k", filepath.Join(root, "config", "samples"))
	})

	It("are all covered by this test", func() {
		list := &ejv1.ExtractionJobList{}
		Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		var names []string
		for _, job := range list.Items {
			names = append(names, job.Name)
		}
		Expect(names).To(HaveLen(len(sampleOutcomes)))
		for _, name := range names {
			Expect(sampleOutcomes).To(HaveKey(name))
		}
	})

	It("install the capped class werk24-api and large-pdf beside config/default's default class", func() {
		rows := parseTable(kubectlOK("get", "extractorclasses", "werk24-api", "large-pdf", defaultClass))
		Expect(rows).To(HaveLen(4))
		column := map[string]int{}
		for i, h := range rows[0] {
			column[h] = i
		}
		Expect(column).To(HaveKey("MAX"))
		Expect(column).To(HaveKey("DEFAULT"))
		byName := map[string][]string{}
		for _, row := range rows[1:] {
			byName[row[0]] = row
		}
		Expect(byName["werk24-api"][column["MAX"]]).To(Equal("2"))
		Expect(byName["large-pdf"][column["MAX"]]).To(Equal("3"))
		Expect(byName[defaultClass][column["DEFAULT"]]).To(Equal("true"))
		Expect(byName["werk24-api"][column["DEFAULT"]]).To(Equal("false"))
	})

	It("let `kubectl wait` return on condition Complete and on condition Failed", func() {
		kubectlOK("wait", "-n", ns, "--for=condition=Complete", "extractionjob/drawing-pdf", "--timeout=3m")
		kubectlOK("wait", "-n", ns, "--for=condition=Failed", "extractionjob/corrupted-file", "--timeout=3m")
		kubectlOK("wait", "-n", ns, "--for=condition=Failed", "ej/retries-exhausted", "--timeout=3m")
	})

	It("cancel a running job: its Pod is deleted and the job ends Cancelled", func() {
		Eventually(phaseOf(ns, "cancel-me")).Should(Equal(ejv1.PhaseRunning))
		job, err := getJob(ns, "cancel-me")
		Expect(err).NotTo(HaveOccurred())
		Expect(job.Status.PodName).NotTo(BeEmpty())

		kubectlOK("patch", "-n", ns, "extractionjob", "cancel-me", "--type", "merge", "-p", `{"spec":{"cancel":true}}`)
		kubectlOK("wait", "-n", ns, "--for=condition=Failed", "extractionjob/cancel-me", "--timeout=2m")
		job, err = getJob(ns, "cancel-me")
		Expect(err).NotTo(HaveOccurred())
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseCancelled))
		failed := apimeta.FindStatusCondition(job.Status.Conditions, ejv1.ConditionFailed)
		Expect(failed).NotTo(BeNil())
		Expect(failed.Reason).To(Equal(ejv1.ReasonCancelled))
		Eventually(func() (int, error) {
			pods, err := jobPods(ns, string(job.UID))
			return len(pods), err
		}, time.Minute).Should(BeZero(), "the cancelled attempt's Pod is still there")
	})

	It("retry a permanently failed job by hand with the retry-requested-at annotation", func() {
		Eventually(phaseOf(ns, "manual-retry")).Should(Equal(ejv1.PhaseFailed))
		token := "e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		kubectlOK("annotate", "-n", ns, "extractionjob", "manual-retry", "--overwrite",
			ejv1.RetryRequestAnnotation+"="+token)
		kubectlOK("wait", "-n", ns, "--for=condition=Complete", "extractionjob/manual-retry", "--timeout=2m")
		job, err := getJob(ns, "manual-retry")
		Expect(err).NotTo(HaveOccurred())
		Expect(job.Status.LastHandledRetryRequest).To(Equal(token))
		Expect(job.Status.RetryCount).To(BeZero())
	})

	DescribeTable("end as the sample says",
		func(name string) {
			want := sampleOutcomes[name]
			Eventually(phaseOf(ns, name)).Should(Equal(want.phase))
			job, err := getJob(ns, name)
			Expect(err).NotTo(HaveOccurred())
			st := job.Status
			Expect(st.RetryCount).To(Equal(want.retryCount), "retryCount")
			Expect(st.DisruptionCount).To(Equal(want.disruptionCount), "disruptionCount")
			Expect(st.Attempt).To(Equal(want.attempt), "attempt")
			// Every sample keeps the default maxRetries of 3.
			Expect(st.Retries).To(Equal(strconv.Itoa(int(want.retryCount))+"/3"), "retries")
			Expect(st.NextRetryAt).To(BeNil(), "nextRetryAt of a finished job")
			Expect(st.CompletionTime).NotTo(BeNil(), "completionTime")
			if want.errorType == "" || want.phase == ejv1.PhaseSucceeded {
				// A success clears lastFailure; the attempt history keeps the error.
				Expect(st.LastFailure).To(BeNil(), "lastFailure")
			} else {
				Expect(st.LastFailure).NotTo(BeNil(), "lastFailure")
				Expect(st.LastFailure.ErrorType).To(Equal(want.errorType), "lastFailure.errorType")
				Expect(st.LastFailure.Class).To(Equal(want.class), "lastFailure.class")
			}
			if want.errorType != "" {
				failed := slices.DeleteFunc(slices.Clone(st.Attempts), func(r ejv1.AttemptRecord) bool { return r.Outcome != ejv1.OutcomeFailed })
				Expect(failed).NotTo(BeEmpty(), "failed attempts in status.attempts")
				Expect(failed[len(failed)-1].ErrorType).To(Equal(want.errorType), "attempts[].errorType")
				Expect(failed[len(failed)-1].Class).To(Equal(want.class), "attempts[].class")
			}
			if want.message != "" {
				Expect(st.Message).To(HavePrefix(want.message), "message")
			}
			if want.result == "" {
				Expect(st.Result).To(BeNil(), "result")
			} else {
				Expect(st.Result).NotTo(BeNil(), "result")
				Expect(string(st.Result.Raw)).To(MatchJSON(want.result), "result")
			}
			condition := map[ejv1.Phase]string{
				ejv1.PhaseSucceeded: ejv1.ConditionComplete,
				ejv1.PhaseFailed:    ejv1.ConditionFailed,
				ejv1.PhaseCancelled: ejv1.ConditionFailed,
			}[want.phase]
			Expect(apimeta.IsStatusConditionTrue(st.Conditions, condition)).To(BeTrue(), "condition %s", condition)
			wantClass := want.extractorClass
			if wantClass == "" {
				wantClass = defaultClass
			}
			Expect(st.ExtractorClassName).To(Equal(wantClass), "status.extractorClassName")
			var memory []string
			for _, r := range st.Attempts {
				if r.Memory != nil {
					memory = append(memory, r.Memory.String())
				}
			}
			if want.memory == nil {
				Expect(memory).To(BeEmpty(), "memory of each attempt")
			} else {
				Expect(memory).To(Equal(want.memory), "memory of each attempt")
			}
			Expect(history.messagesOf(name)).To(ContainElements(prefixMatchers(want.seen)...), "messages on the way")
			// Messages must come in order, with nothing going backwards.
			Expect(indexOfPrefixes(history.messagesOf(name), want.seen)).To(BeTrue(), "messages in order: %v", history.messagesOf(name))
		},
		func(name string) string { return name },
		Entry(nil, "drawing-pdf"),
		Entry(nil, "flaky-connection"),
		Entry(nil, "retries-exhausted"),
		Entry(nil, "corrupted-file"),
		Entry(nil, "oom-killed"),
		Entry(nil, "slow-timeout"),
		Entry(nil, "evicted"),
		Entry(nil, "cancel-me"),
		Entry(nil, "manual-retry"),
	)

	It("never start a retry before its nextRetryAt", func() {
		checked := 0
		for name := range sampleOutcomes {
			job, err := getJob(ns, name)
			Expect(err).NotTo(HaveOccurred())
			pods, err := jobPods(ns, string(job.UID))
			Expect(err).NotTo(HaveOccurred())
			for _, pod := range pods {
				attempt, err := strconv.Atoi(pod.Labels[ejv1.AttemptLabel])
				Expect(err).NotTo(HaveOccurred())
				due, ok := history.nextRetryAt(name, int32(attempt))
				if !ok {
					continue
				}
				checked++
				// creationTimestamp is truncated to a whole second, so a Pod
				// created in time is never earlier than nextRetryAt truncated so.
				Expect(pod.CreationTimestamp.Time).NotTo(BeTemporally("<", due.Truncate(time.Second)),
					"%s: the Pod of attempt %d was created at %s, before nextRetryAt %s", name, attempt, pod.CreationTimestamp, due)
			}
		}
		Expect(checked).To(BeNumerically(">=", 6), "retries whose nextRetryAt was seen")
	})

	It("show their columns in `kubectl get extractionjobs`", func() {
		out := kubectlOK("get", "extractionjobs", "-n", ns)
		rows := parseTable(out)
		Expect(rows).NotTo(BeEmpty())
		Expect(rows[0]).To(Equal([]string{"NAME", "PHASE", "FORMAT", "RETRIES", "NEXT RETRY", "ERROR", "AGE"}))
		byName := map[string][]string{}
		for _, row := range rows[1:] {
			byName[row[0]] = row
		}
		Expect(byName).To(HaveKeyWithValue("retries-exhausted",
			HaveExactElements("retries-exhausted", "Failed", "ifc", "3/3", "", "ServiceUnavailable", Not(BeEmpty()))))
		Expect(byName).To(HaveKeyWithValue("drawing-pdf",
			HaveExactElements("drawing-pdf", "Succeeded", "pdf", "0/3", "", "", Not(BeEmpty()))))
		// A job that succeeded after a failure shows no ERROR: success clears lastFailure.
		Expect(byName).To(HaveKeyWithValue("evicted",
			HaveExactElements("evicted", "Succeeded", "dxf", "0/3", "", "", Not(BeEmpty()))))

		wide := parseTable(kubectlOK("get", "ej", "-n", ns, "-o", "wide", "corrupted-file"))
		Expect(wide[0]).To(ContainElement("MESSAGE"))
		Expect(wide[1][len(wide[1])-1]).To(HavePrefix("Permanent error: CorruptedFile: "))
	})

	It("leave events that tell their story", func() {
		job, err := getJob(ns, "flaky-connection")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() ([]string, error) {
			events := &eventsv1.EventList{}
			if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err != nil {
				return nil, err
			}
			var reasons []string
			for _, e := range events.Items {
				if e.Regarding.UID == job.UID {
					reasons = append(reasons, e.Reason)
				}
			}
			return reasons, nil
		}, time.Minute).Should(ContainElements(
			ejv1.ReasonAttemptStarted, ejv1.ReasonAttemptFailed, ejv1.ReasonRetryScheduled, ejv1.ReasonSucceeded))
	})

	AfterAll(func() {
		_, _ = kubectl("delete", "namespace", ns, "--wait=false")
	})
})

// jobRecorder watches the jobs of a namespace and keeps what their status
// said on the way, which polling could miss.
type jobRecorder struct {
	mu       sync.Mutex
	messages map[string][]string
	// retryAt maps a job's name and the number of the attempt that a retry
	// will start to the nextRetryAt announced for it.
	retryAt map[string]map[int32]time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

func recordJobs(namespace string) *jobRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &jobRecorder{
		messages: map[string][]string{},
		retryAt:  map[string]map[int32]time.Time{},
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	started := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(r.done)
		for first := true; ctx.Err() == nil; first = false {
			w, err := k8s.Watch(ctx, &ejv1.ExtractionJobList{}, client.InNamespace(namespace))
			if first {
				close(started)
			}
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for event := range w.ResultChan() {
				if job, ok := event.Object.(*ejv1.ExtractionJob); ok {
					r.observe(job)
				}
			}
			w.Stop()
		}
	}()
	<-started
	return r
}

func (r *jobRecorder) observe(job *ejv1.ExtractionJob) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := job.Status
	if msgs := r.messages[job.Name]; st.Message != "" && (len(msgs) == 0 || msgs[len(msgs)-1] != st.Message) {
		r.messages[job.Name] = append(msgs, st.Message)
	}
	if st.Phase == ejv1.PhaseRetrying && st.NextRetryAt != nil {
		if r.retryAt[job.Name] == nil {
			r.retryAt[job.Name] = map[int32]time.Time{}
		}
		r.retryAt[job.Name][st.Attempt+1] = st.NextRetryAt.Time
	}
}

func (r *jobRecorder) stop() {
	r.cancel()
	<-r.done
}

func (r *jobRecorder) messagesOf(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.messages[name]...)
}

func (r *jobRecorder) nextRetryAt(name string, attempt int32) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.retryAt[name][attempt]
	return t, ok
}

func prefixMatchers(prefixes []string) []any {
	matchers := make([]any, 0, len(prefixes))
	for _, p := range prefixes {
		matchers = append(matchers, HavePrefix(p))
	}
	return matchers
}

// indexOfPrefixes reports whether the messages contain messages with the
// given prefixes in this order.
func indexOfPrefixes(messages, prefixes []string) bool {
	i := 0
	for _, m := range messages {
		if i < len(prefixes) && strings.HasPrefix(m, prefixes[i]) {
			i++
		}
	}
	return i == len(prefixes)
}

// parseTable splits kubectl's table output into cells, cutting each line at
// the columns where the header's titles start; empty cells stay empty.
func parseTable(out string) [][]string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return nil
	}
	header := lines[0]
	var starts []int
	for i := 0; i < len(header); i++ {
		// A title starts after two spaces (or at 0); "NEXT RETRY" has only one inside.
		if header[i] != ' ' && (i == 0 || (i >= 2 && header[i-1] == ' ' && header[i-2] == ' ')) {
			starts = append(starts, i)
		}
	}
	rows := make([][]string, 0, len(lines))
	for _, line := range lines {
		row := make([]string, len(starts))
		for c, start := range starts {
			if start >= len(line) {
				continue
			}
			end := len(line)
			if c+1 < len(starts) && starts[c+1] < end {
				end = starts[c+1]
			}
			row[c] = strings.TrimSpace(line[start:end])
		}
		rows = append(rows, row)
	}
	return rows
}
