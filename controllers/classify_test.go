package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func exited(code int32, message string, reasons ...string) attemptFailure {
	return attemptFailure{exitCode: ptr.To(code), message: message, reasons: reasons}
}

func TestClassifyBuiltinTable(t *testing.T) {
	cases := []struct {
		name          string
		failure       attemptFailure
		wantErrorType string
		wantClass     ejv1.FailureClass
		wantMessage   string
	}{
		{"a connection error is retryable", exited(1, "ConnectionError: refused"), "ConnectionError", ejv1.ClassRetryable, "refused"},
		{"a corrupted file is permanent", exited(1, "CorruptedFile: bad xref table"), "CorruptedFile", ejv1.ClassPermanent, "bad xref table"},
		{"matching is a case-insensitive substring", exited(1, "s3connectionerror: dns"), "s3connectionerror", ejv1.ClassRetryable, "dns"},
		{"a longer error type containing a permanent one is permanent", exited(1, "PdfCorruptedFileError: x"), "PdfCorruptedFileError", ejv1.ClassPermanent, "x"},
		{"retryable entries are checked before permanent ones", exited(1, "TimeoutErrorPermissionDenied: x"), "TimeoutErrorPermissionDenied", ejv1.ClassRetryable, "x"},
		{"an unknown error type is retryable", exited(1, "QuotaWobble: hm"), "QuotaWobble", ejv1.ClassRetryable, "hm"},
		{"a stray log line is not an error type and falls back to the exit code", exited(65, "Traceback (most recent call last):"), "CorruptedFile", ejv1.ClassPermanent, "Traceback (most recent call last):"},
		{"sysexits 68 is ConnectionError", exited(68, ""), "ConnectionError", ejv1.ClassRetryable, "The extractor exited with code 68."},
		{"sysexits 69 is ServiceUnavailable", exited(69, ""), "ServiceUnavailable", ejv1.ClassRetryable, "The extractor exited with code 69."},
		{"sysexits 75 is TemporaryFailure", exited(75, ""), "TemporaryFailure", ejv1.ClassRetryable, "The extractor exited with code 75."},
		{"sysexits 77 is PermissionDenied", exited(77, ""), "PermissionDenied", ejv1.ClassPermanent, "The extractor exited with code 77."},
		{"an unknown exit code without a message is an unknown retryable error", exited(3, ""), ejv1.ErrorTypeUnknown, ejv1.ClassRetryable, "The extractor exited with code 3."},
		{"OOMKilled wins over the termination message", exited(137, "CorruptedFile: x", "OOMKilled"), ejv1.ErrorTypeOOMKilled, ejv1.ClassRetryable, "The extractor ran out of memory."},
		{"a deadline is a retryable TimeoutError", exited(137, "", "DeadlineExceeded"), ejv1.ErrorTypeTimeout, ejv1.ClassRetryable, "The attempt ran longer than attemptTimeout."},
		{"an eviction is a disruption", attemptFailure{reasons: []string{"Evicted"}, message: "node low on memory"}, ejv1.ErrorTypePodEvicted, ejv1.ClassDisruption, "node low on memory"},
		{"a DisruptionTarget condition is a disruption", exited(143, "", "DisruptionTarget", "PreemptionByScheduler"), ejv1.ErrorTypePodPreempted, ejv1.ClassDisruption, "The cluster disrupted the attempt's Pod."},
		{"a Pod deleted under a running attempt is a disruption", attemptFailure{deleted: true}, ejv1.ErrorTypePodDeleted, ejv1.ClassDisruption, "The attempt's Pod was deleted before it finished."},
		{"an eviction that deletes the Pod stays an eviction", attemptFailure{deleted: true, reasons: []string{"DisruptionTarget", "EvictionByEvictionAPI"}}, ejv1.ErrorTypePodEvicted, ejv1.ClassDisruption, "The cluster disrupted the attempt's Pod."},
		{"an invalid image name is permanent", attemptFailure{reasons: []string{"InvalidImageName"}, message: "bad ref"}, ejv1.ErrorTypeInvalidImageName, ejv1.ClassPermanent, "bad ref"},
		{"an image that cannot be pulled is retryable", attemptFailure{reasons: []string{"ImagePullBackOff"}}, ejv1.ErrorTypeImagePull, ejv1.ClassRetryable, "The extractor image could not be pulled."},
		{"a missing Secret is retryable", attemptFailure{reasons: []string{"CreateContainerConfigError"}, message: `secret "creds" not found`}, ejv1.ErrorTypeContainerConfig, ejv1.ClassRetryable, `secret "creds" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := classify(tc.failure, nil)
			if got.ErrorType != tc.wantErrorType || got.Class != tc.wantClass || got.Message != tc.wantMessage {
				t.Errorf("classify = (%q, %s, %q), want (%q, %s, %q)", got.ErrorType, got.Class, got.Message, tc.wantErrorType, tc.wantClass, tc.wantMessage)
			}
		})
	}
}

func TestClassifyRulesComeFirst(t *testing.T) {
	cases := []struct {
		name      string
		rules     []ejv1.RetryRule
		failure   attemptFailure
		wantClass ejv1.FailureClass
	}{
		{"an exit-code rule can fail a retryable error",
			[]ejv1.RetryRule{{ExitCodes: []int32{42}, Action: ejv1.RuleActionFail}},
			exited(42, "ConnectionError: x"), ejv1.ClassPermanent},
		{"an error-type rule can retry a permanent error",
			[]ejv1.RetryRule{{ErrorTypes: []string{"corrupted"}, Action: ejv1.RuleActionRetry}},
			exited(1, "CorruptedFile: x"), ejv1.ClassRetryable},
		{"a reason rule can ignore OOMKilled",
			[]ejv1.RetryRule{{Reasons: []string{"oomkilled"}, Action: ejv1.RuleActionIgnore}},
			exited(137, "", "OOMKilled"), ejv1.ClassDisruption},
		{"a reason rule can fail an eviction",
			[]ejv1.RetryRule{{Reasons: []string{"Evicted"}, Action: ejv1.RuleActionFail}},
			attemptFailure{reasons: []string{"Evicted"}}, ejv1.ClassPermanent},
		{"the first matching rule wins",
			[]ejv1.RetryRule{
				{ExitCodes: []int32{1}, Action: ejv1.RuleActionRetry},
				{ErrorTypes: []string{"Connection"}, Action: ejv1.RuleActionFail},
			},
			exited(1, "ConnectionError: x"), ejv1.ClassRetryable},
		{"a rule that does not match leaves the built-in class",
			[]ejv1.RetryRule{{ExitCodes: []int32{2}, Action: ejv1.RuleActionFail}},
			exited(1, "ConnectionError: x"), ejv1.ClassRetryable},
		{"an exit-code rule never matches a Pod that did not exit",
			[]ejv1.RetryRule{{ExitCodes: []int32{1}, Action: ejv1.RuleActionFail}},
			attemptFailure{deleted: true}, ejv1.ClassDisruption},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := classify(tc.failure, tc.rules); got.Class != tc.wantClass {
				t.Errorf("class = %s, want %s", got.Class, tc.wantClass)
			}
		})
	}
}

func TestFailureOfPodReadsReasonsFromEveryPlace(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{
		Phase:   corev1.PodFailed,
		Reason:  "Evicted",
		Message: "The node was low on resource: memory.",
		Conditions: []corev1.PodCondition{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet"},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, Reason: "Ready"},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:  extractorContainerName,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}},
		}},
	}}
	got := failureOfPod(pod)
	for _, want := range []string{"Evicted", "Error", "DisruptionTarget", "TerminationByKubelet"} {
		if !hasReason(got.reasons, want) {
			t.Errorf("reasons %v lack %q", got.reasons, want)
		}
	}
	if hasReason(got.reasons, "Ready") {
		t.Errorf("reasons %v include the Ready condition", got.reasons)
	}
	if got.exitCode == nil || *got.exitCode != 137 {
		t.Errorf("exitCode = %v, want 137", got.exitCode)
	}
	if got.message != "The node was low on resource: memory." {
		t.Errorf("message = %q, want the Pod's message when the container has none", got.message)
	}
}

func TestFailureOfPodPrefersTheTerminationMessage(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Status: corev1.PodStatus{
			Phase:   corev1.PodFailed,
			Message: "pod message",
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: extractorContainerName,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 1, Message: "RateLimitExceeded: slow down\ntrace...",
				}},
			}},
		},
	}
	got, _ := classify(failureOfPod(pod), nil)
	if got.ErrorType != "RateLimitExceeded" || got.Message != "slow down" || got.Class != ejv1.ClassRetryable {
		t.Errorf("classify = %+v", got)
	}
}
