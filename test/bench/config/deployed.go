package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// managerManifest is where the operator's Deployment is defined.
const managerManifest = "config/manager/manager.yaml"

// ManagerContainer reads the operator's container from its Deployment, so
// that the benchmark runs the operator with the environment it ships with
// (GOMEMLIMIT) and tests can check that environment against its limits.
func ManagerContainer(root string) (*corev1.Container, error) {
	raw, err := os.ReadFile(filepath.Join(root, managerManifest))
	if err != nil {
		return nil, err
	}
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		d := &appsv1.Deployment{}
		if err := yaml.Unmarshal(doc, d); err != nil {
			return nil, fmt.Errorf("%s: %w", managerManifest, err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		for i := range d.Spec.Template.Spec.Containers {
			if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "manager" {
				return c, nil
			}
		}
	}
	return nil, fmt.Errorf("%s has no Deployment with a container named manager", managerManifest)
}

// DeployedEnv is the manager container's literal environment, as NAME=VALUE.
func DeployedEnv(root string) ([]string, error) {
	c, err := ManagerContainer(root)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	return env, nil
}
