package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/bench/workload"
)

// Kubelet plays the kubelet for every Pod of a run, the same way for every
// side: when its watch sees a new Pod it reports it Running at once, and
// after runTime reports the outcome that the job's plan gives the attempt.
// That is two status writes per Pod, made with a client of its own whose
// requests are counted and subtracted from the side's.
//
// No scheduler runs and Pods are never bound to a node: neither controller
// reads spec.nodeName, and a binding would add the same write per Pod to
// every side.
type Kubelet struct {
	client  kubernetes.Interface
	runTime time.Duration
	queue   workqueue.TypedDelayingInterface[podStep]
	onPod   func(PodSeen)

	mu       sync.Mutex
	pods     map[types.NamespacedName]*podRecord
	attempts map[types.UID]int // owner → Pods seen so far
	// labelMismatches counts operator Pods whose attempt label disagrees with
	// the order the harness saw them in; it must stay 0.
	labelMismatches atomic.Int64
	failedWrites    atomic.Int64
}

// PodSeen is one Pod as the harness's watch first saw it.
type PodSeen struct {
	Owner   types.UID
	Attempt int
	Seen    time.Time
}

type podStep struct {
	key      types.NamespacedName
	terminal bool
}

type podRecord struct {
	image   string
	outcome workload.Outcome
	started metav1.Time
}

// NewKubelet returns a kubelet that writes with client and calls onPod for
// every new Pod.
func NewKubelet(client kubernetes.Interface, runTime time.Duration, onPod func(PodSeen)) *Kubelet {
	return &Kubelet{
		client:   client,
		runTime:  runTime,
		queue:    workqueue.NewTypedDelayingQueue[podStep](),
		onPod:    onPod,
		pods:     map[types.NamespacedName]*podRecord{},
		attempts: map[types.UID]int{},
	}
}

// Start hooks the kubelet to the harness's Pod informer and runs its
// workers. Enough workers that the kubelet never limits a side.
func (k *Kubelet) Start(ctx context.Context, informers cache.Cache, workers int) error {
	inf, err := informers.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: k.podAdded}); err != nil {
		return err
	}
	for range workers {
		go k.work(ctx)
	}
	go func() { <-ctx.Done(); k.queue.ShutDown() }()
	return nil
}

// LabelMismatches counts operator Pods whose attempt label disagreed with
// the order the kubelet saw them in.
func (k *Kubelet) LabelMismatches() int64 { return k.labelMismatches.Load() }

// FailedWrites counts the kubelet's status writes that the API server refused.
func (k *Kubelet) FailedWrites() int64 { return k.failedWrites.Load() }

func (k *Kubelet) podAdded(obj any) {
	seen := time.Now()
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Status.Phase != "" && pod.Status.Phase != corev1.PodPending || len(pod.OwnerReferences) == 0 {
		return
	}
	owner := pod.OwnerReferences[0].UID
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	k.mu.Lock()
	k.attempts[owner]++
	attempt := k.attempts[owner]
	k.pods[key] = &podRecord{image: pod.Spec.Containers[0].Image, outcome: workload.Plan(pod.Labels[workload.PlanLabel]).Outcome(attempt)}
	k.mu.Unlock()
	if label, ok := pod.Labels[ejv1.AttemptLabel]; ok && label != strconv.Itoa(attempt) {
		k.labelMismatches.Add(1)
	}
	k.onPod(PodSeen{Owner: owner, Attempt: attempt, Seen: seen})
	k.queue.Add(podStep{key: key})
}

func (k *Kubelet) work(ctx context.Context) {
	for {
		step, shutdown := k.queue.Get()
		if shutdown {
			return
		}
		if err := k.write(ctx, step); err != nil && ctx.Err() == nil {
			k.failedWrites.Add(1)
		}
		k.queue.Done(step)
		if !step.terminal {
			k.queue.AddAfter(podStep{key: step.key, terminal: true}, k.runTime)
		}
	}
}

// write reports one step of a Pod's life in a merge patch of its status,
// with the conditions and container state that a real kubelet reports, since
// the Job controller counts ready Pods.
func (k *Kubelet) write(ctx context.Context, step podStep) error {
	k.mu.Lock()
	rec := k.pods[step.key]
	k.mu.Unlock()
	now := metav1.NewTime(time.Now())
	container := map[string]any{
		"name": workload.ExtractorContainer, "image": rec.image, "imageID": "", "restartCount": 0,
		"containerID": "bench://" + step.key.Name,
	}
	var status map[string]any
	if !step.terminal {
		rec.started = now
		container["ready"], container["started"] = true, true
		container["state"] = map[string]any{"running": map[string]any{"startedAt": now}}
		status = map[string]any{
			"phase": corev1.PodRunning, "startTime": now,
			"conditions":        podConditions(now, corev1.ConditionTrue, ""),
			"containerStatuses": []any{container},
		}
	} else {
		phase, reason, condReason := corev1.PodSucceeded, "Completed", "PodCompleted"
		if !rec.outcome.Succeeded {
			phase, reason, condReason = corev1.PodFailed, "Error", "PodFailed"
		}
		container["ready"], container["started"] = false, false
		container["state"] = map[string]any{"terminated": map[string]any{
			"exitCode": rec.outcome.ExitCode, "reason": reason, "message": rec.outcome.Message,
			"startedAt": rec.started, "finishedAt": now, "containerID": "bench://" + step.key.Name,
		}}
		status = map[string]any{
			"phase":             phase,
			"conditions":        podConditions(now, corev1.ConditionFalse, condReason),
			"containerStatuses": []any{container},
		}
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Pods(step.key.Namespace).Patch(ctx, step.key.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patching status of pod %s: %w", step.key, err)
	}
	return nil
}

func podConditions(now metav1.Time, ready corev1.ConditionStatus, reason string) []any {
	cond := func(t corev1.PodConditionType, s corev1.ConditionStatus, reason string) map[string]any {
		c := map[string]any{"type": t, "status": s, "lastTransitionTime": now}
		if reason != "" {
			c["reason"] = reason
		}
		return c
	}
	return []any{
		cond(corev1.PodReadyToStartContainers, ready, ""),
		cond(corev1.PodInitialized, corev1.ConditionTrue, ""),
		cond(corev1.PodReady, ready, reason),
		cond(corev1.ContainersReady, ready, reason),
	}
}
