//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// violation is one broken invariant, about one job when job is set.
type violation struct {
	job  string // namespace/name, or "" for the run as a whole
	what string
}

func (v violation) String() string {
	if v.job == "" {
		return v.what
	}
	return v.job + ": " + v.what
}

type attemptKey struct {
	job     types.UID
	attempt int32
}

// podSeen is what the observer saw of one Pod.
type podSeen struct {
	namespace, name string
	uid             types.UID
	job             string // namespace/name of the controlling job
	jobUID          types.UID
	attempt         int32
	firstSeen       time.Time // the watch event's arrival
	created         time.Time // metadata.creationTimestamp (whole seconds)
	deleted         bool
}

// jobVersion is one observed version of a job's status, for the evidence.
type jobVersion struct {
	seen                                  time.Time
	resourceVersion                       string
	phase                                 ejv1.Phase
	attempt, retryCount, disruptionCount  int32
	nextRetryAt                           *ejv1.PreciseTime
	podName, message                      string
	cancel                                bool
	deletionTimestamp                     bool
	attemptsRecorded, lastRecordedAttempt int32
}

func (v jobVersion) String() string {
	next := "-"
	if v.nextRetryAt != nil {
		next = v.nextRetryAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s rv=%s phase=%s attempt=%d retryCount=%d disruptionCount=%d nextRetryAt=%s pod=%s cancel=%t deleting=%t message=%q",
		v.seen.UTC().Format("15:04:05.000"), v.resourceVersion, v.phase, v.attempt, v.retryCount, v.disruptionCount,
		next, v.podName, v.cancel, v.deletionTimestamp, v.message)
}

type jobSeen struct {
	namespace, name string
	uid             types.UID
	maxRetries      int32
	versions        []jobVersion
	firstTerminal   ejv1.Phase
	terminalAt      time.Time
	terminalAttempt int32
	deleted         bool
}

// observer watches a run's jobs and Pods and checks, event by event, what can
// only be seen while it happens: a Pod name reused by a second Pod, two Pods
// for one attempt, a changed nextRetryAt, a job leaving its terminal phase.
type observer struct {
	cache  cache.Cache
	cancel context.CancelFunc

	mu         sync.Mutex
	pods       map[string]*podSeen // namespace/name
	attempts   map[attemptKey]types.UID
	jobs       map[types.UID]*jobSeen
	jobsByName map[string]*jobSeen
	nextRetry  map[attemptKey]time.Time
	violations []violation
}

func startObserver(namespaces ...string) (*observer, error) {
	ownPods, err := labels.NewRequirement(ejv1.JobUIDLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	defaultNamespaces := map[string]cache.Config{}
	for _, ns := range namespaces {
		defaultNamespaces[ns] = cache.Config{}
	}
	c, err := cache.New(cp.Config(200, 400), cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: defaultNamespaces,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*ownPods)},
		},
	})
	if err != nil {
		return nil, err
	}
	o := &observer{
		cache: c,
		pods:  map[string]*podSeen{}, attempts: map[attemptKey]types.UID{},
		jobs: map[types.UID]*jobSeen{}, jobsByName: map[string]*jobSeen{},
		nextRetry: map[attemptKey]time.Time{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	podInformer, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		cancel()
		return nil, err
	}
	jobInformer, err := c.GetInformer(ctx, &ejv1.ExtractionJob{})
	if err != nil {
		cancel()
		return nil, err
	}
	if _, err := podInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.pod(obj, false) },
		UpdateFunc: func(_, obj any) { o.pod(obj, false) },
		DeleteFunc: func(obj any) { o.pod(obj, true) },
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := jobInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.job(obj, false) },
		UpdateFunc: func(_, obj any) { o.job(obj, false) },
		DeleteFunc: func(obj any) { o.job(obj, true) },
	}); err != nil {
		cancel()
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !c.WaitForCacheSync(syncCtx) {
		cancel()
		return nil, fmt.Errorf("the observer's cache did not sync")
	}
	return o, nil
}

func (o *observer) stop() { o.cancel() }

func (o *observer) violate(job, format string, args ...any) {
	o.violations = append(o.violations, violation{job: job, what: fmt.Sprintf(format, args...)})
}

func (o *observer) pod(obj any, deleted bool) {
	now := time.Now()
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	attempt, _ := strconv.Atoi(pod.Labels[ejv1.AttemptLabel])
	owner := metav1.GetControllerOf(pod)
	job := pod.Namespace + "/?"
	if owner != nil {
		job = pod.Namespace + "/" + owner.Name
	}

	o.mu.Lock()
	key := pod.Namespace + "/" + pod.Name
	seen := o.pods[key]
	switch {
	case seen == nil:
		seen = &podSeen{
			namespace: pod.Namespace, name: pod.Name, uid: pod.UID, job: job,
			jobUID: types.UID(pod.Labels[ejv1.JobUIDLabel]), attempt: int32(attempt),
			firstSeen: now, created: pod.CreationTimestamp.Time,
		}
		o.pods[key] = seen
		ak := attemptKey{seen.jobUID, seen.attempt}
		if other, found := o.attempts[ak]; found && other != pod.UID {
			o.violate(job, "a second Pod for attempt %d: %s (uid %s), the first was uid %s", attempt, pod.Name, pod.UID, other)
		}
		o.attempts[ak] = pod.UID
	case seen.uid != pod.UID:
		o.violate(job, "Pod name %s seen with two UIDs (%s, then %s): attempt %d ran twice", pod.Name, seen.uid, pod.UID, attempt)
		seen.uid, seen.deleted = pod.UID, false
	}
	if deleted {
		seen.deleted = true
	}
	o.mu.Unlock()
}

