package main

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
)

// resource is how RBAC rules and `kubectl auth can-i` name ExtractionJobs.
const resource = "extractionjobs.extraction.pybase.io"

// classResource is how RBAC rules and `kubectl auth can-i` name ExtractorClasses.
const classResource = "extractorclasses.extraction.pybase.io"

// apiKind is what explain needs to know of the kind a request was about.
type apiKind struct {
	kind     string // ExtractionJob
	plural   string // ExtractionJobs
	resource string // as RBAC names it
	// clusterScoped kinds are granted by ClusterRoles and asked about without -n.
	clusterScoped bool
}

var (
	jobKind   = apiKind{kind: "ExtractionJob", plural: "ExtractionJobs", resource: resource}
	classKind = apiKind{kind: "ExtractorClass", plural: "ExtractorClasses", resource: classResource, clusterScoped: true}
)

// explain turns an API error about ExtractionJobs into one a person can act
// on, keeping the API server's own message. verb is the RBAC verb of the
// request that failed.
func explain(err error, verb string, key types.NamespacedName) error {
	return explainKind(err, jobKind, verb, key)
}

// explainKind is explain for a request about any of the plugin's kinds.
func explainKind(err error, kind apiKind, verb string, key types.NamespacedName) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		where, role := fmt.Sprintf(" -n %s", key.Namespace), "Role"
		switch {
		case kind.clusterScoped:
			where, role = "", "ClusterRole"
		case key.Namespace == "":
			where = " --all-namespaces"
		}
		return fmt.Errorf("%w\nThe API server refused to let you %s %s: kubectl extraction acts with your own "+
			"kubeconfig credentials, so RBAC decides. Check with `kubectl auth can-i %s %s%s`, "+
			"and ask a cluster admin for a %s granting %q on %s.",
			err, verb, kind.plural, verb, kind.resource, where, role, verb, kind.resource)
	case apierrors.IsNotFound(err) && key.Name != "":
		if !isMissingObject(err) {
			return fmt.Errorf("%w (is the %s CRD installed?)", err, kind.kind)
		}
		return fmt.Errorf("%s %q not found in namespace %q", strings.ToLower(kind.kind), key.Name, key.Namespace)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%w: the API server does not serve %s; is the CRD installed in this cluster?", err, kind.plural)
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
