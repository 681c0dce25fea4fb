//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/classwatch"
	"github.com/pybase/extraction-operator/test/harness/controlplane"
	"github.com/pybase/extraction-operator/test/harness/operator"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// mixRun is one run of jobs drawn from the failure mix in one namespace,
// with the observer and the kubelet, and the checks of its end state.
type mixRun struct {
	t         *testing.T
	name      string
	namespace string
	// namespaces are the run's namespace and its tenant's (capped jobs only).
	namespaces []string
	dir        string // this run's logs and evidence
	r          *lockedRand
	jobs       []*jobPlan
	obs        *observer
	kubelet    *sim.Kubelet
	ctx        context.Context
	cancel     context.CancelFunc
	created    sync.WaitGroup
	createErr  []string
	mu         sync.Mutex
	started    time.Time
	// operatorLogs are the logs of the run's operators, for evidence.
	operatorLogs []string
	// The run's capped class, how many jobs run in it, and its watch.
	class      *ejv1.ExtractorClass
	capped     int
	classWatch *classwatch.Watch
	// retry checks done and skipped (the observer missed the nextRetryAt write).
	retriesChecked, retriesUnobserved int
	unobserved                        []string
}

func newMixRun(t *testing.T, name string, n int) *mixRun {
	t.Helper()
	r := &lockedRand{r: newRand(name)}
	ns := newNamespace(t, "chaos-"+name)
	dir := filepath.Join(artifacts, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &mixRun{
		t: t, name: name, namespace: ns, namespaces: []string{ns}, dir: dir, r: r, ctx: ctx, cancel: cancel,
		jobs: newJobPlans(r, ns, "cj", n), started: time.Now(),
	}
	t.Cleanup(run.cancel)
	run.startCappedClass()
	obs, err := startObserver(run.namespaces...)
	if err != nil {
		t.Fatalf("starting the observer: %v", err)
	}
	run.obs = obs
	t.Cleanup(obs.stop)
	if run.kubelet, err = startKubelet(ctx, obs, r); err != nil {
		t.Fatalf("starting the kubelet: %v", err)
	}
	counts := map[string]int{}
	for _, j := range run.jobs {
		counts[fmt.Sprintf("%s→%s", j.plan, j.expect.phase)]++
	}
	t.Logf("%s: %d jobs in namespaces %v, %d of them in ExtractorClass %s: %v", name, n, run.namespaces, run.capped, run.class.Name, counts)
	return run
}

// createJobs creates the run's jobs spread over a period, in the background,
// and cancels the jobs whose plan says so after a random delay.
func (m *mixRun) createJobs(over time.Duration) {
	gap := time.Duration(0)
	if len(m.jobs) > 0 {
		gap = over / time.Duration(len(m.jobs))
	}
	m.created.Add(1)
	go func() {
		defer m.created.Done()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, j := range m.jobs {
			if m.ctx.Err() != nil {
				return
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				m.create(j)
			}()
			time.Sleep(gap)
		}
		wg.Wait()
	}()
}

func (m *mixRun) create(j *jobPlan) {
	err := retryUntil(m.ctx, 5*time.Minute, func(ctx context.Context) error {
		err := admin.Create(ctx, j.object())
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		m.mu.Lock()
		m.createErr = append(m.createErr, fmt.Sprintf("%s: %v", j.key(), err))
		m.mu.Unlock()
		return
	}
	if !j.cancel {
		return
	}
	time.Sleep(m.r.duration(0, 3*time.Second))
	patch := []byte(`{"spec":{"cancel":true}}`)
	err = retryUntil(m.ctx, 5*time.Minute, func(ctx context.Context) error {
		job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Namespace: j.namespace, Name: j.name}}
		return admin.Patch(ctx, job, client.RawPatch(types.MergePatchType, patch))
	})
	if err != nil {
		m.mu.Lock()
		m.createErr = append(m.createErr, fmt.Sprintf("%s: cancelling: %v", j.key(), err))
		m.mu.Unlock()
	}
}

