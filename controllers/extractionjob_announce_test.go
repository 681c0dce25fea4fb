package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// These tests decide when a reconcile announces its transitions: after
// every status write that records them, whatever failed afterwards, and
// without a write only when the reconcile succeeded. The API server is a fake
// client whose calls fail as each case needs.

var (
	errInjected = apierrors.NewServiceUnavailable("injected by the test")
	errQuota    = apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "sheet-12", errors.New("exceeded quota: pods"))
	schemeOnce  sync.Once
)

// registerTestScheme readies the suite's scheme for tests that run outside the Ginkgo suite.
func registerTestScheme() {
	schemeOnce.Do(func() {
		utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
		utilruntime.Must(ejv1.AddToScheme(testScheme))
	})
}

// announcingReconciler reconciles the job on a fake client with the given failures.
func announcingReconciler(t *testing.T, job *ejv1.ExtractionJob, failures interceptor.Funcs) (*ExtractionJobReconciler, *events.FakeRecorder, client.Client) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(testScheme).
		WithObjects(job, testClass("test-pdf", pdfTestImage, ejv1.FormatPDF)).WithStatusSubresource(&ejv1.ExtractionJob{}).
		WithInterceptorFuncs(failures).Build()
	recorder := events.NewFakeRecorder(100)
	r := NewExtractionJobReconciler(c, c, recorder, Options{
		Clock: clocktesting.NewFakeClock(transitionNow), Jitter: func() float64 { return 0.5 },
	})
	return r, recorder, c
}

func reconcileOnce(r *ExtractionJobReconciler, job *ejv1.ExtractionJob) (ctrl.Result, error) {
	return r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(job)})
}

// settled gives the fixture the derived fields that a written status has.
func settled(job *ejv1.ExtractionJob) *ejv1.ExtractionJob {
	(&reconcileScope{job: job, now: transitionNow}).summarizeStatus(false)
	return job
}

func failCreate(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
	return errQuota
}

func TestAnnouncingAManualRetryWhoseFirstPodCannotBeCreated(t *testing.T) {
	registerTestScheme()
	job := settled(withRetryRequest(endedJob(ejv1.PhaseFailed), "t1"))
	r, recorder, c := announcingReconciler(t, job, interceptor.Funcs{Create: failCreate})
	manualBefore := testutil.ToFloat64(manualRetries)

	if _, err := reconcileOnce(r, job); err == nil {
		t.Fatal("the reconcile succeeded, want the Pod create's error")
	}
	written := &ejv1.ExtractionJob{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(job), written); err != nil {
		t.Fatal(err)
	}
	if written.Status.LastHandledRetryRequest != "t1" || written.Status.Phase != ejv1.PhasePending {
		t.Fatalf("status: token %q, phase %s; want the request handled and the job Pending",
			written.Status.LastHandledRetryRequest, written.Status.Phase)
	}
	want := []string{
		"Warning PodCreateFailed Creating the Pod of attempt 2 failed: " + errQuota.Error(),
		`Normal ManualRetry Manual retry requested with token "t1" after the job was Failed.`,
	}
	if diff := cmp.Diff(want, drain(recorder)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(manualRetries) - manualBefore; got != 1 {
		t.Errorf("manual retries counted %v times, want once", got)
	}
}

func TestAnnouncingNothingWhenNothingWasWrittenAndTheReconcileFailed(t *testing.T) {
	registerTestScheme()
	job := endedJob(ejv1.PhaseSucceeded)
	job.Spec.Cancel = true
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	job.Generation = 2
	settled(job)
	deleteFails := true
	r, recorder, _ := announcingReconciler(t, job, interceptor.Funcs{
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if deleteFails {
				return errInjected
			}
			return c.Delete(ctx, obj, opts...)
		},
	})

	for range 3 {
		if _, err := reconcileOnce(r, job); err == nil {
			t.Fatal("the reconcile succeeded, want the TTL delete's error")
		}
	}
	if got := drain(recorder); len(got) != 0 {
		t.Errorf("failing reconciles with nothing to write announced %q", got)
	}

	deleteFails = false
	if _, err := reconcileOnce(r, job); err != nil {
		t.Fatal(err)
	}
	want := []string{"Normal CancelIgnored The job already finished as Succeeded; cancel changes nothing."}
	if diff := cmp.Diff(want, drain(recorder)); diff != "" {
		t.Errorf("events once the reconcile succeeded (-want +got):\n%s", diff)
	}
}

