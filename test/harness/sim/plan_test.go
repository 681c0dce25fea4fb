package sim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestParsePlan(t *testing.T) {
	cases := []struct {
		name        string
		annotations map[string]string
		want        Plan
		wantErr     bool
	}{
		{name: "no annotations are the zero plan", annotations: nil, want: Plan{}},
		{
			name: "every annotation is read",
			annotations: map[string]string{
				AnnotationOutcome: "fail", AnnotationFailAttempts: "2", AnnotationAttempts: "ok,fail,perm,evict,hold",
				AnnotationRunSeconds: "60,2", AnnotationReason: "OOMKilled", AnnotationExitCode: "77",
				AnnotationMessage: "ConnectionError: reset", AnnotationResult: `{"pages":3}`,
				AnnotationWaitingReason: "ErrImagePull", AnnotationWaitingMessage: "refused",
			},
			want: Plan{
				Outcome: "fail", FailAttempts: ptr.To(2), Attempts: []Token{OK, Fail, Perm, Evict, Hold},
				RunSeconds: []int{60, 2}, Reason: "OOMKilled", ExitCode: ptr.To[int32](77),
				Message: "ConnectionError: reset", Result: `{"pages":3}`,
				WaitingReason: "ErrImagePull", WaitingMessage: "refused",
			},
		},
		{name: "an unknown outcome is an error", annotations: map[string]string{AnnotationOutcome: "fial"}, wantErr: true},
		{name: "an unknown attempt token is an error", annotations: map[string]string{AnnotationAttempts: "ok,retry"}, wantErr: true},
		{name: "a token with a space is an error, as on KWOK", annotations: map[string]string{AnnotationAttempts: "ok, fail"}, wantErr: true},
		{name: "an empty attempts list is an error", annotations: map[string]string{AnnotationAttempts: ""}, wantErr: true},
		{name: "fail-attempts that is no number is an error", annotations: map[string]string{AnnotationFailAttempts: "two"}, wantErr: true},
		{name: "run-seconds that are no numbers are an error", annotations: map[string]string{AnnotationRunSeconds: "1,x"}, wantErr: true},
		{name: "an exit code that is no number is an error", annotations: map[string]string{AnnotationExitCode: "-"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePlan(tc.annotations)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParsePlan() error = %v, want error %t", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePlan() (-want +got):\n%s", diff)
			}
			if tc.wantErr {
				return
			}
			again, err := ParsePlan(got.Annotations())
			if err != nil {
				t.Fatalf("the plan's own annotations do not parse: %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("ParsePlan(Annotations()) is not the plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanAttempt(t *testing.T) {
	connection := Result{Phase: corev1.PodFailed, ContainerReason: "Error", ContainerMessage: "ConnectionError: reset", ExitCode: 1}
	succeeded := Result{Phase: corev1.PodSucceeded, ContainerReason: "Completed", ContainerMessage: `{"pages":1}`}
	permanent := Result{Phase: corev1.PodFailed, ContainerReason: "Error", ContainerMessage: PermanentMessage, ExitCode: 65}
	eviction := Result{Phase: corev1.PodFailed, Reason: "Evicted", Message: EvictionMessage, DisruptionTarget: "TerminationByKubelet", ContainerReason: "Error", ExitCode: 137}
	deadline := Result{Phase: corev1.PodFailed, Reason: "DeadlineExceeded", Message: DeadlineMessage, ContainerReason: "Error", ExitCode: 137}
	cases := []struct {
		name     string
		plan     Plan
		attempt  int
		deadline *int64
		want     Attempt
	}{
		{
			name: "the zero plan succeeds after two seconds with an empty result",
			plan: Plan{}, attempt: 1,
			want: Attempt{Token: OK, Result: Result{Phase: corev1.PodSucceeded, ContainerReason: "Completed"}, RunTime: 2 * time.Second},
		},
		{
			name: "outcome fail fails every attempt with the message and exit code 1",
			plan: Plan{Outcome: "fail", Message: "ConnectionError: reset"}, attempt: 4,
			want: Attempt{Token: Fail, Result: connection, RunTime: 2 * time.Second},
		},
		{
			name: "fail-attempts fails up to its number",
			plan: Plan{FailAttempts: ptr.To(2), Message: "ConnectionError: reset", Result: `{"pages":1}`}, attempt: 2,
			want: Attempt{Token: Fail, Result: connection, RunTime: 2 * time.Second},
		},
		{
			name: "fail-attempts succeeds after its number",
			plan: Plan{FailAttempts: ptr.To(2), Message: "ConnectionError: reset", Result: `{"pages":1}`}, attempt: 3,
			want: Attempt{Token: OK, Result: succeeded, RunTime: 2 * time.Second},
		},
		{
			name: "attempts gives each attempt its own token and overrides fail-attempts",
			plan: Plan{Attempts: []Token{Evict, Fail, OK}, FailAttempts: ptr.To(5), Message: "ConnectionError: reset"}, attempt: 2,
			want: Attempt{Token: Fail, Result: connection, RunTime: 2 * time.Second},
		},
		{
			name: "attempts past the end of the list repeat its last token",
			plan: Plan{Attempts: []Token{Fail, OK}, Result: `{"pages":1}`}, attempt: 7,
			want: Attempt{Token: OK, Result: succeeded, RunTime: 2 * time.Second},
		},
		{
			name: "perm fails with exit code 65 and CorruptedFile whatever the annotations say",
			plan: Plan{Attempts: []Token{Perm}, Reason: "OOMKilled", ExitCode: ptr.To[int32](3), Message: "ConnectionError: reset"}, attempt: 1,
			want: Attempt{Token: Perm, Result: permanent, RunTime: 2 * time.Second},
		},
		{
			name: "evict is an eviction with the fixed message whatever the annotations say",
			plan: Plan{Attempts: []Token{Evict}, Message: "ConnectionError: reset", ExitCode: ptr.To[int32](3)}, attempt: 1,
			want: Attempt{Token: Evict, Result: eviction, RunTime: 2 * time.Second},
		},
		{
			name: "hold keeps running",
			plan: Plan{Attempts: []Token{Hold}}, attempt: 1,
			want: Attempt{Token: Hold, Result: Result{Phase: corev1.PodRunning}, RunTime: 2 * time.Second},
		},
		{
			name: "hold with a deadline fails at the deadline",
			plan: Plan{Attempts: []Token{Hold}}, attempt: 1, deadline: ptr.To[int64](30),
			want: Attempt{Token: Hold, Result: deadline, RunTime: 30 * time.Second, RunTimeStated: true},
		},
		{
			name: "an attempt longer than its deadline fails at the deadline, a shorter one as planned",
			plan: Plan{RunSeconds: []int{60, 2}, Result: `{"pages":1}`}, attempt: 1, deadline: ptr.To[int64](5),
			want: Attempt{Token: OK, Result: deadline, RunTime: 5 * time.Second, RunTimeStated: true},
		},
		{
			name: "run-seconds past the end of the list repeat its last entry",
			plan: Plan{RunSeconds: []int{60, 2}, Result: `{"pages":1}`}, attempt: 3, deadline: ptr.To[int64](5),
			want: Attempt{Token: OK, Result: succeeded, RunTime: 2 * time.Second, RunTimeStated: true},
		},
		{
			name: "reason OOMKilled exits 137 with the container reason",
			plan: Plan{Outcome: "fail", Reason: "OOMKilled"}, attempt: 1,
			want: Attempt{Token: Fail, Result: Result{Phase: corev1.PodFailed, ContainerReason: "OOMKilled", ExitCode: 137}, RunTime: 2 * time.Second},
		},
		{
			name: "reason Evicted is an eviction with the message as the Pod's",
			plan: Plan{Outcome: "fail", Reason: "Evicted", Message: "The node was low on resource: ephemeral-storage."}, attempt: 1,
			want: Attempt{Token: Fail, Result: Result{
				Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: ephemeral-storage.",
				DisruptionTarget: "TerminationByKubelet", ContainerReason: "Error", ExitCode: 137,
			}, RunTime: 2 * time.Second},
		},
		{
			name: "reason DeadlineExceeded is the kubelet's deadline, with the exit code the plan names",
			plan: Plan{Outcome: "fail", Reason: "DeadlineExceeded", ExitCode: ptr.To[int32](143)}, attempt: 1,
			want: Attempt{Token: Fail, Result: Result{
				Phase: corev1.PodFailed, Reason: "DeadlineExceeded", Message: DeadlineMessage, ContainerReason: "Error", ExitCode: 143,
			}, RunTime: 2 * time.Second},
		},
		{
			name: "an exit code annotation replaces the default one",
			plan: Plan{Outcome: "fail", ExitCode: ptr.To[int32](69), Message: "ServiceUnavailable: 503"}, attempt: 1,
			want: Attempt{Token: Fail, Result: Result{Phase: corev1.PodFailed, ContainerReason: "Error", ContainerMessage: "ServiceUnavailable: 503", ExitCode: 69}, RunTime: 2 * time.Second},
		},
		{
			name: "a waiting reason keeps the container waiting whatever else the plan says",
			plan: Plan{Attempts: []Token{Perm}, WaitingReason: "ErrImagePull", WaitingMessage: "refused"}, attempt: 1, deadline: ptr.To[int64](1),
			want: Attempt{Token: Perm, Result: Result{Phase: corev1.PodPending, ContainerReason: "ErrImagePull", ContainerMessage: "refused"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.plan.Attempt(tc.attempt, tc.deadline)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Attempt(%d) (-want +got):\n%s", tc.attempt, diff)
			}
		})
	}
}

func TestFinalStatusShowsTheResult(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "extractor", Image: "x"}}}}
	for _, tokens := range []string{"ok", "fail", "perm", "evict", "hold"} {
		ts, err := ParseTokens(tokens)
		if err != nil {
			t.Fatal(err)
		}
		want := Plan{Attempts: ts, Reason: "OOMKilled", Message: "m", Result: "{}"}.Attempt(1, nil).Result
		shown := pod.DeepCopy()
		shown.Status = FinalStatus(pod, want, nowForTest, nowForTest)
		if diff := cmp.Diff(want, Observe(shown)); diff != "" {
			t.Errorf("%s: Observe(FinalStatus()) (-want +got):\n%s", tokens, diff)
		}
	}
	waiting := Plan{WaitingReason: "CreateContainerConfigError", WaitingMessage: "secret not found"}.Attempt(1, nil).Result
	shown := pod.DeepCopy()
	shown.Status = FinalStatus(pod, waiting, nowForTest, nowForTest)
	if diff := cmp.Diff(waiting, Observe(shown)); diff != "" {
		t.Errorf("waiting: Observe(FinalStatus()) (-want +got):\n%s", diff)
	}
}

var nowForTest = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
