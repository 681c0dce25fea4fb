package v1alpha1_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestEveryFieldIsDescribed keeps `kubectl explain extractionjob.spec...` and
// `kubectl explain extractorclass.spec...` useful: every field of each
// generated schema under spec and status carries a description.
func TestEveryFieldIsDescribed(t *testing.T) {
	for _, file := range []string{
		"extraction.pybase.io_extractionjobs.yaml",
		"extraction.pybase.io_extractorclasses.yaml",
	} {
		t.Run(file, func(t *testing.T) {
			content, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
			if err != nil {
				t.Fatal(err)
			}
			var crd struct {
				Spec struct {
					Versions []struct {
						Schema struct {
							OpenAPIV3Schema schema `json:"openAPIV3Schema"`
						} `json:"schema"`
					} `json:"versions"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(content, &crd); err != nil {
				t.Fatal(err)
			}
			root := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
			checked := 0
			var walk func(path string, s schema)
			walk = func(path string, s schema) {
				for name, field := range s.Properties {
					fieldPath := path + "." + name
					checked++
					if strings.TrimSpace(field.Description) == "" {
						t.Errorf("%s has no description", fieldPath)
					}
					walk(fieldPath, field)
				}
				if s.Items != nil {
					walk(path+"[]", *s.Items)
				}
			}
			walk("spec", root.Properties["spec"])
			walk("status", root.Properties["status"])
			if checked < 40 {
				t.Fatalf("checked only %d fields; is the schema path right?", checked)
			}
		})
	}
}

type schema struct {
	Description string            `json:"description"`
	Properties  map[string]schema `json:"properties"`
	Items       *schema           `json:"items"`
}