func (o *observer) job(obj any, deleted bool) {
	now := time.Now()
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	job, ok := obj.(*ejv1.ExtractionJob)
	if !ok {
		return
	}
	key := job.Namespace + "/" + job.Name
	st := job.Status

	o.mu.Lock()
	seen := o.jobs[job.UID]
	if seen == nil {
		seen = &jobSeen{namespace: job.Namespace, name: job.Name, uid: job.UID}
		o.jobs[job.UID] = seen
		o.jobsByName[key] = seen
	}
	if job.Spec.RetryPolicy.MaxRetries != nil {
		seen.maxRetries = *job.Spec.RetryPolicy.MaxRetries
	}
	if deleted {
		seen.deleted = true
	}
	version := jobVersion{
		seen: now, resourceVersion: job.ResourceVersion, phase: st.Phase, attempt: st.Attempt,
		retryCount: st.RetryCount, disruptionCount: st.DisruptionCount, nextRetryAt: st.NextRetryAt,
		podName: st.PodName, message: st.Message, cancel: job.Spec.Cancel,
		deletionTimestamp: job.DeletionTimestamp != nil, attemptsRecorded: int32(len(st.Attempts)),
	}
	if n := len(st.Attempts); n > 0 {
		version.lastRecordedAttempt = st.Attempts[n-1].Attempt
	}
	seen.versions = append(seen.versions, version)

	if st.Phase == ejv1.PhaseRetrying && st.NextRetryAt != nil {
		ak := attemptKey{job.UID, st.Attempt + 1}
		if previous, found := o.nextRetry[ak]; found && !previous.Equal(st.NextRetryAt.Time) {
			o.violate(key, "nextRetryAt of attempt %d changed from %s to %s", ak.attempt,
				previous.UTC().Format(time.RFC3339), st.NextRetryAt.UTC().Format(time.RFC3339))
		} else if !found {
			o.nextRetry[ak] = st.NextRetryAt.Time
		}
	}
	if st.RetryCount > seen.maxRetries {
		o.violate(key, "retryCount %d exceeds maxRetries %d", st.RetryCount, seen.maxRetries)
	}
	switch {
	case seen.firstTerminal == "" && st.Phase.Finished():
		seen.firstTerminal, seen.terminalAt, seen.terminalAttempt = st.Phase, now, st.Attempt
	case seen.firstTerminal != "" && st.Phase != seen.firstTerminal:
		o.violate(key, "left its terminal phase %s for %s (attempt %d)", seen.firstTerminal, st.Phase, st.Attempt)
		seen.firstTerminal = st.Phase
	}
	o.mu.Unlock()
}

// jobSnapshot returns a copy of what the observer saw of a job, by name.
func (o *observer) jobSnapshot(key string) (jobSeen, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen, ok := o.jobsByName[key]
	if !ok {
		return jobSeen{}, false
	}
	copied := *seen
	copied.versions = append([]jobVersion(nil), seen.versions...)
	return copied, true
}

// podsOf returns what the observer saw of a job's Pods, by attempt.
func (o *observer) podsOf(uid types.UID) []podSeen {
	o.mu.Lock()
	defer o.mu.Unlock()
	var pods []podSeen
	for _, p := range o.pods {
		if p.jobUID == uid {
			pods = append(pods, *p)
		}
	}
	sort.Slice(pods, func(i, k int) bool { return pods[i].attempt < pods[k].attempt })
	return pods
}

func (o *observer) nextRetryAt(uid types.UID, attempt int32) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.nextRetry[attemptKey{uid, attempt}]
	return t, ok
}

func (o *observer) takeViolations() []violation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]violation(nil), o.violations...)
}

func (o *observer) podCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pods)
}

// currentJob reads a job from the observer's cache.
func (o *observer) currentJob(ctx context.Context, namespace, name string) (*ejv1.ExtractionJob, error) {
	job := &ejv1.ExtractionJob{}
	err := o.cache.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, job)
	return job, err
}

// startKubelet plays the kubelet for the Pods the observer watches, with
// short random delays: 20 to 300 ms Pending, 50 to 500 ms running.
func startKubelet(ctx context.Context, o *observer, r *lockedRand) (*sim.Kubelet, error) {
	client, err := kubernetes.NewForConfig(cp.Config(200, 400))
	if err != nil {
		return nil, err
	}
	k := sim.NewKubelet(sim.Options{
		Client:     client,
		StartDelay: func() time.Duration { return r.duration(20*time.Millisecond, 300*time.Millisecond) },
		RunTime:    func() time.Duration { return r.duration(50*time.Millisecond, 500*time.Millisecond) },
	})
	return k, k.Start(ctx, o.cache)
}
