package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func testJob(name, uid string) *ejv1.ExtractionJob {
	return &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: k8stypes.UID("uid-" + uid)},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatDXF,
			Source: ejv1.Source{URL: "s3://bucket/a.dxf", SecretRef: &ejv1.SecretReference{Name: "creds"}},
		},
	}
}

func TestPodNameIsDeterministicUniqueAndShort(t *testing.T) {
	job := testJob("drawing", "1")
	if podName(job, 2) != podName(job, 2) {
		t.Error("the same job and attempt gave two names")
	}
	if podName(job, 1) == podName(job, 2) {
		t.Error("two attempts share a name")
	}
	if podName(job, 1) == podName(testJob("drawing", "2"), 1) {
		t.Error("a job recreated under the same name meets its predecessor's Pod name")
	}
	long := testJob(strings.Repeat("a", 62)+"-"+strings.Repeat("b", 100), "1")
	for _, attempt := range []int32{1, 999999} {
		name := podName(long, attempt)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("pod name %q is not a valid label: %v", name, errs)
		}
	}
}

func TestAttemptPodMeetsTheContract(t *testing.T) {
	job := testJob("drawing", "1")
	job.Spec.Options = map[string]string{"layers": "all"}
	job.Spec.AttemptTimeout = &metav1.Duration{Duration: 1500 * time.Millisecond}
	job.Spec.PodTemplate = &ejv1.PodTemplate{Metadata: ejv1.PodTemplateMetadata{
		Labels:      map[string]string{"team": "cad", ejv1.AttemptLabel: "spoofed"},
		Annotations: map[string]string{"cost-center": "42"},
	}}
	pod, err := attemptPod(job, 3, testClass("dxf", "registry/dxf:1", ejv1.FormatDXF))
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Labels[ejv1.AttemptLabel]; got != "3" {
		t.Errorf("attempt label = %q, want the operator's own value 3", got)
	}
	if pod.Labels[ejv1.JobUIDLabel] != string(job.UID) || pod.Labels["team"] != "cad" || pod.Annotations["cost-center"] != "42" {
		t.Errorf("labels %v / annotations %v miss the template or the operator's labels", pod.Labels, pod.Annotations)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID != job.UID || !*ref.BlockOwnerDeletion {
		t.Errorf("controller reference = %+v, want the job", ref)
	}
	spec := pod.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever || *spec.AutomountServiceAccountToken || *spec.ActiveDeadlineSeconds != 2 {
		t.Errorf("restartPolicy %s, automount %v, activeDeadlineSeconds %d", spec.RestartPolicy, *spec.AutomountServiceAccountToken, *spec.ActiveDeadlineSeconds)
	}
	if !*spec.SecurityContext.RunAsNonRoot || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v is not restricted", spec.SecurityContext)
	}
	c := spec.Containers[0]
	if c.Name != "extractor" || c.Image != "registry/dxf:1" || c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("container %s image %s policy %s", c.Name, c.Image, c.TerminationMessagePolicy)
	}
	if *c.SecurityContext.AllowPrivilegeEscalation || !*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container security context %+v is not restricted", c.SecurityContext)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	want := map[string]string{
		"EXTRACTION_FORMAT": "dxf", "EXTRACTION_SOURCE_URL": "s3://bucket/a.dxf",
		"EXTRACTION_OPTIONS": `{"layers":"all"}`, "EXTRACTION_ATTEMPT": "3",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "creds" {
		t.Errorf("envFrom = %+v, want the secretRef", c.EnvFrom)
	}
}

func TestAttemptPodWithoutOptionsPassesAnEmptyObject(t *testing.T) {
	pod, err := attemptPod(testJob("a", "1"), 1, testClass("plain", "img", ejv1.FormatDXF))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "EXTRACTION_OPTIONS" && e.Value != "{}" {
			t.Errorf("EXTRACTION_OPTIONS = %q, want {}", e.Value)
		}
	}
}

