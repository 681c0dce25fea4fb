package v1alpha1_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var objectCount atomic.Int32

// uniqueName keeps the cluster-scoped classes of different tests apart.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, objectCount.Add(1))
}

// fullClass is a valid class that sets every field of the spec.
func fullClass() *ejv1.ExtractorClass {
	return &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("full")},
		Spec: ejv1.ExtractorClassSpec{
			Formats:          []ejv1.Format{ejv1.FormatPDF, ejv1.FormatDXF},
			Default:          true,
			Image:            "registry.example/extractor:v1",
			ImagePullPolicy:  corev1.PullIfNotPresent,
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
			Command:          []string{"/extractor"},
			Args:             []string{"--verbose"},
			Env: []ejv1.EnvVar{
				{Name: "LOG_LEVEL", Value: "debug"},
				{Name: "OCR_ENDPOINT", ValueFrom: &ejv1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "ocr"}, Key: "endpoint",
				}}},
			},
			Resources: &ejv1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
			ScratchSizeLimit: ptr.To(resource.MustParse("2Gi")),
			OnOOMKilled:      &ejv1.OnOOMKilled{MemoryFactor: 2, MaxMemory: resource.MustParse("4Gi")},
			NodeSelector:     map[string]string{"kubernetes.io/os": "linux"},
			Tolerations:      []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "extraction", Effect: corev1.TaintEffectNoSchedule}},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}}},
				}}},
			}},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "extractor"}},
			}},
			PriorityClassName:            "extraction",
			RuntimeClassName:             ptr.To("gvisor"),
			ServiceAccountName:           "extractor",
			AutomountServiceAccountToken: true,
			RunAsUser:                    ptr.To[int64](1000),
			RunAsGroup:                   ptr.To[int64](1000),
			MaxRunning:                   ptr.To[int32](10),
			MaxRunningPerNamespace:       ptr.To[int32](3),
			NamespaceSelector:            &metav1.LabelSelector{MatchLabels: map[string]string{"extraction.example/tenant": "true"}},
			SchedulingTimeout:            &metav1.Duration{Duration: 10 * time.Minute},
			CircuitBreaker: &ejv1.CircuitBreaker{
				ErrorTypes: []string{"ServiceUnavailable", "RateLimitExceeded"}, ConsecutiveFailures: 10,
				OpenDuration: &metav1.Duration{Duration: 2 * time.Minute}, MaxOpenDuration: &metav1.Duration{Duration: time.Hour},
				Probes: 2, RampUp: &metav1.Duration{Duration: time.Minute},
			},
		},
	}
}

// quantitiesByValue compares resource.Quantity by value: the API server
// returns "1Gi" for "1024Mi", and a Quantity caches its string form.
var quantitiesByValue = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func TestAFullClassIsAcceptedAndKeepsEveryField(t *testing.T) {
	class := fullClass()
	spec := reflect.ValueOf(class.Spec)
	for i := range spec.NumField() {
		if spec.Field(i).IsZero() {
			t.Fatalf("fullClass leaves spec.%s unset; a new field needs a value here", spec.Type().Field(i).Name)
		}
	}
	want := class.Spec.DeepCopy()
	if err := k8sClient.Create(t.Context(), class); err != nil {
		t.Fatalf("creating a class with every field: %v", err)
	}
	got := &ejv1.ExtractorClass{}
	if err := k8sClient.Get(t.Context(), client.ObjectKeyFromObject(class), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*want, got.Spec, quantitiesByValue); diff != "" {
		t.Errorf("stored spec (-want +got):\n%s", diff)
	}
}

func TestTheSampleClassesAreAccepted(t *testing.T) {
	for _, file := range []string{"samples/extractorclass-capped.yaml", "samples/extractorclass-oom.yaml", "default/reference-extractorclass.yaml"} {
		t.Run(file, func(t *testing.T) {
			content, err := os.ReadFile(filepath.Join("..", "..", "config", file))
			if err != nil {
				t.Fatal(err)
			}
			class := &ejv1.ExtractorClass{}
			if err := yaml.UnmarshalStrict(content, class); err != nil {
				t.Fatalf("the sample has a field the type lacks: %v", err)
			}
			class.Name = uniqueName(class.Name)
			if err := k8sClient.Create(t.Context(), class, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
				t.Fatalf("creating the sample: %v", err)
			}
		})
	}
}

