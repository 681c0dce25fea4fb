//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/operator"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// TestCleanup deletes things under the operator: a running attempt's Pod
// while the operator is down, a finished attempt's Pod before the operator
// read it, a job whose Pod still runs, and jobs whose retry is pending (with
// background and foreground propagation, and while the operator is down).
// The API server here has no garbage collector, so for a deleted job the test
// checks that its Pods carry the controller reference a real one follows
// (the KWOK end-to-end suite checks the collection itself), and that the
// operator neither recreates nor loops on them.
func TestCleanup(t *testing.T) {
	start := time.Now()
	r := &lockedRand{r: newRand("cleanup")}
	ns := newNamespace(t, "chaos-cleanup")
	dir := filepath.Join(artifacts, "cleanup")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	obs, err := startObserver(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube, err := startKubelet(ctx, obs, r)
	if err != nil {
		t.Fatal(err)
	}
	op, err := operator.New(dir, "operator", append([]string{manager}, operatorArgs()...), operator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	defer op.Kill()

	slow, slower := chaosBackoff, chaosBackoff
	slow.Base, slow.Max = metav1.Duration{Duration: 4 * time.Second}, metav1.Duration{Duration: 8 * time.Second}
	slower.Base, slower.Max = metav1.Duration{Duration: 8 * time.Second}, metav1.Duration{Duration: 8 * time.Second}
	jobs := map[string]*jobPlan{}
	for _, j := range []*jobPlan{
		{name: "pod-deleted-while-down", plan: parsePlan("hold,ok"), backoff: chaosBackoff},
		{name: "succeeded-pod-deleted-while-down", plan: parsePlan("hold,ok"), backoff: chaosBackoff},
		{name: "job-deleted-pod-running", plan: parsePlan("hold"), backoff: chaosBackoff},
		{name: "job-deleted-retry-pending", plan: parsePlan("fail,ok"), backoff: slow},
		{name: "job-foreground-deleted-retry-pending", plan: parsePlan("fail,ok"), backoff: slow},
		{name: "job-deleted-while-down-retry-pending", plan: parsePlan("fail,ok"), backoff: slower},
	} {
		j.namespace, j.maxRetries, j.maxDisruptions = ns, 1, 2
		jobs[j.name] = j
		if err := admin.Create(ctx, j.object()); err != nil {
			t.Fatal(err)
		}
	}
	var violations []violation
	violate := func(name, format string, args ...any) {
		violations = append(violations, violation{job: ns + "/" + name, what: fmt.Sprintf(format, args...)})
	}
	waitFor := func(name, what string, cond func(*ejv1.ExtractionJob) bool) *ejv1.ExtractionJob {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			job, err := obs.currentJob(ctx, ns, name)
			if err == nil && cond(job) {
				return job
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s never became %s", name, what)
		return nil
	}
	retrying := func(job *ejv1.ExtractionJob) bool {
		return job.Status.Phase == ejv1.PhaseRetrying && job.Status.NextRetryAt != nil
	}
	running := func(job *ejv1.ExtractionJob) bool { return job.Status.Phase == ejv1.PhaseRunning }
	deleteJob := func(job *ejv1.ExtractionJob, policy metav1.DeletionPropagation) {
		t.Helper()
		if err := admin.Delete(ctx, job, client.PropagationPolicy(policy), client.Preconditions{UID: &job.UID}); err != nil {
			t.Fatalf("deleting %s: %v", job.Name, err)
		}
	}
	attemptPod := func(uid types.UID, attempt int) *corev1.Pod {
		t.Helper()
		pods := &corev1.PodList{}
		if err := admin.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{
			ejv1.JobUIDLabel: string(uid), ejv1.AttemptLabel: strconv.Itoa(attempt),
		}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			t.Fatalf("job uid %s has %d Pods for attempt %d", uid, len(pods.Items), attempt)
		}
		return &pods.Items[0]
	}

	// Jobs deleted while their retry is pending, the operator running.
	type deletedJob struct {
		name string
		uid  types.UID
		due  time.Time
	}
	var deleted []deletedJob
	for _, c := range []struct {
		name   string
		policy metav1.DeletionPropagation
	}{
		{"job-deleted-retry-pending", metav1.DeletePropagationBackground},
		{"job-foreground-deleted-retry-pending", metav1.DeletePropagationForeground},
	} {
		job := waitFor(c.name, "Retrying", retrying)
		deleteJob(job, c.policy)
		deleted = append(deleted, deletedJob{c.name, job.UID, job.Status.NextRetryAt.Time})
	}
	// A job deleted while its attempt runs.
	orphanJob := waitFor("job-deleted-pod-running", "Running", running)
	orphanPod := attemptPod(orphanJob.UID, 1)
	deleteJob(orphanJob, metav1.DeletePropagationBackground)
	deleted = append(deleted, deletedJob{orphanJob.Name, orphanJob.UID, time.Now()})

	// Deletions while the operator is down.
	podDeleted := waitFor("pod-deleted-while-down", "Running", running)
	succeededDeleted := waitFor("succeeded-pod-deleted-while-down", "Running", running)
	downRetry := waitFor("job-deleted-while-down-retry-pending", "Retrying", retrying)
	op.Kill()
	killedAt := time.Now()
	pod := attemptPod(podDeleted.UID, 1)
	if err := admin.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); err != nil {
		t.Fatal(err)
	}
	pod = attemptPod(succeededDeleted.UID, 1)
	if err := kube.Report(ctx, pod, jobs[succeededDeleted.Name].plan.simPlan().Ending(sim.OK)); err != nil {
		t.Fatal(err)
	}
	if got := attemptPod(succeededDeleted.UID, 1); got.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("could not mark %s Succeeded: %s", got.Name, got.Status.Phase)
	}
	if err := admin.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); err != nil {
		t.Fatal(err)
	}
	deleteJob(downRetry, metav1.DeletePropagationBackground)
	deleted = append(deleted, deletedJob{downRetry.Name, downRetry.UID, downRetry.Status.NextRetryAt.Time})
	time.Sleep(time.Second)
	logOffset := op.LogSize()
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("operator down for %s while two Pods and a job were deleted", time.Since(killedAt).Round(time.Millisecond))

	// A running attempt's Pod deleted: a disruption, retried as attempt 2.
	job := waitFor("pod-deleted-while-down", "finished", func(j *ejv1.ExtractionJob) bool { return j.Status.Phase.Finished() })
	if st := job.Status; st.Phase != ejv1.PhaseSucceeded || st.Attempt != 2 || st.DisruptionCount != 1 || st.RetryCount != 0 {
		violate(job.Name, "phase %s, attempt %d, disruptionCount %d, retryCount %d; want Succeeded on attempt 2 after one disruption",
			st.Phase, st.Attempt, st.DisruptionCount, st.RetryCount)
	} else if rec := st.Attempts[0]; rec.Outcome != ejv1.OutcomeFailed || rec.ErrorType != ejv1.ErrorTypePodDeleted || rec.Class != ejv1.ClassDisruption {
		violate(job.Name, "attempt 1 recorded as %s %s %s; want Failed PodDeleted Disruption", rec.Outcome, rec.ErrorType, rec.Class)
	}
	// A finished attempt's Pod deleted before the operator read it: the
	// extraction succeeded; running it again is doing it twice.
	job = waitFor("succeeded-pod-deleted-while-down", "finished", func(j *ejv1.ExtractionJob) bool { return j.Status.Phase.Finished() })
	if st := job.Status; st.Attempt != 1 {
		violate(job.Name, "done twice: attempt 1 succeeded and its Pod was deleted while the operator was down; the operator "+
			"took it for a disruption (%s) and ran %d attempts (phase %s, disruptionCount %d)",
			lastErrorType(st), st.Attempt, st.Phase, st.DisruptionCount)
	}

	// Past every deleted job's retry time: no second attempt, no recreated Pod.
	latest := time.Now()
	for _, d := range deleted {
		latest = maxTime(latest, d.due)
	}
	time.Sleep(time.Until(latest.Add(3 * time.Second)))
	// The orphaned attempt finishes, as a kubelet would report it.
	if err := kube.Report(ctx, orphanPod, jobs[orphanJob.Name].plan.simPlan().Ending(sim.Fail)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)

	pods := &corev1.PodList{}
	if err := admin.List(ctx, pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, d := range deleted {
		for _, p := range obs.podsOf(d.uid) {
			if p.attempt != 1 {
				violate(d.name, "Pod %s of attempt %d created after the job was deleted", p.name, p.attempt)
			}
		}
		for _, pod := range pods.Items {
			if types.UID(pod.Labels[ejv1.JobUIDLabel]) != d.uid {
				continue
			}
			ref := metav1.GetControllerOf(&pod)
			switch {
			case ref == nil || ref.UID != d.uid || ref.Kind != "ExtractionJob":
				violate(d.name, "Pod %s outlives its job without a controller reference to it: the garbage collector would leak it", pod.Name)
			case ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion:
				violate(d.name, "Pod %s has no blockOwnerDeletion: foreground deletion of the job would not wait for it", pod.Name)
			}
		}
	}
	// Foreground deletion: without a garbage collector the job waits with its
	// finalizer; the operator must leave it alone, then it goes.
	fg := &ejv1.ExtractionJob{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "job-foreground-deleted-retry-pending"}, fg); err != nil {
		violate("job-foreground-deleted-retry-pending", "expected the job to wait for its foreground deletion: %v", err)
	} else {
		if fg.Status.Attempt != 1 {
			violate(fg.Name, "attempt %d started while the job was being deleted", fg.Status.Attempt)
		}
		fg.Finalizers = nil
		if err := admin.Update(ctx, fg); err != nil {
			t.Fatalf("removing the foregroundDeletion finalizer: %v", err)
		}
	}
	// Every remaining Pod either belongs to a live job and is finished, or
	// to a deleted job (checked above).
	for _, pod := range pods.Items {
		uid := types.UID(pod.Labels[ejv1.JobUIDLabel])
		isDeleted := false
		for _, d := range deleted {
			isDeleted = isDeleted || d.uid == uid
		}
		if !isDeleted && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			violate("?", "Pod %s is %s although its job finished: leaked", pod.Name, pod.Status.Phase)
		}
	}

	// No error loops: a few errors around the restart are fine, a job that
	// keeps failing to reconcile is not.
	errs := operator.ReconcileErrors(operator.ReadLog(op.LogPath, logOffset))
	for key, list := range errs {
		if len(list) > 3 {
			violations = append(violations, violation{job: key, what: fmt.Sprintf("%d reconcile errors since the restart, first: %s", len(list), list[0])})
		}
	}
	violations = append(violations, quietCheck(prof.quiet, op.LogPath)...)
	violations = append(violations, obs.takeViolations()...)
	if err := op.Exited(); err != nil {
		violations = append(violations, violation{what: err.Error()})
	}

	// Play the garbage collector, so the namespace ends clean.
	for _, pod := range pods.Items {
		if _, err := obs.currentJob(ctx, ns, ownerName(&pod)); apierrors.IsNotFound(err) {
			_ = admin.Delete(ctx, &pod)
		}
	}
	n := reportViolations(t, dir, ns, obs, []string{op.LogPath}, violations)
	summary("chaos cleanup (%s): jobs: %d (Pod deleted while down, succeeded Pod deleted while down, job deleted with running Pod, job deleted with retry pending: background, foreground, while down), kills: 1, apiserver restarts: 0, injected errors: 0, reconcile errors logged since restart: %d, duration %s, violations: %d",
		prof.name, len(jobs), operator.CountErrors(errs), time.Since(start).Round(time.Second), n)
}

func lastErrorType(st ejv1.ExtractionJobStatus) string {
	if st.LastFailure == nil {
		return "no lastFailure"
	}
	return st.LastFailure.ErrorType + "/" + string(st.LastFailure.Class)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func ownerName(pod *corev1.Pod) string {
	if ref := metav1.GetControllerOf(pod); ref != nil {
		return ref.Name
	}
	return ""
}
