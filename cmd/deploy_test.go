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
	"sigs.k8s.io/yaml"
)

// renderDeployment runs `hack/deploy.sh render`, as `make deploy` does before
// it applies, and returns the operator's Deployment from the output.
func renderDeployment(t *testing.T, env ...string) *appsv1.Deployment {
	t.Helper()
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		kubectl = "kubectl"
	}
	if _, err := exec.LookPath(kubectl); err != nil {
		t.Fatalf("hack/deploy.sh needs kubectl (on PATH, or KUBECTL): %v", err)
	}
	cmd := exec.Command(filepath.Join("..", "hack", "deploy.sh"), "render")
	cmd.Env = append(os.Environ(), append(env, "KUBECTL="+kubectl, "DEPLOY_OVERLAY="+t.TempDir())...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/deploy.sh render: %v\n%s", err, stderr.String())
	}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		if !strings.Contains(doc, "kind: Deployment") {
			continue
		}
		deployment := &appsv1.Deployment{}
		if err := yaml.Unmarshal([]byte(doc), deployment); err != nil {
			t.Fatal(err)
		}
		return deployment
	}
	t.Fatalf("no Deployment in the rendered config/default:\n%s", out)
	return nil
}

func TestMakeDeployRunsTheImagesItIsGiven(t *testing.T) {
	tests := []struct {
		name, img, extractorImg string
		wantImage, wantFlag     string
	}{
		{name: "without IMG the pinned release runs with the built-in extractor image",
			wantImage: "ghcr.io/pybase/extraction-operator:v0.1.0"},
		{name: "IMG with a registry port and a tag replaces the operator's image",
			img: "registry.local:5000/team/operator:dev", wantImage: "registry.local:5000/team/operator:dev"},
		{name: "IMG without a tag means latest, not the pinned tag",
			img: "registry.local:5000/operator", wantImage: "registry.local:5000/operator:latest"},
		{name: "IMG by digest is kept by digest",
			img: "registry.local/operator@sha256:0123abcd", wantImage: "registry.local/operator@sha256:0123abcd"},
		{name: "EXTRACTOR_IMG becomes the operator's extractor image flag",
			extractorImg: "registry.local/extractor:dev", wantImage: "ghcr.io/pybase/extraction-operator:v0.1.0",
			wantFlag: "--extractor-image=registry.local/extractor:dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deployment := renderDeployment(t, "IMG="+tt.img, "EXTRACTOR_IMG="+tt.extractorImg)
			manager := deployment.Spec.Template.Spec.Containers[0]
			if manager.Image != tt.wantImage {
				t.Errorf("image %q, want %q", manager.Image, tt.wantImage)
			}
			hasFlag := slices.ContainsFunc(manager.Args, func(a string) bool { return strings.HasPrefix(a, "--extractor-image") })
			if tt.wantFlag == "" && hasFlag {
				t.Errorf("args %q name an extractor image, want the built-in one", manager.Args)
			}
			if tt.wantFlag != "" && !slices.Contains(manager.Args, tt.wantFlag) {
				t.Errorf("args %q, want %q among them", manager.Args, tt.wantFlag)
			}
		})
	}
}
