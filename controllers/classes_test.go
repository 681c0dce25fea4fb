package controllers

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// class is a class of the formats, created at minute age of a fixed hour.
func class(name string, minute int, isDefault bool, selector map[string]string, formats ...ejv1.Format) ejv1.ExtractorClass {
	c := ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 1, 12, minute, 0, 0, time.UTC))},
		Spec: ejv1.ExtractorClassSpec{Formats: formats, Default: isDefault, Image: "img"},
	}
	if selector != nil {
		c.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: selector}
	}
	return c
}

func namespaceWith(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func TestChoosingAJobsClass(t *testing.T) {
	team := map[string]string{"team": "cad"}
	classes := []ejv1.ExtractorClass{
		class("shared", 10, true, nil, ejv1.FormatPDF, ejv1.FormatDXF),
		class("older-shared", 5, true, nil, ejv1.FormatIFC),
		class("cad-pdf", 1, true, team, ejv1.FormatPDF),
		class("same-age-b", 20, true, nil, ejv1.FormatSTEP),
		class("same-age-a", 20, true, nil, ejv1.FormatSTEP),
		class("large", 30, false, nil, ejv1.FormatPDF),
		class("cad-only", 30, false, team, ejv1.FormatPDF),
		class("bad-selector", 30, false, nil, ejv1.FormatPDF),
	}
	classes[7].Spec.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}
	cadNamespace := namespaceWith("cad", team)
	otherNamespace := namespaceWith("other", nil)

	job := func(format ejv1.Format, specClass, statusClass string) *ejv1.ExtractionJob {
		return &ejv1.ExtractionJob{
			ObjectMeta: metav1.ObjectMeta{Namespace: "cad", Name: "j"},
			Spec:       ejv1.ExtractionJobSpec{Format: format, ExtractorClassName: specClass},
			Status:     ejv1.ExtractionJobStatus{ExtractorClassName: statusClass},
		}
	}
	type outcome struct{ Class, Reason, Message string }
	cases := []struct {
		name      string
		job       *ejv1.ExtractionJob
		namespace *corev1.Namespace
		want      outcome
	}{
		{"the class the spec names wins over a default", job(ejv1.FormatPDF, "large", ""), cadNamespace, outcome{Class: "large"}},
		{"the spec wins over the class the job already runs with", job(ejv1.FormatPDF, "large", "shared"), cadNamespace, outcome{Class: "large"}},
		{"a job keeps the class it already runs with", job(ejv1.FormatPDF, "", "shared"), cadNamespace, outcome{Class: "shared"}},
		{"the oldest default that admits the namespace serves it", job(ejv1.FormatPDF, "", ""), cadNamespace, outcome{Class: "cad-pdf"}},
		{"a default that does not admit the namespace is passed over", job(ejv1.FormatPDF, "", ""), otherNamespace, outcome{Class: "shared"}},
		{"the default must serve the format", job(ejv1.FormatIFC, "", ""), cadNamespace, outcome{Class: "older-shared"}},
		{"defaults of the same age go by name", job(ejv1.FormatSTEP, "", ""), cadNamespace, outcome{Class: "same-age-a"}},
		{"no default for the format waits, naming format and namespace", job(ejv1.FormatWerk24, "", ""), cadNamespace, outcome{
			Reason:  ejv1.ReasonExtractorClassNotFound,
			Message: "No default ExtractorClass serves format werk24 in namespace cad; waiting for one, or set spec.extractorClassName."}},
		{"a named class that does not exist waits, naming it", job(ejv1.FormatPDF, "missing", ""), cadNamespace, outcome{
			Reason: ejv1.ReasonExtractorClassNotFound, Message: "ExtractorClass missing does not exist; waiting for it."}},
		{"a class the job ran with that went away waits too", job(ejv1.FormatPDF, "", "gone"), cadNamespace, outcome{
			Reason: ejv1.ReasonExtractorClassNotFound, Message: "ExtractorClass gone does not exist; waiting for it."}},
		{"a class without the job's format waits, naming what it serves", job(ejv1.FormatIFC, "shared", ""), cadNamespace, outcome{
			Reason: ejv1.ReasonFormatNotServed, Message: "ExtractorClass shared does not serve format ifc (it serves pdf, dxf); waiting for it to."}},
		{"a class whose selector admits the namespace runs the job", job(ejv1.FormatPDF, "cad-only", ""), cadNamespace, outcome{Class: "cad-only"}},
		{"a class whose selector does not admit the namespace refuses the job", job(ejv1.FormatPDF, "cad-only", ""), otherNamespace, outcome{
			Reason: ejv1.ReasonExtractorClassNotAllowed, Message: "ExtractorClass cad-only does not admit namespace cad."}},
		{"an unreadable namespace is admitted only by classes without a selector", job(ejv1.FormatPDF, "cad-only", ""), nil, outcome{
			Reason: ejv1.ReasonExtractorClassNotAllowed, Message: "ExtractorClass cad-only does not admit namespace cad."}},
		{"a selector that does not parse admits no namespace", job(ejv1.FormatPDF, "bad-selector", ""), cadNamespace, outcome{
			Reason: ejv1.ReasonExtractorClassNotAllowed, Message: "ExtractorClass bad-selector does not admit namespace cad."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			choice := chooseClass(tc.job, classes, tc.namespace)
			got := outcome{Reason: choice.Reason, Message: choice.Message}
			if choice.Class != nil {
				got.Class = choice.Class.Name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("chooseClass (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindingCompetingDefaults(t *testing.T) {
	cad, other := map[string]string{"team": "cad"}, map[string]string{"team": "other"}
	namespaces := []corev1.Namespace{*namespaceWith("cad", cad), *namespaceWith("plain", nil)}
	cases := []struct {
		name    string
		classes []ejv1.ExtractorClass
		want    map[string][]string
	}{
		{"two defaults of one format for every namespace compete",
			[]ejv1.ExtractorClass{class("a", 1, true, nil, ejv1.FormatPDF), class("b", 2, true, nil, ejv1.FormatPDF, ejv1.FormatDXF)},
			map[string][]string{"a": {"b"}, "b": {"a"}}},
		{"defaults of different formats do not compete",
			[]ejv1.ExtractorClass{class("a", 1, true, nil, ejv1.FormatPDF), class("b", 2, true, nil, ejv1.FormatDXF)},
			map[string][]string{}},
		{"a class that is not a default competes with nobody",
			[]ejv1.ExtractorClass{class("a", 1, true, nil, ejv1.FormatPDF), class("b", 2, false, nil, ejv1.FormatPDF)},
			map[string][]string{}},
		{"a tenant's default competes with a shared one in the tenant's namespace",
			[]ejv1.ExtractorClass{class("shared", 1, true, nil, ejv1.FormatPDF), class("cad", 2, true, cad, ejv1.FormatPDF)},
			map[string][]string{"shared": {"cad"}, "cad": {"shared"}}},
		{"defaults whose selectors admit no common namespace do not compete",
			[]ejv1.ExtractorClass{class("cad", 1, true, cad, ejv1.FormatPDF), class("other", 2, true, other, ejv1.FormatPDF)},
			map[string][]string{}},
		{"a selector that admits no existing namespace competes with nobody",
			[]ejv1.ExtractorClass{class("shared", 1, true, nil, ejv1.FormatPDF), class("other", 2, true, other, ejv1.FormatPDF)},
			map[string][]string{}},
		{"a class competing with several lists them by name",
			[]ejv1.ExtractorClass{class("c", 1, true, nil, ejv1.FormatPDF), class("a", 2, true, nil, ejv1.FormatPDF), class("b", 3, true, nil, ejv1.FormatPDF)},
			map[string][]string{"a": {"b", "c"}, "b": {"a", "c"}, "c": {"a", "b"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, competingDefaults(tc.classes, namespaces)); diff != "" {
				t.Errorf("competingDefaults (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobsAreIndexedByTheClassTheyWaitFor(t *testing.T) {
	waiting := func(reason, specClass, statusClass string) *ejv1.ExtractionJob {
		job := &ejv1.ExtractionJob{
			Spec:   ejv1.ExtractionJobSpec{Format: ejv1.FormatPDF, ExtractorClassName: specClass},
			Status: ejv1.ExtractionJobStatus{Phase: ejv1.PhasePending, ExtractorClassName: statusClass},
		}
		setConditions(job, transitionNow, reason)
		return job
	}
	running := waiting(ejv1.ReasonExtractorClassNotFound, "large", "")
	running.Status.PodName = "p"
	cases := []struct {
		name string
		job  *ejv1.ExtractionJob
		want []string
	}{
		{"a job waiting for the class it names", waiting(ejv1.ReasonExtractorClassNotFound, "large", ""), []string{"large"}},
		{"a job waiting for its class to serve its format", waiting(ejv1.ReasonFormatNotServed, "large", "large"), []string{"large"}},
		{"a job waiting for the class it ran with", waiting(ejv1.ReasonExtractorClassNotFound, "", "gone"), []string{"gone"}},
		{"a job waiting for a default of its format", waiting(ejv1.ReasonExtractorClassNotFound, "", ""), []string{"default/pdf"}},
		{"a job about to start waits for no class", waiting("", "large", ""), nil},
		{"a job waiting for its ServiceAccount waits for no class", waiting(ejv1.ReasonServiceAccountNotFound, "large", ""), nil},
		{"a job with a Pod waits for no class", running, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, classesAwaited(tc.job)); diff != "" {
				t.Errorf("classesAwaited (-want +got):\n%s", diff)
			}
		})
	}

	def := class("shared", 1, true, nil, ejv1.FormatPDF, ejv1.FormatDXF)
	if diff := cmp.Diff([]string{"shared", "default/pdf", "default/dxf"}, classAwaitedAs(&def)); diff != "" {
		t.Errorf("a default class wakes (-want +got):\n%s", diff)
	}
	named := class("large", 1, false, nil, ejv1.FormatPDF)
	if diff := cmp.Diff([]string{"large"}, classAwaitedAs(&named)); diff != "" {
		t.Errorf("a class that is no default wakes (-want +got):\n%s", diff)
	}
}

func TestAJobWaitsWithoutAPodAndSaysWhy(t *testing.T) {
	capped := class("ocr", 1, false, nil, ejv1.FormatPDF)
	capped.Spec.MaxRunning, capped.Spec.MaxRunningPerNamespace = ptr.To[int32](3), ptr.To[int32](1)
	cases := []struct {
		name string
		job  *ejv1.ExtractionJob
		act  func(*reconcileScope)
		want transitionOutcome
	}{
		{"a missing class leaves a new job Pending, naming the class", pendingJob(),
			func(s *reconcileScope) {
				s.waitForClass(classChoice{Reason: ejv1.ReasonExtractorClassNotFound, Message: "ExtractorClass ocr does not exist; waiting for it."})
			},
			transitionOutcome{Phase: ejv1.PhasePending, Message: "ExtractorClass ocr does not exist; waiting for it.",
				Conditions: []string{"Ready=False ExtractorClassNotFound", "Reconciling=True ExtractorClassNotFound"}}},
		{"a class without the format leaves a retry Pending without its old Pod", retryingJob(1, 0),
			func(s *reconcileScope) {
				s.waitForClass(classChoice{Reason: ejv1.ReasonFormatNotServed, Message: "ExtractorClass ocr does not serve format pdf (it serves ifc); waiting for it to."})
			},
			transitionOutcome{Phase: ejv1.PhasePending, Attempt: 1, RetryCount: 1, NextRetryAt: "2026-11-28T12:00:00Z",
				Message:     "ExtractorClass ocr does not serve format pdf (it serves ifc); waiting for it to.",
				LastFailure: "ConnectionError Retryable", Attempts: []string{"1 Failed ConnectionError Retryable"},
				Conditions: []string{"Ready=False FormatNotServed", "Reconciling=True FormatNotServed"}}},
		{"a full class queues the job, which keeps its nextRetryAt", retryingJob(1, 0),
			func(s *reconcileScope) { s.queueJob(&capped, admissionVerdict{}) },
			transitionOutcome{Phase: ejv1.PhaseQueued, Attempt: 1, RetryCount: 1, NextRetryAt: "2026-11-28T12:00:00Z",
				Message:     "Waiting for a free slot in ExtractorClass ocr (maxRunning 3).",
				LastFailure: "ConnectionError Retryable", Attempts: []string{"1 Failed ConnectionError Retryable"},
				Conditions: []string{"Ready=False Queued", "Reconciling=True Queued"}}},
		{"a namespace at its cap queues the job, naming the namespace", pendingJob(),
			func(s *reconcileScope) { s.queueJob(&capped, admissionVerdict{NamespaceCap: true}) },
			transitionOutcome{Phase: ejv1.PhaseQueued,
				Message:    "Waiting for a free slot in ExtractorClass ocr (maxRunningPerNamespace 1 in namespace plant-a).",
				Conditions: []string{"Ready=False Queued", "Reconciling=True Queued"}}},
		{"a class that does not admit the namespace fails the job for good", pendingJob(),
			func(s *reconcileScope) {
				s.classNotAllowed(classChoice{Reason: ejv1.ReasonExtractorClassNotAllowed, Message: "ExtractorClass ocr does not admit namespace plant-a."})
			},
			transitionOutcome{Phase: ejv1.PhaseFailed, Completed: true, LastFailure: "ExtractorClassNotAllowed Permanent",
				Message:    "Permanent error: ExtractorClassNotAllowed: ExtractorClass ocr does not admit namespace plant-a.",
				Conditions: endedConditions(ejv1.ReasonExtractorClassNotAllowed),
				Events: []jobEvent{{Type: corev1.EventTypeWarning, Reason: ejv1.ReasonExtractorClassNotAllowed,
					Note: "Permanent error: ExtractorClassNotAllowed: ExtractorClass ocr does not admit namespace plant-a."}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &reconcileScope{job: tc.job, now: transitionNow}
			tc.act(s)
			if diff := cmp.Diff(tc.want, outcomeOf(s, ctrl.Result{})); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodCreatesRefusedForAMissingServiceAccountBackOff(t *testing.T) {
	job := pendingJob()
	reconcileAt := func(offset time.Duration) *reconcileScope {
		return &reconcileScope{job: job, now: transitionNow.Add(offset)}
	}
	// refused is a reconcile whose create is refused: it says when to try again.
	refused := func(offset time.Duration) time.Duration {
		s := reconcileAt(offset)
		wake := s.serviceAccountMissing("robot").RequeueAfter
		s.summarizeStatus(true)
		return wake
	}
	if got := refused(0); got != 5*time.Second {
		t.Errorf("after the first refusal the next try is in %s, want 5s", got)
	}
	if got := reconcileAt(time.Second).serviceAccountWait(); got != 4*time.Second {
		t.Errorf("a reconcile 1s after the first refusal waits %s, want 4s", got)
	}
	for _, step := range []struct{ at, next time.Duration }{
		{5 * time.Second, 10 * time.Second},  // tries at 5s, next at 15s
		{15 * time.Second, 20 * time.Second}, // next at 35s
		{36 * time.Second, 39 * time.Second}, // a late wake-up keeps the schedule: next at 75s
		{75 * time.Second, 80 * time.Second},
		{20 * time.Minute, 15 * time.Second},  // tries fall at 155s, 315s, 615s, 915s, 1215s…
		{1215 * time.Second, 5 * time.Minute}, // the delay stops doubling at 5m
	} {
		if wait := reconcileAt(step.at).serviceAccountWait(); wait != 0 {
			t.Errorf("at %s the try is not due yet (waits %s)", step.at, wait)
		}
		if got := refused(step.at); got != step.next {
			t.Errorf("after the refusal at %s the next try is in %s, want %s", step.at, got, step.next)
		}
	}
	if c := condition(job, ejv1.ConditionReconciling); c.Reason != ejv1.ReasonServiceAccountNotFound || !c.LastTransitionTime.Time.Equal(transitionNow) {
		t.Errorf("Reconciling = %+v, want reason ServiceAccountNotFound since the first refusal", c)
	}
	if job.Status.Message != "ServiceAccount robot does not exist in namespace plant-a; the Pod is created once it does." {
		t.Errorf("message = %q", job.Status.Message)
	}
	if wait := reconcileAt(time.Hour).serviceAccountWait(); wait != 0 {
		t.Errorf("a job started anew waits %s for a ServiceAccount", wait)
	}
}

func TestOOMKilledAttemptsCountUntilAManualRetry(t *testing.T) {
	oomKilled := terminatedPod(1, corev1.PodFailed, 137, "")
	oomKilled.Status.ContainerStatuses[0].State.Terminated.Reason = "OOMKilled"
	job := runningJob(1)
	s := &reconcileScope{job: job, now: transitionNow, jitter: func() float64 { return 0.5 }}
	s.followPod(oomKilled)
	if job.Status.OOMKilledCount != 1 {
		t.Fatalf("oomKilledCount = %d after an OOMKilled attempt, want 1", job.Status.OOMKilledCount)
	}
	other := runningJob(2)
	other.Status.OOMKilledCount = 1
	(&reconcileScope{job: other, now: transitionNow, jitter: func() float64 { return 0.5 }}).followPod(
		terminatedPod(2, corev1.PodFailed, 1, "ConnectionError: refused"))
	if other.Status.OOMKilledCount != 1 {
		t.Errorf("oomKilledCount = %d after another failure, want it left at 1", other.Status.OOMKilledCount)
	}
	ended := withRetryRequest(endedJob(ejv1.PhaseFailed), "again")
	ended.Status.OOMKilledCount, ended.Status.ExtractorClassName = 3, "large"
	(&reconcileScope{job: ended, now: transitionNow}).handleRetryRequest()
	if ended.Status.OOMKilledCount != 0 || ended.Status.ExtractorClassName != "" {
		t.Errorf("after a manual retry oomKilledCount = %d, class %q; want 0 and the default chosen again",
			ended.Status.OOMKilledCount, ended.Status.ExtractorClassName)
	}
}

func TestAnAttemptWithMoreMemoryThanTheLastIsCounted(t *testing.T) {
	withMemory := func(memory string) *corev1.Pod {
		pod := attemptPodOf(2)
		pod.Spec.Containers = []corev1.Container{{Name: extractorContainerName, Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memory)}}}}
		return pod
	}
	for _, tc := range []struct {
		name, last, next string
		counted          bool
	}{
		{"memory that grew", "1Gi", "2Gi", true},
		{"memory that stayed", "1Gi", "1Gi", false},
		{"a class whose memory shrank", "2Gi", "1Gi", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := retryingJob(1, 0)
			job.Status.ExtractorClassName = "large"
			job.Status.Attempts[0].Memory = ptr.To(resource.MustParse(tc.last))
			s := &reconcileScope{job: job, now: transitionNow}
			s.attemptCreated(withMemory(tc.next), 2)
			counted := slices.ContainsFunc(s.queued.Metrics, func(o observation) bool { return o.Metric == metricOOMMemoryIncreases })
			if counted != tc.counted {
				t.Errorf("counted = %v, want %v (metrics %+v)", counted, tc.counted, s.queued.Metrics)
			}
			if got := job.Status.Attempts[1].Memory; got == nil || got.Cmp(resource.MustParse(tc.next)) != 0 {
				t.Errorf("attempt 2 records memory %v, want %s", got, tc.next)
			}
		})
	}
}

func TestOnlyAJobThatWaitedInTheQueueIsTimed(t *testing.T) {
	c := class("ocr", 1, false, nil, ejv1.FormatPDF)
	for _, tc := range []struct {
		name    string
		verdict admissionVerdict
		want    []observation
	}{
		{"a job admitted at once", admissionVerdict{Admitted: true}, nil},
		{"a job that waited", admissionVerdict{Admitted: true, Waited: 1500 * time.Millisecond},
			[]observation{{Metric: metricQueueWait, Labels: map[string]string{"extractor_class": "ocr"}, Value: 1.5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &reconcileScope{job: pendingJob(), now: transitionNow}
			s.admitted(&c, tc.verdict)
			if diff := cmp.Diff(tc.want, s.queued.Metrics); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAQueuedJobIsInProgressForKstatusAndArgoCD(t *testing.T) {
	registerTestScheme()
	capped := class("ocr", 1, false, nil, ejv1.FormatPDF)
	capped.Spec.MaxRunning = ptr.To[int32](1)
	s := &reconcileScope{job: retryingJob(1, 0), now: transitionNow}
	s.queueJob(&capped, admissionVerdict{})
	s.summarizeStatus(true)
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s.job)
	if err != nil {
		t.Fatal(err)
	}
	result, err := kstatus.Compute(&unstructured.Unstructured{Object: content})
	if err != nil {
		t.Fatal(err)
	}
	health, message := argoCDHealth(NewWithT(t), content)
	if result.Status != kstatus.InProgressStatus || health != "Progressing" || message != s.job.Status.Message {
		t.Errorf("kstatus %s, Argo CD %s %q; want InProgress, Progressing and the job's message", result.Status, health, message)
	}
}
