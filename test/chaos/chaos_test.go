//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/harness/operator"
)

// TestKillRestart SIGKILLs the operator at random moments while the jobs of
// the failure mix run, starts it again each time, and restarts the
// kube-apiserver in between (etcd keeps the data, the certificates stay).
func TestKillRestart(t *testing.T) {
	start := time.Now()
	run := newMixRun(t, "kill-restart", prof.jobs)
	op := run.startOperator()
	defer op.Kill()
	run.createJobs(prof.createOver)

	// The API server restarts come after evenly spread kills.
	restartAfter := map[int]bool{}
	for i := 1; i <= prof.apiRestarts; i++ {
		restartAfter[max(1, i*prof.kills/(prof.apiRestarts+1))] = true
	}
	var violations []violation
	kills, restarts := 0, 0
	var downtimes []string
	for kills < prof.kills {
		time.Sleep(run.r.duration(prof.killGapMin, prof.killGapMax))
		if err := op.Exited(); err != nil {
			violations = append(violations, violation{what: err.Error()})
		}
		run.operatorDown()
		op.Kill()
		kills++
		time.Sleep(run.r.duration(0, 1500*time.Millisecond))
		if err := op.Start(); err != nil {
			t.Fatal(err)
		}
		run.operatorUpWhenReady(op)
		if restartAfter[kills] && restarts < prof.apiRestarts {
			time.Sleep(run.r.duration(500*time.Millisecond, 3*time.Second))
			// The first restart is graceful, the second a SIGKILL.
			hard := restarts%2 == 1
			restartFrom := time.Now()
			down, err := cp.RestartAPIServer(hard, run.r.duration(0, 2*time.Second))
			if err != nil {
				t.Fatalf("restarting kube-apiserver: %v", err)
			}
			run.apiserverRestarted(restartFrom, time.Now(), down)
			restarts++
			downtimes = append(downtimes, fmt.Sprintf("%s(hard=%t)", down.Round(100*time.Millisecond), hard))
			t.Logf("kube-apiserver restart %d after kill %d: unavailable for %s", restarts, kills, down.Round(100*time.Millisecond))
		}
	}
	faultsDone := time.Since(start)
	t.Logf("%d kills and %d kube-apiserver restarts (%v) in %s; waiting for every job to finish",
		kills, restarts, downtimes, faultsDone.Round(time.Second))

	stuck := run.waitFinished(time.Now().Add(prof.converge))
	settled := time.Since(start)
	violations = append(violations, run.verify(stuck)...)
	classViolations, classSummary := run.checkCappedClass()
	violations = append(violations, classViolations...)
	violations = append(violations, quietCheck(prof.quiet, op.LogPath)...)
	if err := op.Exited(); err != nil {
		violations = append(violations, violation{what: err.Error()})
	}
	errorsLogged := operator.CountErrors(operator.ReconcileErrors(operator.ReadLog(op.LogPath, 0)))
	n := run.report(violations)
	summary("chaos kill-restart (%s): jobs: %d, pods: %d, kills: %d, apiserver restarts: %d, injected errors: 0, reconcile errors logged: %d, retries checked against nextRetryAt: %d (unobserved %d), %s, faults over %s, all finished after %s, duration %s, violations: %d",
		prof.name, len(run.jobs), run.obs.podCount(), kills, restarts, errorsLogged, run.retriesChecked, run.retriesUnobserved, classSummary,
		faultsDone.Round(time.Second), settled.Round(time.Second), time.Since(start).Round(time.Second), n)
}