// waitFinished waits until every job is in a terminal phase, or the deadline
// passes, and returns the jobs that are not.
func (m *mixRun) waitFinished(deadline time.Time) []*jobPlan {
	m.created.Wait()
	for {
		var open []*jobPlan
		for _, j := range m.jobs {
			job, err := m.obs.currentJob(m.ctx, j.namespace, j.name)
			if err != nil || !job.Status.Phase.Finished() {
				open = append(open, j)
			}
		}
		if len(open) == 0 || time.Now().After(deadline) {
			return open
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// harnessViolations are the test's own failures: jobs it could not create
// or cancel, Pod statuses its kubelet could not write.
func (m *mixRun) harnessViolations() []violation {
	var out []violation
	for _, e := range m.createErr {
		out = append(out, violation{what: "the test could not create or cancel a job: " + e})
	}
	if n := m.kubelet.AbandonedWrites(); n > 0 {
		out = append(out, violation{what: fmt.Sprintf("the test's kubelet failed to write %d Pod statuses", n)})
	}
	return out
}

// verify checks the end state of every job and of every Pod against the
// plans, and adds what the observer saw while the run went on.
func (m *mixRun) verify(stuck []*jobPlan) []violation {
	ctx := context.Background()
	out := m.harnessViolations()
	add := func(j *jobPlan, format string, args ...any) {
		out = append(out, violation{job: j.key(), what: fmt.Sprintf(format, args...)})
	}
	for _, j := range stuck {
		job, err := m.obs.currentJob(ctx, j.namespace, j.name)
		if err != nil {
			add(j, "stuck: never seen (%v)", err)
			continue
		}
		add(j, "stuck: still %q at the deadline (attempt %d, retryCount %d, message %q)",
			job.Status.Phase, job.Status.Attempt, job.Status.RetryCount, job.Status.Message)
	}

	byKey := map[string]*ejv1.ExtractionJob{}
	byUID := map[types.UID]*ejv1.ExtractionJob{}
	podsOfJob := map[types.UID][]corev1.Pod{}
	for _, ns := range m.namespaces {
		jobs := &ejv1.ExtractionJobList{}
		pods := &corev1.PodList{}
		if err := retryUntil(ctx, time.Minute, func(ctx context.Context) error {
			if err := admin.List(ctx, jobs, client.InNamespace(ns)); err != nil {
				return err
			}
			return admin.List(ctx, pods, client.InNamespace(ns))
		}); err != nil {
			return append(out, violation{what: "listing the run's jobs and Pods: " + err.Error()})
		}
		for i := range jobs.Items {
			byKey[ns+"/"+jobs.Items[i].Name] = &jobs.Items[i]
			byUID[jobs.Items[i].UID] = &jobs.Items[i]
		}
		for _, pod := range pods.Items {
			uid := types.UID(pod.Labels[ejv1.JobUIDLabel])
			if byUID[uid] == nil {
				out = append(out, violation{job: ns + "/?", what: fmt.Sprintf("Pod %s belongs to no job (job-uid %q): leaked", pod.Name, uid)})
				continue
			}
			podsOfJob[uid] = append(podsOfJob[uid], pod)
		}
	}

	for _, j := range m.jobs {
		job := byKey[j.key()]
		if job == nil {
			add(j, "lost: the job no longer exists")
			continue
		}
		out = append(out, m.verifyJob(j, job, podsOfJob[job.UID])...)
	}
	m.writeTimeline()
	return append(out, m.obs.takeViolations()...)
}

func (m *mixRun) verifyJob(j *jobPlan, job *ejv1.ExtractionJob, pods []corev1.Pod) []violation {
	var out []violation
	add := func(format string, args ...any) {
		out = append(out, violation{job: j.key(), what: fmt.Sprintf(format, args...)})
	}
	st, exp := job.Status, j.expect
	if st.Phase != exp.phase {
		add("phase %q, want %q (plan %s, maxRetries %d, maxDisruptions %d)", st.Phase, exp.phase, j.plan, j.maxRetries, j.maxDisruptions)
	}
	if st.RetryCount != exp.retryCount {
		add("retryCount %d, want %d", st.RetryCount, exp.retryCount)
	}
	if st.DisruptionCount != exp.disruptionCount {
		add("disruptionCount %d, want %d", st.DisruptionCount, exp.disruptionCount)
	}
	switch {
	case j.cancel && st.Attempt > 1:
		add("cancelled job made %d attempts, want at most 1", st.Attempt)
	case !j.cancel && st.Attempt != exp.attempts:
		add("%d attempts, want %d", st.Attempt, exp.attempts)
	}
	if counted := st.Attempt - st.DisruptionCount; counted > j.maxRetries+1 {
		add("%d counted attempts, more than maxRetries+1 = %d", counted, j.maxRetries+1)
	}

	// The job runs in its class, and so does every attempt; a job
	// cancelled before its first attempt never chose one.
	wantClass := j.class
	if wantClass == "" {
		wantClass = controlplane.DefaultClassName
	}
	if st.Attempt > 0 && st.ExtractorClassName != wantClass {
		add("status.extractorClassName %q, want %q", st.ExtractorClassName, wantClass)
	}
	for _, pod := range pods {
		if got := pod.Labels[ejv1.ExtractorClassLabel]; got != wantClass {
			add("Pod %s has class label %q, want %q", pod.Name, got, wantClass)
		}
	}

	// Every Pod the job ever had, as the observer saw them.
	seenPods := m.obs.podsOf(job.UID)
	if int32(len(seenPods)) > st.Attempt {
		add("%d Pods seen for %d recorded attempts: a Pod the job does not count", len(seenPods), st.Attempt)
	}
	// The Pods that exist now.
	for _, pod := range pods {
		attempt, _ := strconv.Atoi(pod.Labels[ejv1.AttemptLabel])
		if int32(attempt) > st.Attempt || attempt < 1 {
			add("Pod %s of attempt %d exists but the job records %d attempts: untracked", pod.Name, attempt, st.Attempt)
		}
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			add("Pod %s (attempt %d) is still %q after the job finished as %s: leaked", pod.Name, attempt, pod.Status.Phase, st.Phase)
		}
		if ref := metav1.GetControllerOf(&pod); ref == nil || ref.UID != job.UID {
			add("Pod %s is not controlled by the job", pod.Name)
		}
	}
	if !j.cancel && st.PodName != "" {
		var current *corev1.Pod
		for i := range pods {
			if pods[i].Name == st.PodName {
				current = &pods[i]
			}
		}
		want := corev1.PodFailed
		if st.Phase == ejv1.PhaseSucceeded {
			want = corev1.PodSucceeded
		}
		switch {
		case current == nil:
			add("the last attempt's Pod %s is gone", st.PodName)
		case st.Phase.Finished() && current.Status.Phase != want:
			add("finished as %s while its last Pod %s is %q: finished early", st.Phase, current.Name, current.Status.Phase)
		}
	}

	// The history agrees with what each attempt's Pod did.
	for _, rec := range st.Attempts {
		want := outcomeOfAttempt(j.plan.at(int(rec.Attempt)))
		if rec.Outcome != want {
			add("status.attempts: attempt %d recorded %s, its Pod's plan says %s", rec.Attempt, rec.Outcome, want)
		}
		if rec.FinishTime == nil {
			add("status.attempts: attempt %d has no finish time", rec.Attempt)
		}
	}
	if want := min(st.Attempt, ejv1.MaxAttemptRecords); int32(len(st.Attempts)) != want {
		add("status.attempts holds %d records for %d attempts", len(st.Attempts), st.Attempt)
	}

	// No retry before its time.
	finished := map[int32]time.Time{}
	for _, rec := range st.Attempts {
		if rec.FinishTime != nil {
			finished[rec.Attempt] = rec.FinishTime.Time
		}
	}
	for _, p := range seenPods {
		if p.attempt < 2 {
			continue
		}
		if due, ok := m.obs.nextRetryAt(job.UID, p.attempt); ok {
			m.retriesChecked++
			// creationTimestamp has whole seconds, truncated.
			if p.created.Before(due.Truncate(time.Second)) {
				add("Pod %s of attempt %d created at %s, before nextRetryAt %s", p.name, p.attempt,
					p.created.UTC().Format(time.RFC3339), due.UTC().Format(time.RFC3339))
			}
			if p.firstSeen.Before(due) {
				add("Pod %s of attempt %d seen at %s, before nextRetryAt %s", p.name, p.attempt,
					p.firstSeen.UTC().Format(time.RFC3339Nano), due.UTC().Format(time.RFC3339))
			}
		} else {
			m.retriesUnobserved++
			m.unobserved = append(m.unobserved, fmt.Sprintf("%s attempt %d (Pod %s created %s, seen %s)", j.key(), p.attempt, p.name,
				p.created.UTC().Format(time.RFC3339), p.firstSeen.UTC().Format("15:04:05.000")))
		}
		// Independent of what the watch caught: the previous attempt's
		// finish time plus the backoff without jitter. Both times are whole
		// seconds, cut from the true ones, so the comparison is exact.
		if prev, ok := finished[p.attempt-1]; ok && int(p.attempt) < len(exp.minDelay) {
			if earliest := prev.Add(exp.minDelay[p.attempt]); p.created.Before(earliest) {
				add("Pod %s of attempt %d created at %s, less than the backoff %s after attempt %d finished at %s",
					p.name, p.attempt, p.created.UTC().Format(time.RFC3339), exp.minDelay[p.attempt], p.attempt-1,
					prev.UTC().Format(time.RFC3339))
			}
		}
	}
	return out
}

// quietCheck waits for the period and reports reconcile errors logged in it
// by any of the operators: once everything has finished, an operator that
// still logs errors is looping.
func quietCheck(period time.Duration, logPaths ...string) []violation {
	offsets := make([]int64, len(logPaths))
	for i, p := range logPaths {
		offsets[i] = operator.LogSize(p)
	}
	time.Sleep(period)
	var out []violation
	for i, p := range logPaths {
		for job, errs := range operator.ReconcileErrors(operator.ReadLog(p, offsets[i])) {
			out = append(out, violation{job: job, what: fmt.Sprintf("%d reconcile errors in %s after the run settled (error loop), first: %s",
				len(errs), filepath.Base(p), errs[0])})
		}
	}
	return out
}

// report writes evidence for the violations (the job's YAML, its Pods, what
// the observer saw, and the operator log lines that name it), fails the test
// and returns the number of violations.
func (m *mixRun) report(violations []violation) int {
	return reportViolations(m.t, m.dir, m.namespace, m.obs, m.operatorLogs, violations)
}

func reportViolations(t *testing.T, dir, namespace string, obs *observer, logs []string, violations []violation) int {
	if len(violations) == 0 {
		return 0
	}
	// The same finding seen in many watch events counts once.
	unique := violations[:0:0]
	seen := map[string]bool{}
	for _, v := range violations {
		if !seen[v.String()] {
			seen[v.String()] = true
			unique = append(unique, v)
		}
	}
	violations = unique
	sort.SliceStable(violations, func(i, k int) bool { return violations[i].job < violations[k].job })
	var text strings.Builder
	for _, v := range violations {
		fmt.Fprintln(&text, v)
	}
	_ = os.WriteFile(filepath.Join(dir, "violations.txt"), []byte(text.String()), 0o644)
	evidence := filepath.Join(dir, "evidence")
	_ = os.MkdirAll(evidence, 0o755)
	written := map[string]bool{}
	for _, v := range violations {
		if v.job == "" || written[v.job] || len(written) >= 20 {
			continue
		}
		written[v.job] = true
		writeEvidence(evidence, v.job, obs, logs, violations)
	}
	shown := violations
	if len(shown) > 30 {
		shown = shown[:30]
	}
	for _, v := range shown {
		t.Errorf("violation: %s", v)
	}
	t.Errorf("%d violations; all in %s, evidence for %d jobs in %s", len(violations), filepath.Join(dir, "violations.txt"), len(written), evidence)
	return len(violations)
}

func writeEvidence(dir, key string, obs *observer, logs []string, violations []violation) {
	namespace, name, _ := strings.Cut(key, "/")
	var b strings.Builder
	fmt.Fprintf(&b, "# Evidence for %s\n\n## Violations\n", key)
	for _, v := range violations {
		if v.job == key {
			fmt.Fprintf(&b, "- %s\n", v.what)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	job := &ejv1.ExtractionJob{}
	words := []string{name}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, job); err == nil {
		job.ManagedFields = nil
		out, _ := yaml.Marshal(job)
		fmt.Fprintf(&b, "\n## Job\n```yaml\n%s```\n", out)
		pods := &corev1.PodList{}
		if err := admin.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{ejv1.JobUIDLabel: string(job.UID)}); err == nil {
			fmt.Fprintf(&b, "\n## Pods now\n")
			for _, pod := range pods.Items {
				fmt.Fprintf(&b, "- %s uid=%s attempt=%s phase=%s created=%s deleting=%t\n", pod.Name, pod.UID,
					pod.Labels[ejv1.AttemptLabel], pod.Status.Phase, pod.CreationTimestamp.UTC().Format(time.RFC3339), pod.DeletionTimestamp != nil)
			}
		}
	} else {
		fmt.Fprintf(&b, "\n## Job\nnot readable: %v\n", err)
	}
	if obs != nil {
		if seen, ok := obs.jobSnapshot(key); ok {
			fmt.Fprintf(&b, "\n## Pods the test's watch saw (uid %s)\n", seen.uid)
			for _, p := range obs.podsOf(seen.uid) {
				fmt.Fprintf(&b, "- %s uid=%s attempt=%d created=%s firstSeen=%s deleted=%t\n", p.name, p.uid, p.attempt,
					p.created.UTC().Format(time.RFC3339), p.firstSeen.UTC().Format("15:04:05.000"), p.deleted)
				words = append(words, p.name)
			}
			fmt.Fprintf(&b, "\n## Job status versions the test's watch saw\n")
			for _, v := range seen.versions {
				fmt.Fprintf(&b, "- %s\n", v)
			}
		}
	}
	for _, logPath := range logs {
		fmt.Fprintf(&b, "\n## %s (lines naming the job or its Pods, and restart markers)\n```\n", logPath)
		for _, line := range operator.Excerpt(logPath, 200, words...) {
			fmt.Fprintln(&b, line)
		}
		fmt.Fprintf(&b, "```\n")
	}
	_ = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(key, "/", "_")+".md"), []byte(b.String()), 0o644)
}

