package main

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
)

// resource is how RBAC rules and `kubectl auth can-i` name ExtractionJobs.
const resource = "extractionjobs.extraction.pybase.io"

// explain turns an API error into one a person can act on, keeping the API
// server's own message. verb is the RBAC verb of the request that failed.
func explain(err error, verb string, key types.NamespacedName) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		where := fmt.Sprintf("-n %s", key.Namespace)
		if key.Namespace == "" {
			where = "--all-namespaces"
		}
		return fmt.Errorf("%w\nThe API server refused to let you %s ExtractionJobs: kubectl extraction acts with your own "+
			"kubeconfig credentials, so RBAC decides. Check with `kubectl auth can-i %s %s %s`, "+
			"and ask a cluster admin for a Role granting %q on %s.", err, verb, verb, resource, where, verb, resource)
	case apierrors.IsNotFound(err) && key.Name != "":
		if isMissingObject(err) {
			return fmt.Errorf("extractionjob %q not found in namespace %q", key.Name, key.Namespace)
		}
		return fmt.Errorf("%w (is the ExtractionJob CRD installed?)", err)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%w: the API server does not serve ExtractionJobs; is the CRD installed in this cluster?", err)
	}
	return err
}

// isMissingObject tells a missing object from a missing resource type: only
// the former names the object in the error's details.
func isMissingObject(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	return status.Status().Details.Name != ""
}
