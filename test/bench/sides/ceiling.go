package sides

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/operator"
)

// NewCeiling is the API-ceiling driver with the given number of workers.
func NewCeiling(workers int) Side { return &ceilingSide{workers: workers} }

// ceilingSide is the API ceiling: a driver inside the harness that makes
// only the writes one job cannot do without, one Pod create and one status
// write, with no rate limit and many workers. No controller that creates a
// Pod per job and reports its end can beat it on the same API server.
// It runs on ExtractionJobs, whose CRD is installed, but no operator runs.
type ceilingSide struct {
	workers int
	cancel  context.CancelFunc
	done    chan struct{}
}

// ceilingTask is a Pod to create for a job, or a job to mark finished.
type ceilingTask struct {
	job      types.NamespacedName
	finished bool
}

func (c *ceilingSide) Name() string { return CeilingName }

func (c *ceilingSide) Start(ctx context.Context, env Env) error {
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	cfg := env.Counter.Wrap(env.Admin)
	cl, err := client.New(cfg, client.Options{Scheme: workload.Scheme})
	if err != nil {
		return err
	}
	informers, err := cache.New(cfg, cache.Options{Scheme: workload.Scheme, DefaultNamespaces: map[string]cache.Config{workload.Namespace: {}}})
	if err != nil {
		return err
	}
	queue := workqueue.NewTyped[ceilingTask]()
	jobs, err := informers.GetInformer(ctx, &ejv1.ExtractionJob{})
	if err != nil {
		return err
	}
	if _, err := jobs.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if job, ok := obj.(*ejv1.ExtractionJob); ok && job.Status.Phase == "" {
			queue.Add(ceilingTask{job: client.ObjectKeyFromObject(job)})
		}
	}}); err != nil {
		return err
	}
	pods, err := informers.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return err
	}
	if _, err := pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{UpdateFunc: func(oldObj, newObj any) {
		before, after := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
		if terminal(after) && !terminal(before) && len(after.OwnerReferences) > 0 {
			owner := types.NamespacedName{Namespace: after.Namespace, Name: after.OwnerReferences[0].Name}
			queue.Add(ceilingTask{job: owner, finished: true})
		}
	}}); err != nil {
		return err
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		return errors.New("the ceiling driver's caches did not sync")
	}
	go func() { <-ctx.Done(); queue.ShutDown() }()
	workersDone := make(chan struct{}, c.workers)
	for range c.workers {
		go func() {
			defer func() { workersDone <- struct{}{} }()
			for {
				task, shutdown := queue.Get()
				if shutdown {
					return
				}
				if err := c.do(ctx, cl, informers, task); err != nil && ctx.Err() == nil {
					queue.Add(task) // the API server was busy: try again
				}
				queue.Done(task)
			}
		}()
	}
	go func() {
		for range c.workers {
			<-workersDone
		}
		close(c.done)
	}()
	return nil
}

func (c *ceilingSide) do(ctx context.Context, cl client.Client, cached client.Reader, t ceilingTask) error {
	if t.finished {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"status":{"phase":"Succeeded"}}`))
		job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Namespace: t.job.Namespace, Name: t.job.Name}}
		return cl.Status().Patch(ctx, job, patch)
	}
	// The job as the driver's informer saw it: reading it costs no request.
	job := &ejv1.ExtractionJob{}
	if err := cached.Get(ctx, t.job, job); err != nil {
		return fmt.Errorf("reading job %s from the cache: %w", t.job, err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: t.job.Name + "-1", Namespace: t.job.Namespace,
			Labels: map[string]string{ejv1.JobUIDLabel: string(job.UID), ejv1.AttemptLabel: "1"},
			// The plan, for the simulated kubelet, as the operator passes it on.
			Annotations: job.Spec.PodTemplate.Metadata.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: ejv1.GroupVersion.String(), Kind: "ExtractionJob", Name: t.job.Name, UID: job.UID, Controller: ptr.To(true),
			}},
		},
		Spec: workload.ExtractorPodSpec(t.job.Name, 1),
	}
	if err := cl.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating pod %s: %w", pod.Name, err)
	}
	return nil
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func (c *ceilingSide) Stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

func (c *ceilingSide) Process() *operator.Process { return nil }
func (c *ceilingSide) SyncedMarker() string       { return "" }
func (c *ceilingSide) HeapBytes(context.Context) (float64, error) {
	return 0, errors.New("the ceiling driver runs inside the harness")
}
func (c *ceilingSide) NewJob(name string, plan workload.Plan) client.Object {
	return workload.ExtractionJob(name, plan)
}
func (c *ceilingSide) JobType() client.Object { return &ejv1.ExtractionJob{} }
func (c *ceilingSide) State(obj client.Object) workload.JobState {
	return workload.ExtractionJobState(obj)
}
