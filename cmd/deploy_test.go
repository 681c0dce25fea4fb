package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// render runs `hack/deploy.sh render`, as `make deploy` does before it
// applies, and returns the documents of its output.
func render(t *testing.T, env ...string) []string {
	t.Helper()
	kubectl := kubectlBinary(t)
	cmd := exec.Command(filepath.Join("..", "hack", "deploy.sh"), "render")
	cmd.Env = append(os.Environ(), append(env, "KUBECTL="+kubectl, "DEPLOY_OVERLAY="+t.TempDir())...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/deploy.sh render: %v\n%s", err, stderr.String())
	}
	return strings.Split(string(out), "\n---\n")
}

// kubectlBinary is the kubectl that hack/deploy.sh uses.
func kubectlBinary(t *testing.T) string {
	t.Helper()
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		kubectl = "kubectl"
	}
	if _, err := exec.LookPath(kubectl); err != nil {
		t.Fatalf("hack/deploy.sh needs kubectl (on PATH, or KUBECTL): %v", err)
	}
	return kubectl
}

// renderedObject decodes the first rendered document of the kind.
func renderedObject[T any](t *testing.T, docs []string, kind string) *T {
	t.Helper()
	for _, doc := range docs {
		if !strings.Contains(doc, "\nkind: "+kind+"\n") && !strings.HasPrefix(doc, "kind: "+kind+"\n") {
			continue
		}
		object := new(T)
		if err := yaml.Unmarshal([]byte(doc), object); err != nil {
			t.Fatal(err)
		}
		return object
	}
	t.Fatalf("no %s in the rendered config/default:\n%s", kind, strings.Join(docs, "\n---\n"))
	return nil
}

func TestMakeDeployRunsTheImagesItIsGiven(t *testing.T) {
	tests := []struct {
		name, img, extractorImg string
		wantImage, wantClass    string
	}{
		{name: "without IMG the pinned release runs with the pinned extractor image",
			wantImage: "ghcr.io/pybase/extraction-operator:v0.1.0", wantClass: "ghcr.io/pybase/extraction-extractor:v0.1.0"},
		{name: "IMG with a registry port and a tag replaces the operator's image",
			img: "registry.local:5000/team/operator:dev", wantImage: "registry.local:5000/team/operator:dev"},
		{name: "IMG without a tag means latest, not the pinned tag",
			img: "registry.local:5000/operator", wantImage: "registry.local:5000/operator:latest"},
		{name: "IMG by digest is kept by digest",
			img: "registry.local/operator@sha256:0123abcd", wantImage: "registry.local/operator@sha256:0123abcd"},
		{name: "EXTRACTOR_IMG becomes the default class's image",
			extractorImg: "registry.local/extractor:dev", wantImage: "ghcr.io/pybase/extraction-operator:v0.1.0",
			wantClass: "registry.local/extractor:dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := render(t, "IMG="+tt.img, "EXTRACTOR_IMG="+tt.extractorImg)
			manager := renderedObject[appsv1.Deployment](t, docs, "Deployment").Spec.Template.Spec.Containers[0]
			if manager.Image != tt.wantImage {
				t.Errorf("image %q, want %q", manager.Image, tt.wantImage)
			}
			if slices.ContainsFunc(manager.Args, func(a string) bool { return strings.HasPrefix(a, "--extractor-image") }) {
				t.Errorf("args %q name an extractor image; classes do", manager.Args)
			}
			class := renderedObject[ejv1.ExtractorClass](t, docs, "ExtractorClass")
			if class.Name != "reference" || !class.Spec.Default || len(class.Spec.Formats) != len(ejv1.Formats) {
				t.Errorf("class %s (default %v, formats %v), want reference, the default for every format",
					class.Name, class.Spec.Default, class.Spec.Formats)
			}
			if tt.wantClass != "" && class.Spec.Image != tt.wantClass {
				t.Errorf("the default class runs %q, want %q", class.Spec.Image, tt.wantClass)
			}
		})
	}
}

// The policy's own checks (which Pods it selects, what it lets out) are in
// controllers, which builds the attempt Pods it must select
// (TestAttemptEgressPolicy); these check that config/default ships it and
// that the documented overlay changes its ranges.
func TestMakeDeployShipsTheAttemptEgressPolicyIntoTheDefaultNamespace(t *testing.T) {
	policy := renderedObject[networkingv1.NetworkPolicy](t, render(t), "NetworkPolicy")
	if policy.Name != "extraction-attempt-egress" || policy.Namespace != "default" {
		t.Errorf("NetworkPolicy %s/%s, want default/extraction-attempt-egress", policy.Namespace, policy.Name)
	}
	if !slices.Equal(policy.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) {
		t.Errorf("policyTypes %v, want only Egress", policy.Spec.PolicyTypes)
	}
}

func TestTheClusterRangesExampleAddsRangesAndADNSServerToThePolicy(t *testing.T) {
	out, err := exec.Command(kubectlBinary(t), "kustomize", filepath.Join("..", "config", "networkpolicy", "examples", "cluster-ranges")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	policy := renderedObject[networkingv1.NetworkPolicy](t, []string{string(out)}, "NetworkPolicy")
	if policy.Namespace != "" {
		t.Errorf("the overlay sets namespace %q; it is applied with -n", policy.Namespace)
	}
	ipv4 := policy.Spec.Egress[1].To[0].IPBlock
	for _, want := range []string{"10.0.0.0/8", "169.254.0.0/16", "198.18.0.0/15", "203.0.113.0/24"} {
		if !slices.Contains(ipv4.Except, want) {
			t.Errorf("the IPv4 block %s excepts %v, without %s", ipv4.CIDR, ipv4.Except, want)
		}
	}
	dns := policy.Spec.Egress[0]
	if last := dns.To[len(dns.To)-1]; last.IPBlock == nil || last.IPBlock.CIDR != "169.254.20.10/32" || len(dns.Ports) != 2 {
		t.Errorf("the DNS rule is %+v, want the node-local cache added on port 53 only", dns)
	}
}
