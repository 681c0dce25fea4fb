package controlplane

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
)

// DefaultClassName is the name of the class CreateDefaultClass creates.
const DefaultClassName = "default"

// CreateDefaultClass creates the ExtractorClass DefaultClassName: the
// default of every format, running image, without a cap. Without a class
// the operator leaves every job Pending, so every run that starts the
// operator on this control plane creates one first.
func (c *ControlPlane) CreateDefaultClass(ctx context.Context, image string) (*ejv1.ExtractorClass, error) {
	scheme := runtime.NewScheme()
	if err := ejv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cl, err := client.New(c.Config(-1, 0), client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	class := builders.ExtractorClass(DefaultClassName, image, builders.AsDefault())
	if err := cl.Create(ctx, class); err != nil {
		return nil, fmt.Errorf("creating the default ExtractorClass %s: %w", DefaultClassName, err)
	}
	return class, nil
}