// classFieldsOfPod reads off an attempt Pod what classFieldsOf reads off its class.
func classFieldsOfPod(pod *corev1.Pod) classFields {
	c := pod.Spec.Containers[0]
	return classFields{
		Image: c.Image, ImagePullPolicy: c.ImagePullPolicy, Command: c.Command, Args: c.Args,
		Env: c.Env[4:], Resources: c.Resources, ScratchSizeLimit: pod.Spec.Volumes[0].EmptyDir.SizeLimit,
		ImagePullSecrets: pod.Spec.ImagePullSecrets, NodeSelector: pod.Spec.NodeSelector,
		Tolerations: pod.Spec.Tolerations, Affinity: pod.Spec.Affinity,
		TopologySpreadConstraints: pod.Spec.TopologySpreadConstraints,
		PriorityClassName:         pod.Spec.PriorityClassName, RuntimeClassName: pod.Spec.RuntimeClassName,
		ServiceAccountName:           pod.Spec.ServiceAccountName,
		AutomountServiceAccountToken: *pod.Spec.AutomountServiceAccountToken,
		RunAsUser:                    pod.Spec.SecurityContext.RunAsUser, RunAsGroup: pod.Spec.SecurityContext.RunAsGroup,
		ClassLabel: pod.Labels[ejv1.ExtractorClassLabel],
	}
}

func TestEveryClassFieldReachesTheAttemptPod(t *testing.T) {
	job := testJob("drawing", "1")
	class := fullClass()
	pod, err := attemptPod(job, 1, class)
	if err != nil {
		t.Fatal(err)
	}
	want := classFieldsOf(class)
	got := classFieldsOfPod(pod)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the Pod does not carry the class (-want +got):\n%s", diff)
	}
}

func TestAClassWithoutTheOptionalFieldsKeepsTheOperatorsDefaults(t *testing.T) {
	pod, err := attemptPod(testJob("a", "1"), 1, testClass("plain", "img", ejv1.FormatDXF))
	if err != nil {
		t.Fatal(err)
	}
	sc := pod.Spec.SecurityContext
	if *sc.RunAsUser != extractorUID || *sc.RunAsGroup != extractorUID || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("runAsUser %d, runAsGroup %d, automount %v: want the operator's defaults", *sc.RunAsUser, *sc.RunAsGroup, *pod.Spec.AutomountServiceAccountToken)
	}
	if pod.Spec.ServiceAccountName != "" || pod.Spec.Volumes[0].EmptyDir.SizeLimit != nil || pod.Spec.Containers[0].Resources.Limits != nil {
		t.Errorf("a plain class set a ServiceAccount, a scratch limit or resources: %+v", pod.Spec)
	}
}

func TestAttemptMemoryGrowsAfterOOMKilledAttemptsUpToMaxMemory(t *testing.T) {
	grows := func(factor int32, max string) *ejv1.ExtractorClassSpec {
		return &ejv1.ExtractorClassSpec{
			Resources: &ejv1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("1")},
			},
			OnOOMKilled: &ejv1.OnOOMKilled{MemoryFactor: factor, MaxMemory: resource.MustParse(max)},
		}
	}
	fixed := grows(2, "1Gi")
	fixed.OnOOMKilled = nil
	cases := []struct {
		name      string
		spec      *ejv1.ExtractorClassSpec
		oomKilled int32
		want      string
	}{
		{"no OOMKilled attempt runs with the class's limit", grows(2, "4Gi"), 0, "512Mi"},
		{"one OOMKilled attempt doubles it", grows(2, "4Gi"), 1, "1Gi"},
		{"two OOMKilled attempts quadruple it", grows(2, "4Gi"), 2, "2Gi"},
		{"a factor of 3 triples it", grows(3, "4Gi"), 1, "1536Mi"},
		{"growth stops at maxMemory", grows(2, "1500Mi"), 2, "1500Mi"},
		{"many OOMKilled attempts stay at maxMemory", grows(4, "8Gi"), 1000, "8Gi"},
		{"a class without onOOMKilled keeps its limit", fixed, 3, "512Mi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := attemptMemory(tc.spec, tc.oomKilled)
			if got == nil || got.Cmp(resource.MustParse(tc.want)) != 0 {
				t.Errorf("memory = %v, want %s", got, tc.want)
			}
			resources := attemptResources(tc.spec, tc.oomKilled)
			limit, request := resources.Limits[corev1.ResourceMemory], resources.Requests[corev1.ResourceMemory]
			if tc.spec.OnOOMKilled != nil && (limit.Cmp(*got) != 0 || request.Cmp(*got) != 0) {
				t.Errorf("limit %s, request %s, want both %s", &limit, &request, got)
			}
			if cpu := resources.Requests[corev1.ResourceCPU]; cpu.String() != "1" {
				t.Errorf("cpu request = %s, want the class's 1", &cpu)
			}
		})
	}
	class := grows(2, "4Gi")
	attemptResources(class, 1)
	if limit := class.Resources.Limits[corev1.ResourceMemory]; limit.String() != "512Mi" {
		t.Errorf("growing the memory changed the class's own limit to %s", &limit)
	}
}

