package v1alpha1_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

const (
	jobsCRD    = "extraction.pybase.io_extractionjobs.yaml"
	classesCRD = "extraction.pybase.io_extractorclasses.yaml"
)

// TestEveryFieldIsDescribed keeps `kubectl explain extractionjob.spec...` and
// `kubectl explain extractorclass.spec...` useful: every field of each
// generated schema under spec and status carries a description.
func TestEveryFieldIsDescribed(t *testing.T) {
	for _, file := range []string{jobsCRD, classesCRD} {
		t.Run(file, func(t *testing.T) {
			root := readSchema(t, file)
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

// TestTheGoListsMatchTheSchemaEnums keeps Formats and Phases, which code
// ranges over, in step with the enums the API server enforces.
func TestTheGoListsMatchTheSchemaEnums(t *testing.T) {
	jobs, classes := readSchema(t, jobsCRD), readSchema(t, classesCRD)
	tests := []struct {
		name string
		want []string
		enum []string
	}{
		{"Formats and the job's spec.format", stringsOf(ejv1.Formats), jobs.Properties["spec"].Properties["format"].Enum},
		{"Formats and the class's spec.formats", stringsOf(ejv1.Formats), classes.Properties["spec"].Properties["formats"].Items.Enum},
		{"Phases and the job's status.phase", stringsOf(ejv1.Phases), jobs.Properties["status"].Properties["phase"].Enum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.enum); diff != "" {
				t.Errorf("(-Go +schema):\n%s", diff)
			}
		})
	}
}

func stringsOf[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// readSchema reads the openAPIV3Schema of a generated CRD's only version.
func readSchema(t *testing.T, file string) schema {
	t.Helper()
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
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

type schema struct {
	Type        string            `json:"type"`
	Format      string            `json:"format"`
	Description string            `json:"description"`
	Properties  map[string]schema `json:"properties"`
	Items       *schema           `json:"items"`
	Enum        []string          `json:"enum"`
}

// TestNextRetryAtIsADateTimeString keeps the schema of the PreciseTime field
// what clients expect of a time: a string in RFC 3339, not an object.
func TestNextRetryAtIsADateTimeString(t *testing.T) {
	field := readSchema(t, jobsCRD).Properties["status"].Properties["nextRetryAt"]
	if diff := cmp.Diff(schema{Type: "string", Format: "date-time"}, schema{Type: field.Type, Format: field.Format}); diff != "" {
		t.Errorf("status.nextRetryAt (-want +got):\n%s", diff)
	}
}
