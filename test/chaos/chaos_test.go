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
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestKillRestart SIGKILLs the operator at random moments while the jobs of
// the failure mix run, starts it again each time, and restarts the
// kube-apiserver in between (etcd keeps the data, the certificates stay).
func TestKillRestart(t *testing.T) {
	start := time.Now()
	run := newMixRun(t, "kill-restart", prof.jobs)
	op, err := newOperatorProcess(run.dir, "operator", append([]string{manager}, operatorArgs()...))
	if err != nil {
		t.Fatal(err)
	}
	run.operatorLogs = []string{op.logPath}
	if err := op.start(); err != nil {
		t.Fatal(err)
	}
	defer op.kill()
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
		if crashed := op.exitedUnexpectedly(); crashed != "" {
			violations = append(violations, violation{what: crashed})
		}
		op.kill()
		kills++
		time.Sleep(run.r.duration(0, 1500*time.Millisecond))
		if err := op.start(); err != nil {
			t.Fatal(err)
		}
		if restartAfter[kills] && restarts < prof.apiRestarts {
			time.Sleep(run.r.duration(500*time.Millisecond, 3*time.Second))
			// The first restart is graceful, the second a SIGKILL.
			hard := restarts%2 == 1
			down, err := cp.restartAPIServer(hard, run.r.duration(0, 2*time.Second))
			if err != nil {
				t.Fatalf("restarting kube-apiserver: %v", err)
			}
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
	violations = append(violations, quietCheck(prof.quiet, op.logPath)...)
	if crashed := op.exitedUnexpectedly(); crashed != "" {
		violations = append(violations, violation{what: crashed})
	}
	errorsLogged := countErrors(reconcileErrors(readLog(op.logPath, 0)))
	n := run.report(violations)
	summary("chaos kill-restart (%s): jobs: %d, pods: %d, kills: %d, apiserver restarts: %d, injected errors: 0, reconcile errors logged: %d, retries checked against nextRetryAt: %d (unobserved %d), faults over %s, all finished after %s, duration %s, violations: %d",
		prof.name, len(run.jobs), run.obs.podCount(), kills, restarts, errorsLogged, run.retriesChecked, run.retriesUnobserved,
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
	violations = append(violations, quietCheck(prof.quiet, logPath)...)
	injected, byKind, writes := injector.total()
	errorsLogged := countErrors(reconcileErrors(readLog(logPath, 0)))
	n := run.report(violations)
	if injected == 0 {
		t.Errorf("no write failed: the injector did not act")
	}
	kinds := make([]string, 0, len(byKind))
	for k, v := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(kinds)
	summary("chaos write-failures (%s): jobs: %d, pods: %d, kills: 0, apiserver restarts: 0, injected errors: %d of %d writes (%s), reconcile errors logged: %d, retries checked against nextRetryAt: %d (unobserved %d), all finished after %s, duration %s, violations: %d",
		prof.name, len(run.jobs), run.obs.podCount(), injected, writes, strings.Join(kinds, ", "), errorsLogged,
		run.retriesChecked, run.retriesUnobserved, settled.Round(time.Second), time.Since(start).Round(time.Second), n)
}

// Leader election timing of controller-runtime's defaults; cmd/main.go sets
// none of them.
const (
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
	// client-go's elector waits RetryPeriod plus up to 1.2 × RetryPeriod of
	// jitter between tries.
	retryJitter = 1.2
)

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

// waitForHolder polls the lease until a holder other than previous holds it.
func waitForHolder(namespace, previous string, timeout time.Duration) (*coordinationv1.Lease, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		lease, err := currentLease(namespace)
		if err == nil && holder(lease) != "" && holder(lease) != previous {
			return lease, time.Now(), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, time.Time{}, fmt.Errorf("no new leader within %s (previous %q)", timeout, previous)
}

// TestLeaderElection runs two replicas with --leader-elect and SIGKILLs the
// leader while jobs run: the other replica must take over within the lease
// duration plus a retry period, nothing may happen while neither leads, and
// no Pod may be created twice.
func TestLeaderElection(t *testing.T) {
	start := time.Now()
	run := newMixRun(t, "leader-election", prof.leaderJobs)
	command, err := leaderCommand(run.namespace)
	if err != nil {
		t.Fatal(err)
	}
	replicas := make([]*operatorProcess, 2)
	for i := range replicas {
		if replicas[i], err = newOperatorProcess(run.dir, fmt.Sprintf("replica-%c", 'a'+i), command); err != nil {
			t.Fatal(err)
		}
		run.operatorLogs = append(run.operatorLogs, replicas[i].logPath)
		defer replicas[i].kill()
	}
	if err := replicas[0].start(); err != nil {
		t.Fatal(err)
	}
	lease, _, err := waitForHolder(run.namespace, "", time.Minute)
	if err != nil {
		t.Fatalf("replica-a never became leader: %v", err)
	}
	leader, leaderID := 0, holder(lease)
	if err := replicas[1].start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	run.createJobs(5 * time.Second)

	type gap struct{ from, to time.Time }
	var violations []violation
	var gaps []gap
	var takeovers []string
	withinLiteral := 0 // takeovers within lease duration + one unjittered retry period
	// A candidate counts the lease duration from when it saw the last
	// renewal, and both that sighting and its tries come every RetryPeriod
	// plus up to 1.2 × RetryPeriod of jitter: so the takeover comes within
	// the lease duration plus one (jittered) retry period of the lease
	// expiring as the candidate sees it, which is at most one more jittered
	// retry period after the expiry the lease object shows. One second more
	// for a loaded machine.
	jittered := time.Duration(float64(retryPeriod) * (1 + retryJitter))
	bound := leaseDuration + 2*jittered + time.Second
	for k := 0; k < prof.leaderKills; k++ {
		time.Sleep(run.r.duration(2*time.Second, 6*time.Second))
		before, err := currentLease(run.namespace)
		if err != nil || holder(before) != leaderID {
			t.Fatalf("the lease is not held by the expected leader %q: %v %v", leaderID, holder(before), err)
		}
		killed := time.Now()
		replicas[leader].kill()
		after, seen, err := waitForHolder(run.namespace, leaderID, 2*time.Minute)
		if err != nil {
			violations = append(violations, violation{what: "after SIGKILL of the leader: " + err.Error()})
			break
		}
		takeover := seen.Sub(killed)
		sinceRenew := seen.Sub(before.Spec.RenewTime.Time)
		takeovers = append(takeovers, fmt.Sprintf("%s after the kill, %s after the last renewal", takeover.Round(100*time.Millisecond), sinceRenew.Round(100*time.Millisecond)))
		t.Logf("kill %d: %s took over %s after the SIGKILL of %s (%s after its last renewal); bound %s",
			k+1, replicas[1-leader].name, takeover.Round(10*time.Millisecond), replicas[leader].name, sinceRenew.Round(10*time.Millisecond), bound)
		if takeover > bound {
			violations = append(violations, violation{what: fmt.Sprintf("takeover took %s after the leader's SIGKILL, more than lease duration %s + retry periods of %s with client-go's jitter (%s)",
				takeover.Round(10*time.Millisecond), leaseDuration, retryPeriod, bound)})
		}
		if takeover <= leaseDuration+retryPeriod {
			withinLiteral++
		}
		acquired := seen
		if after.Spec.AcquireTime != nil {
			acquired = after.Spec.AcquireTime.Time
		}
		gaps = append(gaps, gap{killed, acquired})
		if err := replicas[leader].start(); err != nil { // back as a follower
			t.Fatal(err)
		}
		leader, leaderID = 1-leader, holder(after)
	}

	stuck := run.waitFinished(time.Now().Add(prof.converge))
	settled := time.Since(start)
	violations = append(violations, run.verify(stuck)...)
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
	violations = append(violations, quietCheck(prof.quiet, replicas[0].logPath, replicas[1].logPath)...)
	for _, r := range replicas {
		if crashed := r.exitedUnexpectedly(); crashed != "" {
			violations = append(violations, violation{what: crashed})
		}
	}
	n := run.report(violations)
	summary("chaos leader-election (%s): jobs: %d, pods: %d, replicas: 2, leader kills: %d, takeovers: [%s] (bound %s; %d of %d within %s), apiserver restarts: 0, injected errors: 0, retries checked against nextRetryAt: %d (unobserved %d), all finished after %s, duration %s, violations: %d",
		prof.name, len(run.jobs), run.obs.podCount(), len(gaps), strings.Join(takeovers, "; "), bound, withinLiteral, len(gaps), leaseDuration+retryPeriod,
		run.retriesChecked, run.retriesUnobserved, settled.Round(time.Second), time.Since(start).Round(time.Second), n)
}