// classFields are the fields of a class that reach an attempt's Pod.
type classFields struct {
	Image                        string
	ImagePullPolicy              corev1.PullPolicy
	ImagePullSecrets             []corev1.LocalObjectReference
	Command, Args                []string
	Env                          []corev1.EnvVar
	Resources                    corev1.ResourceRequirements
	ScratchSizeLimit             *resource.Quantity
	NodeSelector                 map[string]string
	Tolerations                  []corev1.Toleration
	Affinity                     *corev1.Affinity
	TopologySpreadConstraints    []corev1.TopologySpreadConstraint
	PriorityClassName            string
	RuntimeClassName             *string
	ServiceAccountName           string
	AutomountServiceAccountToken bool
	RunAsUser, RunAsGroup        *int64
	ClassLabel                   string
}

// classFieldsOf is what a Pod of the class must carry.
func classFieldsOf(class *ejv1.ExtractorClass) classFields {
	spec := class.Spec
	return classFields{
		Image: spec.Image, ImagePullPolicy: spec.ImagePullPolicy, ImagePullSecrets: spec.ImagePullSecrets,
		Command: spec.Command, Args: spec.Args, Env: classEnv(spec.Env),
		Resources:        corev1.ResourceRequirements{Limits: spec.Resources.Limits, Requests: spec.Resources.Requests},
		ScratchSizeLimit: spec.ScratchSizeLimit, NodeSelector: spec.NodeSelector, Tolerations: spec.Tolerations,
		Affinity: spec.Affinity, TopologySpreadConstraints: spec.TopologySpreadConstraints,
		PriorityClassName: spec.PriorityClassName, RuntimeClassName: spec.RuntimeClassName,
		ServiceAccountName: spec.ServiceAccountName, AutomountServiceAccountToken: spec.AutomountServiceAccountToken,
		RunAsUser: spec.RunAsUser, RunAsGroup: spec.RunAsGroup, ClassLabel: class.Name,
	}
}

// fullClass sets every field of a class that reaches a Pod, each to a
// value that differs from the operator's default.
func fullClass() *ejv1.ExtractorClass {
	scratch := resource.MustParse("3Gi")
	return &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: "everything"},
		Spec: ejv1.ExtractorClassSpec{
			Formats:          ejv1.Formats,
			Image:            "registry.example/full:2",
			ImagePullPolicy:  corev1.PullAlways,
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry-creds"}},
			Command:          []string{"/extract"},
			Args:             []string{"--fast"},
			Env: []ejv1.EnvVar{
				{Name: "MODE", Value: "ocr"},
				{Name: "ENDPOINT", ValueFrom: &ejv1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "extractor-settings"}, Key: "endpoint"}}},
			},
			Resources: &ejv1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("768Mi"), corev1.ResourceCPU: resource.MustParse("2")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
			},
			ScratchSizeLimit: &scratch,
			NodeSelector:     map[string]string{"pool": "extraction"},
			Tolerations:      []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "extraction", Effect: corev1.TaintEffectNoSchedule}},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}}}}}}}},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone",
				WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{ejv1.ExtractorClassLabel: "everything"}}}},
			PriorityClassName:            "extraction-batch",
			RuntimeClassName:             ptr.To("gvisor"),
			ServiceAccountName:           "extractor",
			AutomountServiceAccountToken: true,
			RunAsUser:                    ptr.To[int64](1001),
			RunAsGroup:                   ptr.To[int64](2002),
		},
	}
}