// TestWriteFailures runs the reconciler in-process on a client that fails a
// share of its writes with 409s, 500s and timeouts (before the request was
// sent, and after the API server applied it).
func TestWriteFailures(t *testing.T) {
	start := time.Now()
	run := newMixRun(t, "write-failures", prof.writeJobs)
	injector := newFaultInjector(prof.writeFailRate, newRand("write-failures-injector"))
	injector.enable(true)
	logPath := filepath.Join(run.dir, "operator.log")
	stop, err := startInProcessOperator(injector, logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	run.operatorLogs = []string{logPath}
	run.createJobs(5 * time.Second)
	stuck := run.waitFinished(time.Now().Add(prof.converge))
	settled := time.Since(start)
	violations := run.verify(stuck)
	classViolations, classSummary := run.checkCappedClass()
	violations = append(violations, classViolations...)
	violations = append(violations, quietCheck(prof.quiet, logPath)...)
	injected, byKind, writes := injector.total()
	errorsLogged := operator.CountErrors(operator.ReconcileErrors(operator.ReadLog(logPath, 0)))
	n := run.report(violations)
	if injected == 0 {
		t.Errorf("no write failed: the injector did not act")
	}
	kinds := make([]string, 0, len(byKind))
	for k, v := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(kinds)
	summary("chaos write-failures (%s): jobs: %d, pods: %d, kills: 0, apiserver restarts: 0, injected errors: %d of %d writes (%s), reconcile errors logged: %d, retries checked against nextRetryAt: %d (unobserved %d), %s, all finished after %s, duration %s, violations: %d",
		prof.name, len(run.jobs), run.obs.podCount(), injected, writes, strings.Join(kinds, ", "), errorsLogged,
		run.retriesChecked, run.retriesUnobserved, classSummary, settled.Round(time.Second), time.Since(start).Round(time.Second), n)
}

// Leader election timing: controller-runtime's defaults (cmd/main.go sets
// none of them), which client-go's elector runs.
const (
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
	// leasePoll is how often the test reads the Lease while it waits for a
	// new holder.
	leasePoll = 50 * time.Millisecond
	// minRequestBudget is the least time budgeted for one API request.
	minRequestBudget = 250 * time.Millisecond
)

// takeoverBound is the longest a takeover can take, counted from the
// leader's SIGKILL to the test's read that shows the new holder, when no
// API request takes longer than the request budget.
//
// Where the time goes, in client-go's tools/leaderelection:
//
//  1. The killed leader renewed last at R, before the kill K: measuring from
//     K rather than R only makes a takeover look shorter.
//  2. A candidate never compares the Lease's renewTime with its own clock
//     (two machines' clocks need not agree): it starts counting the lease
//     duration when it sees a record it has not seen before, at its first
//     try after the renewal landed. Its tries run in wait.JitterUntil with
//     leaderelection.JitterFactor (1.2), sliding: each starts RetryPeriod ×
//     (1 + 1.2·u), u uniform in [0, 1), after the previous one ended, 2 s to
//     4.4 s. So it sees R up to one jittered period late.
//  3. It takes the lease at its first try that starts LeaseDuration after
//     that sighting: up to one more jittered period late.
//  4. Seven requests lie on that path: the renewal's own write, the try in
//     flight when it landed and the sighting's read (each try is one read
//     while the lease is held), the try in flight at the expiry, the
//     acquiring try's read and update, and the test's read, which also
//     waits up to leasePoll.
//
// Typically that is 15 s + two mean waits for the next try (1.7 s each)
// − the mean time from the last renewal to the kill (1 s) ≈ 17 s, the
// "lease duration plus a retry period"; the worst case is 15 + 2 × 4.4 =
// 23.8 s plus the seven requests. A takeover of 20.4 s is two long waits.
func takeoverBound(requestBudget time.Duration) time.Duration {
	jittered := time.Duration(float64(retryPeriod) * (1 + leaderelection.JitterFactor))
	return leaseDuration + 2*jittered + 7*requestBudget + leasePoll
}

// requestBudget is what the bound allows for one request: twice the
// slowest read of the Lease the test itself made while it waited, which
// the same API server served at the same time as the replicas' requests,
// and never less than minRequestBudget.
func requestBudget(slowestRead time.Duration) time.Duration {
	return max(minRequestBudget, 2*slowestRead)
}

const leaseName = "extraction-operator.extraction.pybase.io"

// leaderCommand is how a replica with leader election starts. Outside a
// cluster controller-runtime cannot guess the lease's namespace, so it is
// passed with --leader-election-namespace.
func leaderCommand(namespace string) ([]string, error) {
	help, _ := exec.Command(manager, "-h").CombinedOutput()
	if !strings.Contains(string(help), "leader-election-namespace") {
		return nil, fmt.Errorf("the operator has no --leader-election-namespace flag, so it cannot elect a leader outside a cluster")
	}
	return append(append([]string{manager}, operatorArgs("--leader-elect")...), "--leader-election-namespace="+namespace), nil
}

func currentLease(namespace string) (*coordinationv1.Lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease := &coordinationv1.Lease{}
	err := admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: leaseName}, lease)
	return lease, err
}