func TestAnnouncingNothingWhenTheStatusWriteFails(t *testing.T) {
	registerTestScheme()
	for _, tc := range []struct {
		name       string
		writeError error
		wantErr    bool
		wantResult ctrl.Result
	}{
		{"a status write that fails", errInjected, true, ctrl.Result{}},
		{"a status write that conflicts", apierrors.NewConflict(schema.GroupResource{Resource: "extractionjobs"}, "sheet-12", errors.New("changed")),
			false, ctrl.Result{RequeueAfter: conflictRetryDelay}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := settled(transitionJob())
			r, recorder, _ := announcingReconciler(t, job, interceptor.Funcs{
				SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
					return tc.writeError
				},
			})
			// The first reconcile creates the attempt's Pod and leaves the
			// status to the Pod's first event; the second records the attempt.
			if _, err := reconcileOnce(r, job); err != nil {
				t.Fatal(err)
			}
			result, err := reconcileOnce(r, job)
			if (err != nil) != tc.wantErr || result != tc.wantResult {
				t.Errorf("reconcile = %+v, %v; want %+v and an error: %v", result, err, tc.wantResult, tc.wantErr)
			}
			if got := drain(recorder); len(got) != 0 {
				t.Errorf("a reconcile whose status was not written announced %q", got)
			}
		})
	}
}

// statusWrites counts the status writes that reach the fake API server.
func statusWrites(n *int) interceptor.Funcs {
	return interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			*n++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}
}

func TestTheReconcileThatCreatesAPodLeavesTheStatusToThePodsFirstEvent(t *testing.T) {
	registerTestScheme()
	job := settled(retryingJob(1, -3*time.Second))
	writes := 0
	r, recorder, c := announcingReconciler(t, job, statusWrites(&writes))
	latenessBefore := observations(t, retryLateness)

	if _, err := reconcileOnce(r, job); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: job.Namespace, Name: podName(job, 2)}, pod); err != nil {
		t.Fatalf("the retry's Pod was not created: %v", err)
	}
	if writes != 0 {
		t.Errorf("the reconcile that created the Pod wrote the status %d times, want none", writes)
	}
	if got := drain(recorder); len(got) != 0 {
		t.Errorf("the reconcile that created the Pod announced %q, want nothing yet", got)
	}
	if got := observations(t, retryLateness) - latenessBefore; got != 1 {
		t.Errorf("retry lateness observed %d times, want once, at the create", got)
	}

	if _, err := reconcileOnce(r, job); err != nil {
		t.Fatal(err)
	}
	written := &ejv1.ExtractionJob{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(job), written); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s attempt %d pod %s nextRetryAt %v, %d write", written.Status.Phase, written.Status.Attempt, written.Status.PodName, written.Status.NextRetryAt, writes)
	want := fmt.Sprintf("Pending attempt 2 pod %s nextRetryAt <nil>, 1 write", pod.Name)
	if got != want {
		t.Errorf("after the Pod's first event: %s; want %s", got, want)
	}
	wantEvents := []string{"Normal AttemptStarted Started attempt 2 in Pod " + pod.Name + "."}
	if diff := cmp.Diff(wantEvents, drain(recorder)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAPodThatFinishedBeforeItsFirstEventWasReconciledCostsOneStatusWrite(t *testing.T) {
	registerTestScheme()
	job := settled(pendingJob())
	writes := 0
	r, recorder, c := announcingReconciler(t, job, statusWrites(&writes))
	if _, err := reconcileOnce(r, job); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: job.Namespace, Name: podName(job, 1)}, pod); err != nil {
		t.Fatalf("the Pod was not created: %v", err)
	}
	pod.Status = terminatedPod(1, corev1.PodSucceeded, 0, `{"pages":2}`).Status
	if err := c.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}

	if _, err := reconcileOnce(r, job); err != nil {
		t.Fatal(err)
	}
	written := &ejv1.ExtractionJob{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(job), written); err != nil {
		t.Fatal(err)
	}
	if written.Status.Phase != ejv1.PhaseSucceeded || writes != 1 {
		t.Errorf("phase %s after %d status writes; want Succeeded after one", written.Status.Phase, writes)
	}
	wantEvents := []string{
		"Normal AttemptStarted Started attempt 1 in Pod " + pod.Name + ".",
		"Normal Succeeded Extraction succeeded on attempt 1.",
	}
	if diff := cmp.Diff(wantEvents, drain(recorder)); diff != "" {
		t.Errorf("events, one per transition (-want +got):\n%s", diff)
	}
}

// observations is how many samples a histogram has taken.
func observations(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	m := &dto.Metric{}
	if err := h.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
