package main

import (
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// clientLimiter is the rate limiter of the REST client that controller-runtime
// builds for one kind.
func clientLimiter(t *testing.T, cfg *rest.Config, gvk schema.GroupVersionKind) flowcontrol.RateLimiter {
	t.Helper()
	c, err := apiutil.RESTClientForGVK(gvk, false, false, cfg, serializer.NewCodecFactory(nil), http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	return c.GetRateLimiter()
}

func TestEveryResourceSharesOneRequestBudget(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"}
	limitRequests(cfg, 50, 100)
	pods := clientLimiter(t, cfg, corev1.SchemeGroupVersion.WithKind("Pod"))
	jobs := clientLimiter(t, cfg, ejv1.GroupVersion.WithKind("ExtractionJob"))
	if pods == nil || pods != jobs {
		t.Errorf("Pods and ExtractionJobs have rate limiters %p and %p, want one shared", pods, jobs)
	}
}

func TestANegativeQPSLiftsTheLimit(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"}
	limitRequests(cfg, -1, 100)
	if cfg.RateLimiter != nil {
		t.Errorf("want no rate limiter, got %v", cfg.RateLimiter)
	}
	if pods := clientLimiter(t, cfg, corev1.SchemeGroupVersion.WithKind("Pod")); pods != nil {
		t.Errorf("the Pod client is rate-limited: %v", pods)
	}
}
