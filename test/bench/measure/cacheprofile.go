package measure

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/controllers"
)

// CacheCost is what the operator's informer caches cost per object, measured
// inside the harness with the operator's own cache options, so that a heap
// profile can show where the operator's Memory goes: the operator binary
// itself has no pprof endpoint.
type CacheCost struct {
	Jobs int `json:"jobs"`
	Pods int `json:"pods"`
	// HeapPerJob and HeapPerPod are the live Go heap each cached object adds.
	HeapPerJob float64 `json:"heapBytesPerJob"`
	HeapPerPod float64 `json:"heapBytesPerPod"`
	// JSONPerJob and JSONPerPod are the average size of the cached objects as JSON.
	JSONPerJob float64 `json:"jsonBytesPerJob"`
	JSONPerPod float64 `json:"jsonBytesPerPod"`
	// JSONPerField splits the cached objects' JSON size by top-level part.
	JSONPerField map[string]float64 `json:"jsonBytesPerField"`
	Profile      string             `json:"heapProfile"`
}

// CacheSource is where the measuring caches read from.
type CacheSource struct {
	Config    *rest.Config
	Scheme    *k8sruntime.Scheme
	Namespace string
}

// MeasureCacheCost fills one cache per type with controllers.CacheOptions()
// and measures the live heap each adds; the caller stops its own watches
// first, so that their objects are freed. A heap profile of the filled
// caches is written into dir.
func MeasureCacheCost(ctx context.Context, src CacheSource, dir string) (*CacheCost, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the measuring caches
	cost := &CacheCost{JSONPerField: map[string]float64{}}
	jobs, jobCost, err := measureType(ctx, src, &ejv1.ExtractionJob{}, &ejv1.ExtractionJobList{}, "job", cost.JSONPerField)
	if err != nil {
		return nil, err
	}
	pods, podCost, err := measureType(ctx, src, &corev1.Pod{}, &corev1.PodList{}, "pod", cost.JSONPerField)
	if err != nil {
		return nil, err
	}
	cost.Jobs, cost.HeapPerJob, cost.JSONPerJob = jobCost.count, jobCost.heapPer, jobCost.jsonPer
	cost.Pods, cost.HeapPerPod, cost.JSONPerPod = podCost.count, podCost.heapPer, podCost.jsonPer

	cost.Profile = filepath.Join(dir, "operator-caches.heap.pprof")
	if err := writeHeapProfile(cost.Profile); err != nil {
		return nil, err
	}
	runtime.KeepAlive(jobs)
	runtime.KeepAlive(pods)
	return cost, nil
}

// typeCost is what one cached object of a type costs on average.
type typeCost struct {
	count            int
	heapPer, jsonPer float64
}

// measureType fills a cache of one type and measures its objects; perField
// gets their JSON size by part. The cache is returned so that it stays alive
// for the heap profile.
func measureType(ctx context.Context, src CacheSource, obj client.Object, list client.ObjectList, kind string,
	perField map[string]float64) (cache.Cache, typeCost, error) {
	c, added, err := filledCache(ctx, src, obj)
	if err != nil {
		return nil, typeCost{}, err
	}
	if err := c.List(ctx, list); err != nil {
		return nil, typeCost{}, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, typeCost{}, err
	}
	parts := map[string]float64{}
	var total float64
	for _, item := range items {
		total += jsonSize(item, kind, parts)
	}
	n := len(items)
	for k, v := range parts {
		perField[k] = per(v, n)
	}
	return c, typeCost{count: n, heapPer: per(added, n), jsonPer: per(total, n)}, nil
}

// filledCache starts a cache of one type with the operator's cache options
// and returns it once synced, with the live heap it added.
func filledCache(ctx context.Context, src CacheSource, obj client.Object) (cache.Cache, float64, error) {
	base := liveHeap()
	opts := controllers.CacheOptions()
	opts.Scheme = src.Scheme
	opts.DefaultNamespaces = map[string]cache.Config{src.Namespace: {}}
	c, err := cache.New(src.Config, opts)
	if err != nil {
		return nil, 0, err
	}
	if _, err := c.GetInformer(ctx, obj); err != nil {
		return nil, 0, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, 0, errors.New("the measuring cache did not sync")
	}
	return c, float64(int64(liveHeap()) - int64(base)), nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(f)
}

// liveHeap is the heap still in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// jsonSize is an object's JSON size; it adds the size of each top-level
// part (metadata, spec, status and their fields) to parts.
func jsonSize(obj any, kind string, parts map[string]float64) float64 {
	raw, _ := json.Marshal(obj)
	var top map[string]json.RawMessage
	_ = json.Unmarshal(raw, &top)
	for k, v := range top {
		parts[kind+"."+k] += float64(len(v))
		if k != "status" && k != "spec" && k != "metadata" {
			continue
		}
		var sub map[string]json.RawMessage
		if json.Unmarshal(v, &sub) == nil {
			for sk, sv := range sub {
				parts[kind+"."+k+"."+sk] += float64(len(sv))
			}
		}
	}
	return float64(len(raw))
}

func per(v float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return v / float64(n)
}
