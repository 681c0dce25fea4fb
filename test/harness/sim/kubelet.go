package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// Options configure a Kubelet.
type Options struct {
	// Client writes the Pod statuses. Give the kubelet a client of its own,
	// so that its requests can be counted apart from those it serves.
	Client kubernetes.Interface
	// Workers write statuses in parallel; 8 when zero. Enough of them that
	// the kubelet never limits what it serves.
	Workers int
	// StartDelay is how long a new Pod stays Pending; nil reports it Running
	// at once.
	StartDelay func() time.Duration
	// RunTime is how long an attempt whose plan names no run-seconds runs;
	// nil means DefaultRunSeconds, as on KWOK.
	RunTime func() time.Duration
	// OnPod, when set, is told of every Pod the kubelet takes on, in the
	// order it saw them.
	OnPod func(PodSeen)
	// GiveUpAfter bounds how long one status write is retried (through
	// conflicts and API server restarts); 5 minutes when zero.
	GiveUpAfter time.Duration
	// Finish, when set, is asked how a Pod's attempt that ends at a time
	// ends, given the result its plan gives it: for a backend that fails for
	// a window of time, which a per-attempt plan cannot say. It is asked
	// again when the write is retried; it is not asked for a Pod that never
	// starts or that holds.
	Finish func(pod *corev1.Pod, at time.Time, planned Result) Result
}

// PodSeen is one Pod as the kubelet first saw it.
type PodSeen struct {
	Key     types.NamespacedName
	Owner   types.UID
	Attempt int
	Seen    time.Time
}

// Kubelet plays the kubelet for the Pods of an informer: when it sees a new
// Pod it reports it Running (after StartDelay), and after the attempt's run
// time reports the outcome its plan gives the attempt, in exactly the Pod
// status the KWOK stages write. That is two status writes per Pod, each one
// merge patch made with the kubelet's own client and no read: the informer
// tells it everything, and a delaying workqueue times the steps, so it stays
// cheap at thousands of Pods.
//
// A Pod's attempt number is its extraction.pybase.io/attempt label. A Pod
// without one (a batch/v1 Job's) is given the number of Pods of its owner
// seen so far, counted by owner UID in the order the informer delivers them;
// for a Pod with both, a disagreement is counted in LabelMismatches.
//
// No scheduler is needed and Pods are never bound to a node: the operator
// does not read spec.nodeName, and a binding would add a write per Pod.
type Kubelet struct {
	opts  Options
	queue workqueue.TypedRateLimitingInterface[podStep]

	mu       sync.Mutex
	pods     map[types.NamespacedName]*podRecord
	attempts map[types.UID]int // owner → Pods seen so far

	labelMismatches atomic.Int64
	failedWrites    atomic.Int64
	abandonedWrites atomic.Int64
	invalidPlans    atomic.Int64
}

type podStep struct {
	key   types.NamespacedName
	final bool // the step that shows the result; otherwise the start
}

type podRecord struct {
	pod       *corev1.Pod // as first seen: name, UID, containers
	attempt   Attempt
	started   metav1.Time
	gone      bool      // deleted, or being deleted
	failingAt time.Time // the first failure of the current step's write
}

// NewKubelet makes a kubelet; Start hooks it to an informer.
func NewKubelet(opts Options) *Kubelet {
	if opts.Workers == 0 {
		opts.Workers = 8
	}
	if opts.GiveUpAfter == 0 {
		opts.GiveUpAfter = 5 * time.Minute
	}
	return &Kubelet{
		opts: opts,
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[podStep](50*time.Millisecond, 2*time.Second)),
		pods:     map[types.NamespacedName]*podRecord{},
		attempts: map[types.UID]int{},
	}
}

// Start hooks the kubelet to the Pod informer of a cache (which chooses the
// Pods it plays) and runs its workers until ctx ends. Pods already in the
// informer count as new.
func (k *Kubelet) Start(ctx context.Context, informers cache.Informers) error {
	inf, err := informers.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("getting the Pod informer: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: k.podAdded,
		UpdateFunc: func(_, obj any) {
			if pod, ok := obj.(*corev1.Pod); ok && pod.DeletionTimestamp != nil {
				k.podGone(pod.Namespace, pod.Name, pod.UID)
			}
		},
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				k.podGone(pod.Namespace, pod.Name, pod.UID)
			}
		},
	}); err != nil {
		return fmt.Errorf("watching Pods: %w", err)
	}
	for range k.opts.Workers {
		go k.work(ctx)
	}
	go func() { <-ctx.Done(); k.queue.ShutDown() }()
	return nil
}

// LabelMismatches counts Pods whose attempt label disagrees with the order
// the kubelet saw their owner's Pods in; it must stay 0.
func (k *Kubelet) LabelMismatches() int64 { return k.labelMismatches.Load() }

// FailedWrites counts status writes that failed and were retried.
func (k *Kubelet) FailedWrites() int64 { return k.failedWrites.Load() }

// AbandonedWrites counts status writes still failing after GiveUpAfter.
func (k *Kubelet) AbandonedWrites() int64 { return k.abandonedWrites.Load() }

// InvalidPlans counts Pods whose annotations are no plan; they stay Running,
// as on KWOK.
func (k *Kubelet) InvalidPlans() int64 { return k.invalidPlans.Load() }

