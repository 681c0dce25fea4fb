package builders

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

func TestExtractionJobCarriesThePlanToItsPods(t *testing.T) {
	plan := sim.Plan{Attempts: []sim.Token{sim.Evict, sim.Fail, sim.OK}, Message: "ConnectionError: reset", Result: `{"pages":1}`}
	backoff := ejv1.Backoff{Base: metav1.Duration{Duration: time.Second}, Multiplier: 2}
	job := ExtractionJob("ns", "j", plan, WithRetryPolicy(3, 1, backoff), WithSource("s3://b/j.pdf"))
	got, err := sim.ParsePlan(job.Spec.PodTemplate.Metadata.Annotations)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plan, got); diff != "" {
		t.Errorf("the plan the Pods carry (-want +got):\n%s", diff)
	}
	if p := job.Spec.RetryPolicy; *p.MaxRetries != 3 || *p.MaxDisruptions != 1 || p.Backoff != backoff || job.Spec.Source.URL != "s3://b/j.pdf" {
		t.Errorf("retry policy %+v, source %q; want maxRetries 3, maxDisruptions 1, the backoff, s3://b/j.pdf", p, job.Spec.Source.URL)
	}
}

func TestNamespaceNameEndingInADashIsAPrefix(t *testing.T) {
	if ns := Namespace("chaos-", nil); ns.Name != "" || ns.GenerateName != "chaos-" {
		t.Errorf("Namespace(%q) has name %q and generateName %q", "chaos-", ns.Name, ns.GenerateName)
	}
	if ns := Namespace("e2e", RestrictedLabels); ns.Name != "e2e" || ns.GenerateName != "" || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace(%q) is %+v", "e2e", ns.ObjectMeta)
	}
}

func TestExtractorClassServesEveryFormatUntilTheOptionsSayOtherwise(t *testing.T) {
	got := ExtractorClass("capped", "registry.example/x:1", WithMaxRunning(5), WithMaxRunningPerNamespace(2), AsDefault(), WithFormats(ejv1.FormatPDF))
	want := ejv1.ExtractorClassSpec{
		Formats: []ejv1.Format{ejv1.FormatPDF}, Default: true, Image: "registry.example/x:1",
		MaxRunning: ptr.To[int32](5), MaxRunningPerNamespace: ptr.To[int32](2),
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" || got.Name != "capped" {
		t.Errorf("class %q (-want +got):\n%s", got.Name, diff)
	}
	plain := ExtractorClass("plain", "registry.example/x:1")
	if diff := cmp.Diff(ejv1.Formats, plain.Spec.Formats); diff != "" || plain.Spec.Default || plain.Spec.MaxRunning != nil {
		t.Errorf("a class without options: formats (-want +got):\n%s default %t, maxRunning %v", diff, plain.Spec.Default, plain.Spec.MaxRunning)
	}
	if job := ExtractionJob("ns", "j", sim.Plan{}, WithClass("capped")); job.Spec.ExtractorClassName != "capped" {
		t.Errorf("WithClass: spec.extractorClassName %q, want capped", job.Spec.ExtractorClassName)
	}
}
