package measure

import (
	"net/url"
	"strings"
	"testing"
)

func TestRequestKeyOf(t *testing.T) {
	cases := []struct {
		method, path, contentType string
		want                      RequestKey
		ok                        bool
	}{
		{"POST", "/api/v1/namespaces/bench/pods", "", RequestKey{Verb: "POST", Resource: "pods"}, true},
		{"PATCH", "/api/v1/namespaces/bench/pods/p-1/status", "application/merge-patch+json", RequestKey{Verb: "PATCH", Resource: "pods", Subresource: "status"}, true},
		{"GET", "/api/v1/namespaces/bench/pods/p-1", "", RequestKey{Verb: "GET", Resource: "pods"}, true},
		{"GET", "/api/v1/namespaces/bench/pods?limit=500", "", RequestKey{Verb: "LIST", Resource: "pods"}, true},
		{"GET", "/api/v1/namespaces/bench/pods?watch=true&resourceVersion=5", "", RequestKey{Verb: "WATCH", Resource: "pods"}, true},
		{"GET", "/api/v1/watch/namespaces/bench/pods", "", RequestKey{Verb: "WATCH", Resource: "pods"}, true},
		{"PATCH", "/apis/extraction.pybase.io/v1alpha1/namespaces/bench/extractionjobs/j/status", "application/merge-patch+json",
			RequestKey{Verb: "PATCH", Group: "extraction.pybase.io", Resource: "extractionjobs", Subresource: "status"}, true},
		{"PATCH", "/apis/apps/v1/namespaces/bench/deployments/d", "application/apply-patch+yaml", RequestKey{Verb: "APPLY", Group: "apps", Resource: "deployments"}, true},
		{"PUT", "/apis/batch/v1/namespaces/bench/jobs/j/status", "", RequestKey{Verb: "PUT", Group: "batch", Resource: "jobs", Subresource: "status"}, true},
		{"DELETE", "/api/v1/namespaces/bench/pods/p", "", RequestKey{Verb: "DELETE", Resource: "pods"}, true},
		{"DELETE", "/api/v1/namespaces/bench/pods", "", RequestKey{Verb: "DELETECOLLECTION", Resource: "pods"}, true},
		// A namespace's own subresource, not a resource called "status".
		{"PUT", "/api/v1/namespaces/bench/status", "", RequestKey{Verb: "PUT", Resource: "namespaces", Subresource: "status"}, true},
		{"POST", "/api/v1/namespaces", "", RequestKey{Verb: "POST", Resource: "namespaces"}, true},
		{"GET", "/api/v1/namespaces/bench", "", RequestKey{Verb: "GET", Resource: "namespaces"}, true},
		{"GET", "/metrics", "", RequestKey{}, false},
		{"GET", "/apis/batch/v1", "", RequestKey{}, false},
		{"GET", "/api", "", RequestKey{}, false},
	}
	for _, c := range cases {
		u, err := url.Parse(c.path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := requestKeyOf(c.method, u, c.contentType)
		if ok != c.ok || got != c.want {
			t.Errorf("%s %s: got %+v, %v; want %+v, %v", c.method, c.path, got, ok, c.want, c.ok)
		}
	}
}

const sampleMetrics = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="extraction.pybase.io",resource="extractionjobs",scope="resource",subresource="",verb="CREATE",version="v1alpha1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="extraction.pybase.io",resource="extractionjobs",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 20
apiserver_request_total{code="409",component="apiserver",dry_run="",group="extraction.pybase.io",resource="extractionjobs",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 4
# HELP other_total Something else.
# TYPE other_total counter
other_total 1
`

func TestParseRequestTotals(t *testing.T) {
	got, err := parseRequestTotals(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	pods := RequestKey{Verb: "POST", Resource: "pods"}
	// CREATE from the CRD handler counts as POST, like a built-in create.
	jobs := RequestKey{Verb: "POST", Group: "extraction.pybase.io", Resource: "extractionjobs"}
	status := RequestKey{Verb: "PATCH", Group: "extraction.pybase.io", Resource: "extractionjobs", Subresource: "status"}
	want := Counts{pods: 12, jobs: 7, status: 23}
	if len(got.All) != len(want) {
		t.Errorf("all: got %v, want %v", got.All, want)
	}
	for k, v := range want {
		if got.All[k] != v {
			t.Errorf("all[%s] = %g, want %g", k, got.All[k], v)
		}
	}
	if got.Refused[pods] != 2 || got.Refused[status] != 3 || len(got.Refused) != 2 {
		t.Errorf("refused: got %v", got.Refused)
	}
}

func TestCountsSubAndBreakdown(t *testing.T) {
	podCreate := RequestKey{Verb: "POST", Resource: "pods"}
	podStatus := RequestKey{Verb: "PATCH", Resource: "pods", Subresource: "status"}
	jobCreate := RequestKey{Verb: "POST", Group: "batch", Resource: "jobs"}
	jobStatus := RequestKey{Verb: "PUT", Group: "batch", Resource: "jobs", Subresource: "status"}
	podPatch := RequestKey{Verb: "PATCH", Resource: "pods"}
	events := RequestKey{Verb: "POST", Group: "events.k8s.io", Resource: "events"}
	podGet := RequestKey{Verb: "GET", Resource: "pods"}
	lease := RequestKey{Verb: "PUT", Group: "coordination.k8s.io", Resource: "leases"}

	before := Counts{podCreate: 5, lease: 1}
	after := Counts{podCreate: 15, podStatus: 20, jobCreate: 10, jobStatus: 30, podPatch: 10, events: 20, podGet: 4, lease: 3}
	harness := Counts{podStatus: 20, jobCreate: 10}
	side := after.Sub(before, harness)
	if _, ok := side[podStatus]; ok {
		t.Errorf("keys that end at zero must go: %v", side)
	}
	b := BreakdownOf(side)
	want := Breakdown{PodWrites: 20, StatusWrites: 30, Events: 20, OtherWrites: 0, Reads: 4}
	if b != want {
		t.Errorf("breakdown = %+v, want %+v", b, want)
	}
	if b.NonEventWrites() != 50 {
		t.Errorf("non-event writes = %g, want 50", b.NonEventWrites())
	}
	if per := b.Per(10); per.PodWrites != 2 || per.Reads != 0.4 {
		t.Errorf("per = %+v", per)
	}
	if bg := Background(side); len(bg) != 1 || bg[lease] != 2 {
		t.Errorf("background = %v, want only the lease writes", bg)
	}
	if got := (Counts{podCreate: 1}).Add(Counts{podCreate: 2, events: 1}); got[podCreate] != 3 || got[events] != 1 {
		t.Errorf("add = %v", got)
	}
}

const operatorMetrics = `# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="extractionjob",result="success"} 90
controller_runtime_reconcile_total{controller="extractionjob",result="error"} 4
controller_runtime_reconcile_total{controller="extractionjob",result="requeue_after"} 6
controller_runtime_reconcile_total{controller="other",result="success"} 1000
# TYPE controller_runtime_reconcile_time_seconds histogram
controller_runtime_reconcile_time_seconds_bucket{controller="other",le="0.005"} 1000
controller_runtime_reconcile_time_seconds_bucket{controller="other",le="+Inf"} 1000
controller_runtime_reconcile_time_seconds_sum{controller="other"} 1
controller_runtime_reconcile_time_seconds_count{controller="other"} 1000
controller_runtime_reconcile_time_seconds_bucket{controller="extractionjob",le="0.005"} 50
controller_runtime_reconcile_time_seconds_bucket{controller="extractionjob",le="0.01"} 98
controller_runtime_reconcile_time_seconds_bucket{controller="extractionjob",le="0.025"} 100
controller_runtime_reconcile_time_seconds_bucket{controller="extractionjob",le="+Inf"} 100
controller_runtime_reconcile_time_seconds_sum{controller="extractionjob"} 0.6
controller_runtime_reconcile_time_seconds_count{controller="extractionjob"} 100
`

func TestOperatorView(t *testing.T) {
	families, err := ParseFamilies(strings.NewReader(operatorMetrics))
	if err != nil {
		t.Fatal(err)
	}
	v, err := operatorView(families, "extractionjob")
	if err != nil {
		t.Fatal(err)
	}
	// Only the extractionjob controller counts; p99 lies in the 10-25 ms bucket.
	want := OperatorView{Reconciles: 100, ReconcileErrors: 4, ReconcileMeanMs: 6, ReconcileP99Ms: 25}
	if *v != want {
		t.Errorf("got %+v, want %+v", *v, want)
	}
}

func TestCountsJSONRoundTrip(t *testing.T) {
	in := Counts{
		{Verb: "POST", Resource: "pods"}: 3,
		{Verb: "PATCH", Group: "extraction.pybase.io", Resource: "extractionjobs", Subresource: "status"}: 5,
		{Verb: "PUT", Group: "batch", Resource: "jobs", Subresource: "status"}:                            7,
		{Verb: "PATCH", Resource: "pods", Subresource: "status"}:                                          9,
	}
	raw, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var out Counts
	if err := out.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %v", out)
	}
	for k, v := range in {
		if out[k] != v {
			t.Errorf("%s: got %g, want %g", k, out[k], v)
		}
	}
}