func TestAMinimalClassGetsItsDefaults(t *testing.T) {
	class := minimalClass("minimal", nil)
	if err := k8sClient.Create(t.Context(), class); err != nil {
		t.Fatalf("creating a minimal class: %v", err)
	}
	for _, field := range []string{"default", "automountServiceAccountToken"} {
		value, found, err := unstructured.NestedBool(class.Object, "spec", field)
		if err != nil || !found || value {
			t.Errorf("spec.%s = %v (found %v, %v), want a defaulted false", field, value, found, err)
		}
	}
}

func TestAnEmptyCircuitBreakerGetsItsDefaults(t *testing.T) {
	class := minimalClass("breaker", map[string]any{"circuitBreaker": map[string]any{}})
	if err := k8sClient.Create(t.Context(), class); err != nil {
		t.Fatalf("creating a class with an empty circuitBreaker: %v", err)
	}
	got, _, err := unstructured.NestedMap(class.Object, "spec", "circuitBreaker")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"errorTypes":          []any{"ConnectionError", "ServiceUnavailable", "RateLimitExceeded", "TimeoutError", "S3ConnectionError", "Werk24Timeout"},
		"consecutiveFailures": int64(5), "openDuration": "1m", "maxOpenDuration": "30m", "probes": int64(1), "rampUp": "30s",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec.circuitBreaker (-want +got):\n%s", diff)
	}
}

func TestClassRefusals(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ejv1.ExtractorClassSpec)
		// field is the path the refusal must name.
		field string
	}{
		{"no formats", func(s *ejv1.ExtractorClassSpec) { s.Formats = []ejv1.Format{} }, "spec.formats"},
		{"an unknown format", func(s *ejv1.ExtractorClassSpec) { s.Formats = []ejv1.Format{"tiff"} }, "spec.formats[0]"},
		{"a format twice", func(s *ejv1.ExtractorClassSpec) { s.Formats = []ejv1.Format{ejv1.FormatPDF, ejv1.FormatPDF} }, "spec.formats[1]"},
		{"no image", func(s *ejv1.ExtractorClassSpec) { s.Image = "" }, "spec.image"},
		{"an unknown image pull policy", func(s *ejv1.ExtractorClassSpec) { s.ImagePullPolicy = "Sometimes" }, "spec.imagePullPolicy"},
		{"a memoryFactor of 1", func(s *ejv1.ExtractorClassSpec) { s.OnOOMKilled.MemoryFactor = 1 }, "spec.onOOMKilled.memoryFactor"},
		{"a memoryFactor of 5", func(s *ejv1.ExtractorClassSpec) { s.OnOOMKilled.MemoryFactor = 5 }, "spec.onOOMKilled.memoryFactor"},
		{"onOOMKilled without resources", func(s *ejv1.ExtractorClassSpec) { s.Resources = nil }, "spec.onOOMKilled"},
		{"onOOMKilled without a memory limit", func(s *ejv1.ExtractorClassSpec) {
			delete(s.Resources.Limits, corev1.ResourceMemory)
			s.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("1")
		}, "spec.onOOMKilled"},
		{"a memory limit above maxMemory", func(s *ejv1.ExtractorClassSpec) {
			s.Resources.Limits[corev1.ResourceMemory] = resource.MustParse("5Gi")
		}, "spec.onOOMKilled.maxMemory"},
		{"a memory request above its limit", func(s *ejv1.ExtractorClassSpec) {
			s.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("2Gi")
		}, "spec.resources"},
		{"a zero scratchSizeLimit", func(s *ejv1.ExtractorClassSpec) { s.ScratchSizeLimit = ptr.To(resource.MustParse("0")) }, "spec.scratchSizeLimit"},
		{"runAsUser 0", func(s *ejv1.ExtractorClassSpec) { s.RunAsUser = ptr.To[int64](0) }, "spec.runAsUser"},
		{"runAsGroup 0", func(s *ejv1.ExtractorClassSpec) { s.RunAsGroup = ptr.To[int64](0) }, "spec.runAsGroup"},
		{"maxRunning 0", func(s *ejv1.ExtractorClassSpec) { s.MaxRunning = ptr.To[int32](0) }, "spec.maxRunning"},
		{"maxRunningPerNamespace 0", func(s *ejv1.ExtractorClassSpec) { s.MaxRunningPerNamespace = ptr.To[int32](0) }, "spec.maxRunningPerNamespace"},
		{"maxRunningPerNamespace above maxRunning", func(s *ejv1.ExtractorClassSpec) {
			s.MaxRunning, s.MaxRunningPerNamespace = ptr.To[int32](2), ptr.To[int32](3)
		}, "spec.maxRunningPerNamespace"},
		{"a zero schedulingTimeout", func(s *ejv1.ExtractorClassSpec) { s.SchedulingTimeout = &metav1.Duration{} }, "spec.schedulingTimeout"},
		{"a negative schedulingTimeout", func(s *ejv1.ExtractorClassSpec) {
			s.SchedulingTimeout = &metav1.Duration{Duration: -time.Minute}
		}, "spec.schedulingTimeout"},
		{"a schedulingTimeout above 168h", func(s *ejv1.ExtractorClassSpec) {
			s.SchedulingTimeout = &metav1.Duration{Duration: 200 * time.Hour}
		}, "spec.schedulingTimeout"},
		{"an env name the operator owns", func(s *ejv1.ExtractorClassSpec) {
			s.Env = append(s.Env, ejv1.EnvVar{Name: "EXTRACTION_SOURCE_URL", Value: "https://attacker.example/"})
		}, "spec.env[2].name"},
		{"an env with value and valueFrom", func(s *ejv1.ExtractorClassSpec) { s.Env[1].Value = "inline" }, "spec.env[1]"},
		{"an env name twice", func(s *ejv1.ExtractorClassSpec) { s.Env[1].Name = s.Env[0].Name }, "spec.env[1]"},
		{"a priorityClassName that is no name", func(s *ejv1.ExtractorClassSpec) { s.PriorityClassName = "High Priority" }, "spec.priorityClassName"},
		{"an openDuration below a second", func(s *ejv1.ExtractorClassSpec) {
			s.CircuitBreaker.OpenDuration = &metav1.Duration{Duration: 500 * time.Millisecond}
		}, "spec.circuitBreaker.openDuration"},
		{"a maxOpenDuration above 24h", func(s *ejv1.ExtractorClassSpec) {
			s.CircuitBreaker.MaxOpenDuration = &metav1.Duration{Duration: 25 * time.Hour}
		}, "spec.circuitBreaker.maxOpenDuration"},
		{"a rampUp above an hour", func(s *ejv1.ExtractorClassSpec) {
			s.CircuitBreaker.RampUp = &metav1.Duration{Duration: 2 * time.Hour}
		}, "spec.circuitBreaker.rampUp"},
		{"an empty breaker error type", func(s *ejv1.ExtractorClassSpec) { s.CircuitBreaker.ErrorTypes = []string{""} }, "spec.circuitBreaker.errorTypes[0]"},
		{"more probes than allowed", func(s *ejv1.ExtractorClassSpec) { s.CircuitBreaker.Probes = 101 }, "spec.circuitBreaker.probes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			class := fullClass()
			tc.edit(&class.Spec)
			wantRefusedAt(t, k8sClient.Create(t.Context(), class), tc.field)
		})
	}
}