// writeTimeline keeps what the observer saw of every job, for the record.
func (m *mixRun) writeTimeline() {
	var b strings.Builder
	for _, j := range m.jobs {
		seen, ok := m.obs.jobSnapshot(j.key())
		fmt.Fprintf(&b, "%s plan=%s maxRetries=%d maxDisruptions=%d cancel=%t expect=%s/%d attempts\n", j.key(), j.plan,
			j.maxRetries, j.maxDisruptions, j.cancel, j.expect.phase, j.expect.attempts)
		if !ok {
			continue
		}
		for _, v := range seen.versions {
			fmt.Fprintf(&b, "  job %s\n", v)
		}
		for _, p := range m.obs.podsOf(seen.uid) {
			fmt.Fprintf(&b, "  pod %s attempt=%d uid=%s created=%s firstSeen=%s deleted=%t\n", p.name, p.attempt, p.uid,
				p.created.UTC().Format(time.RFC3339), p.firstSeen.UTC().Format("15:04:05.000"), p.deleted)
		}
	}
	if len(m.unobserved) > 0 {
		fmt.Fprintf(&b, "\nRetry Pods whose nextRetryAt the watch did not see:\n")
		for _, u := range m.unobserved {
			fmt.Fprintf(&b, "  %s\n", u)
		}
	}
	_ = os.WriteFile(filepath.Join(m.dir, "timeline.txt"), []byte(b.String()), 0o644)
}