func (k *Kubelet) podAdded(obj any) {
	seen := time.Now()
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Status.Phase != "" && pod.Status.Phase != corev1.PodPending || pod.DeletionTimestamp != nil {
		return
	}
	var owner types.UID
	if ref := metav1.GetControllerOf(pod); ref != nil {
		owner = ref.UID
	}
	label, labelled := pod.Labels[ejv1.AttemptLabel]
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	k.mu.Lock()
	if _, known := k.pods[key]; known {
		k.mu.Unlock()
		return
	}
	attempt := 0
	if owner != "" {
		k.attempts[owner]++
		attempt = k.attempts[owner]
	}
	k.mu.Unlock()
	if labelled {
		n, err := strconv.Atoi(label)
		if err != nil {
			return
		}
		if owner != "" && n != attempt {
			k.labelMismatches.Add(1)
		}
		attempt = n
	}
	if attempt == 0 {
		return // neither a label nor an owner: not an attempt
	}
	rec := &podRecord{pod: pod.DeepCopy()}
	if plan, err := ParsePlan(pod.Annotations); err != nil {
		// As on KWOK, where no stage matches: it keeps running, even past
		// its deadline.
		k.invalidPlans.Add(1)
		rec.attempt = Attempt{Token: Hold, Result: Result{Phase: corev1.PodRunning}}
	} else {
		rec.attempt = plan.Attempt(attempt, pod.Spec.ActiveDeadlineSeconds)
	}
	k.mu.Lock()
	k.pods[key] = rec
	k.mu.Unlock()
	if k.opts.OnPod != nil {
		k.opts.OnPod(PodSeen{Key: key, Owner: owner, Attempt: attempt, Seen: seen})
	}
	k.queue.AddAfter(podStep{key: key}, k.delay(k.opts.StartDelay))
}

func (k *Kubelet) podGone(namespace, name string, uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if rec := k.pods[types.NamespacedName{Namespace: namespace, Name: name}]; rec != nil && rec.pod.UID == uid {
		rec.gone = true
	}
}

func (k *Kubelet) delay(f func() time.Duration) time.Duration {
	if f == nil {
		return 0
	}
	return f()
}

func (k *Kubelet) work(ctx context.Context) {
	for {
		step, shutdown := k.queue.Get()
		if shutdown {
			return
		}
		k.do(ctx, step)
		k.queue.Done(step)
	}
}

func (k *Kubelet) do(ctx context.Context, step podStep) {
	k.mu.Lock()
	rec := k.pods[step.key]
	if rec == nil || rec.gone {
		delete(k.pods, step.key)
		k.mu.Unlock()
		k.queue.Forget(step)
		return
	}
	pod, attempt, started := rec.pod, rec.attempt, rec.started
	k.mu.Unlock()

	now := metav1.NewTime(time.Now())
	var status corev1.PodStatus
	switch {
	case step.final:
		result := attempt.Result
		if k.opts.Finish != nil {
			result = k.opts.Finish(pod, now.Time, result)
		}
		status = FinalStatus(pod, result, started, now)
	case attempt.Result.Phase == corev1.PodPending:
		status = FinalStatus(pod, attempt.Result, now, now)
	default:
		status = RunningStatus(pod, now)
	}
	err := k.patch(ctx, pod, status)
	switch {
	case err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// Written, or the Pod is gone or was replaced under its name.
	case ctx.Err() != nil:
		return
	case apierrors.IsInvalid(err):
		// Another Pod of the same name (whose UID the patch may not change),
		// or a status the API server refuses: retrying cannot help.
		k.failedWrites.Add(1)
		k.abandon(step)
		return
	default:
		k.failedWrites.Add(1)
		k.mu.Lock()
		if rec.failingAt.IsZero() {
			rec.failingAt = time.Now()
		}
		abandon := time.Since(rec.failingAt) > k.opts.GiveUpAfter
		k.mu.Unlock()
		if abandon {
			k.abandon(step)
			return
		}
		k.queue.AddRateLimited(step)
		return
	}
	k.queue.Forget(step)
	k.mu.Lock()
	rec.failingAt = time.Time{}
	finished := step.final || err != nil || attempt.Result.Phase == corev1.PodPending || attempt.Result.Phase == corev1.PodRunning
	if finished {
		delete(k.pods, step.key)
	} else {
		rec.started = now
	}
	k.mu.Unlock()
	if !finished {
		run := attempt.RunTime
		if !attempt.RunTimeStated && k.opts.RunTime != nil {
			run = k.opts.RunTime()
		}
		k.queue.AddAfter(podStep{key: step.key, final: true}, run)
	}
}

func (k *Kubelet) abandon(step podStep) {
	k.abandonedWrites.Add(1)
	k.queue.Forget(step)
	k.mu.Lock()
	delete(k.pods, step.key)
	k.mu.Unlock()
}

// Report writes a result to a Pod's status at once, outside any plan: for
// a test that plays the kubelet by hand while the operator is down.
func (k *Kubelet) Report(ctx context.Context, pod *corev1.Pod, r Result) error {
	started := metav1.Now()
	if pod.Status.StartTime != nil {
		started = *pod.Status.StartTime
	}
	return k.patch(ctx, pod, FinalStatus(pod, r, started, metav1.Now()))
}

// patch writes a Pod's status in one merge patch. The patch names the Pod's
// UID, so it cannot land on another Pod of the same name.
func (k *Kubelet) patch(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   status,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = k.opts.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patching the status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