// A class's env has no secretKeyRef field, so the API server prunes one, as it
// prunes every unknown field. Because configMapKeyRef is required, the pruned
// valueFrom is then refused, whatever field validation the client asks for;
// kubectl asks for Strict by default and is also told the field is unknown.
func TestAnEnvFromASecretIsRefused(t *testing.T) {
	secretKeyRef := map[string]any{"name": "db", "key": "password"}
	for _, validation := range []string{"", metav1.FieldValidationWarn, metav1.FieldValidationIgnore, metav1.FieldValidationStrict} {
		t.Run("fieldValidation="+validation, func(t *testing.T) {
			class := classWithEnv(map[string]any{"name": "DB_PASSWORD", "valueFrom": map[string]any{"secretKeyRef": secretKeyRef}})
			var options []client.CreateOption
			if validation != "" {
				options = append(options, client.FieldValidation(validation))
			}
			err := k8sClient.Create(t.Context(), class, options...)
			if validation == metav1.FieldValidationStrict {
				if err == nil || !strings.Contains(err.Error(), `unknown field "spec.env[0].valueFrom.secretKeyRef"`) {
					t.Fatalf("want a Strict refusal of the unknown field, got %v", err)
				}
				return
			}
			wantRefusedAt(t, err, "spec.env[0].valueFrom.configMapKeyRef")
		})
	}
}