func holder(lease *coordinationv1.Lease) string {
	if lease == nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// waitForHolder polls the lease until a holder other than previous holds
// it; it returns when it saw that, and the slowest of its reads.
func waitForHolder(namespace, previous string, timeout time.Duration) (lease *coordinationv1.Lease, seen time.Time, slowest time.Duration, err error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		sent := time.Now()
		lease, err := currentLease(namespace)
		seen = time.Now()
		slowest = max(slowest, seen.Sub(sent))
		if err == nil && holder(lease) != "" && holder(lease) != previous {
			return lease, seen, slowest, nil
		}
		time.Sleep(leasePoll)
	}
	return nil, time.Time{}, slowest, fmt.Errorf("no new leader within %s (previous %q)", timeout, previous)
}

// TestLeaderElection runs two replicas with --leader-elect and SIGKILLs the
// leader while jobs run: the other replica must take over within the bound
// that client-go's elector gives (takeoverBound), nothing may happen while
// neither leads, and no Pod may be created twice.
func TestLeaderElection(t *testing.T) {
	start := time.Now()
	run := newMixRun(t, "leader-election", prof.leaderJobs)
	command, err := leaderCommand(run.namespace)
	if err != nil {
		t.Fatal(err)
	}
	replicas := make([]*operator.Process, 2)
	for i := range replicas {
		if replicas[i], err = operator.New(run.dir, fmt.Sprintf("replica-%c", 'a'+i), command, operatorOptions); err != nil {
			t.Fatal(err)
		}
		run.operatorLogs = append(run.operatorLogs, replicas[i].LogPath)
		defer replicas[i].Kill()
	}
	run.operatorDown()
	if err := replicas[0].Start(); err != nil {
		t.Fatal(err)
	}
	run.operatorUpWhenReady(replicas[0])
	lease, _, _, err := waitForHolder(run.namespace, "", time.Minute)
	if err != nil {
		t.Fatalf("replica-a never became leader: %v", err)
	}
	leader, leaderID := 0, holder(lease)
	if err := replicas[1].Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	run.createJobs(5 * time.Second)

	type gap struct{ from, to time.Time }
	var violations []violation
	var gaps []gap
	var takeovers, bounds []string
	withinLiteral := 0 // takeovers within lease duration + one unjittered retry period
	for k := 0; k < prof.leaderKills; k++ {
		time.Sleep(run.r.duration(2*time.Second, 6*time.Second))
		before, err := currentLease(run.namespace)
		if err != nil || holder(before) != leaderID {
			t.Fatalf("the lease is not held by the expected leader %q: %v %v", leaderID, holder(before), err)
		}
		run.operatorDown()
		killed := time.Now()
		replicas[leader].Kill()
		// The other replica's workers start once it took the lease.
		run.operatorUpWhenReady(replicas[1-leader])
		after, seen, slowest, err := waitForHolder(run.namespace, leaderID, 2*time.Minute)
		if err != nil {
			violations = append(violations, violation{what: "after SIGKILL of the leader: " + err.Error()})
			break
		}
		takeover := seen.Sub(killed)
		sinceRenew := seen.Sub(before.Spec.RenewTime.Time)
		budget := requestBudget(slowest)
		bound := takeoverBound(budget)
		takeovers = append(takeovers, fmt.Sprintf("%s after the kill, %s after the last renewal", takeover.Round(100*time.Millisecond), sinceRenew.Round(100*time.Millisecond)))
		bounds = append(bounds, bound.Round(100*time.Millisecond).String())
		t.Logf("kill %d: %s took over %s after the SIGKILL of %s (%s after its last renewal); bound %s (slowest lease read %s, request budget %s)",
			k+1, replicas[1-leader].Name, takeover.Round(10*time.Millisecond), replicas[leader].Name, sinceRenew.Round(10*time.Millisecond),
			bound.Round(10*time.Millisecond), slowest.Round(time.Millisecond), budget)
		if takeover > bound {
			violations = append(violations, violation{what: fmt.Sprintf("takeover took %s after the leader's SIGKILL, more than lease duration %s + two retry periods of %s with client-go's jitter + 7 requests of %s (%s)",
				takeover.Round(10*time.Millisecond), leaseDuration, retryPeriod, budget, bound.Round(10*time.Millisecond))})
		}
		if takeover <= leaseDuration+retryPeriod {
			withinLiteral++
		}
		acquired := seen
		if after.Spec.AcquireTime != nil {
			acquired = after.Spec.AcquireTime.Time
		}
		gaps = append(gaps, gap{killed, acquired})
		if err := replicas[leader].Start(); err != nil { // back as a follower
			t.Fatal(err)
		}
		leader, leaderID = 1-leader, holder(after)
	}

	stuck := run.waitFinished(time.Now().Add(prof.converge))
	settled := time.Since(start)
	violations = append(violations, run.verify(stuck)...)
	classViolations, classSummary := run.checkCappedClass()
	violations = append(violations, classViolations...)
	// Nothing is created while no replica leads. Creation times are whole
	// seconds, so only the whole seconds strictly inside a gap count, and a
	// create the killed leader sent just before its death gets one more
	// second to land.
	for _, g := range gaps {
		from, to := g.from.Truncate(time.Second).Add(2*time.Second), g.to.Truncate(time.Second)
		for _, j := range run.jobs {
			seen, ok := run.obs.jobSnapshot(j.key())
			if !ok {
				continue
			}
			for _, p := range run.obs.podsOf(seen.uid) {
				if !p.created.Before(from) && p.created.Before(to) {
					violations = append(violations, violation{job: j.key(), what: fmt.Sprintf(
						"Pod %s created at %s while no replica led (leader killed %s, new leader from %s)", p.name,
						p.created.UTC().Format(time.RFC3339), g.from.UTC().Format(time.RFC3339Nano), g.to.UTC().Format(time.RFC3339Nano))})
				}
			}
		}
	}
	violations = append(violations, quietCheck(prof.quiet, replicas[0].LogPath, replicas[1].LogPath)...)
	for _, r := range replicas {
		if err := r.Exited(); err != nil {
			violations = append(violations, violation{what: err.Error()})
		}
	}
	n := run.report(violations)
	summary("chaos leader-election (%s): jobs: %d, pods: %d, replicas: 2, leader kills: %d, takeovers: [%s] (bounds [%s]; %d of %d within %s), apiserver restarts: 0, injected errors: 0, retries checked against nextRetryAt: %d (unobserved %d), %s, all finished after %s, duration %s, violations: %d",
		prof.name, len(run.jobs), run.obs.podCount(), len(gaps), strings.Join(takeovers, "; "), strings.Join(bounds, ", "), withinLiteral, len(gaps), leaseDuration+retryPeriod,
		run.retriesChecked, run.retriesUnobserved, classSummary, settled.Round(time.Second), time.Since(start).Round(time.Second), n)
}