// Beside a configMapKeyRef, a secretKeyRef is pruned when the client does not
// ask for Strict validation: what is stored, and what reaches the Pod, reads
// only the ConfigMap.
func TestASecretKeyRefBesideAConfigMapKeyRefIsPrunedOrRefused(t *testing.T) {
	env := map[string]any{"name": "DB_PASSWORD", "valueFrom": map[string]any{
		"configMapKeyRef": map[string]any{"name": "db", "key": "password"},
		"secretKeyRef":    map[string]any{"name": "db", "key": "password"},
	}}
	strict := classWithEnv(env)
	if err := k8sClient.Create(t.Context(), strict, client.FieldValidation(metav1.FieldValidationStrict)); err == nil ||
		!strings.Contains(err.Error(), `unknown field "spec.env[0].valueFrom.secretKeyRef"`) {
		t.Fatalf("want a Strict refusal of the unknown field, got %v", err)
	}

	lenient := classWithEnv(env)
	if err := k8sClient.Create(t.Context(), lenient); err != nil {
		t.Fatalf("creating the class without Strict validation: %v", err)
	}
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(lenient.GroupVersionKind())
	if err := k8sClient.Get(t.Context(), client.ObjectKeyFromObject(lenient), stored); err != nil {
		t.Fatal(err)
	}
	storedEnv, _, _ := unstructured.NestedSlice(stored.Object, "spec", "env")
	if diff := cmp.Diff([]any{map[string]any{"name": "DB_PASSWORD", "valueFrom": map[string]any{
		"configMapKeyRef": map[string]any{"name": "db", "key": "password"},
	}}}, storedEnv); diff != "" {
		t.Errorf("stored env (-want +got):\n%s", diff)
	}
}

// minimalClass is a class with only its required fields and the given ones,
// unstructured so that it can carry what the Go type cannot: unknown fields,
// quantities written as numbers, absent defaults.
func minimalClass(prefix string, spec map[string]any) *unstructured.Unstructured {
	fullSpec := map[string]any{"formats": []any{"pdf"}, "image": "registry.example/extractor:v1"}
	maps.Copy(fullSpec, spec)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ejv1.GroupVersion.String(),
		"kind":       "ExtractorClass",
		"metadata":   map[string]any{"name": uniqueName(prefix)},
		"spec":       fullSpec,
	}}
}

func classWithEnv(env map[string]any) *unstructured.Unstructured {
	return minimalClass("env", map[string]any{"env": []any{env}})
}

// YAML lets an administrator write a quantity as a number of bytes; the CEL
// rules compare those as they compare "1Gi".
func TestQuantitiesWrittenAsNumbersAreCompared(t *testing.T) {
	classWithMaxMemory := func(maxMemory int64) *unstructured.Unstructured {
		return minimalClass("bytes", map[string]any{
			"resources":   map[string]any{"requests": map[string]any{"memory": int64(1 << 30)}, "limits": map[string]any{"memory": int64(1 << 30)}},
			"onOOMKilled": map[string]any{"memoryFactor": int64(2), "maxMemory": maxMemory},
		})
	}
	if err := k8sClient.Create(t.Context(), classWithMaxMemory(4<<30)); err != nil {
		t.Fatalf("creating a class with a maxMemory above its limit: %v", err)
	}
	wantRefusedAt(t, k8sClient.Create(t.Context(), classWithMaxMemory(1<<29)), "spec.onOOMKilled.maxMemory")
}

// TestKubectlGetShowsTheClassColumns asks the API server for the table that
// `kubectl get extractorclass -o wide` prints.
func TestKubectlGetShowsTheClassColumns(t *testing.T) {
	class := fullClass()
	class.Spec.Default = false
	if err := k8sClient.Create(t.Context(), class); err != nil {
		t.Fatal(err)
	}
	class.Status.Running, class.Status.Queued = 0, 5
	if err := k8sClient.Status().Update(t.Context(), class); err != nil {
		t.Fatalf("writing the class's status: %v", err)
	}

	httpClient, err := rest.HTTPClientFor(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	request, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		strings.TrimSuffix(restConfig.Host, "/")+"/apis/extraction.pybase.io/v1alpha1/extractorclasses/"+class.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	request.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	response, err := httpClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		t.Fatal(err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(body, table); err != nil {
		t.Fatalf("decoding the table: %v: %s", err, body)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(table.Rows))
	}
	got := map[string]any{}
	for i, column := range table.ColumnDefinitions {
		if column.Name != "Age" {
			got[column.Name] = table.Rows[0].Cells[i]
		}
	}
	want := map[string]any{
		"Name": class.Name, "Formats": `["pdf","dxf"]`, "Default": false,
		"Running": float64(0), "Max": float64(10), "Queued": float64(5),
		"Per Namespace": float64(3), "Image": "registry.example/extractor:v1", "Ready": nil, "Circuit": nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}
