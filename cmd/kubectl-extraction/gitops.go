package main

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Marks that GitOps tools leave on the objects they apply.
const (
	fluxKustomizationNameLabel      = "kustomize.toolkit.fluxcd.io/name"
	fluxKustomizationNamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
	fluxHelmReleaseNameLabel        = "helm.toolkit.fluxcd.io/name"
	fluxHelmReleaseNamespaceLabel   = "helm.toolkit.fluxcd.io/namespace"
	argoCDTrackingIDAnnotation      = "argocd.argoproj.io/tracking-id"
	argoCDInstanceLabel             = "app.kubernetes.io/instance"
)

// argoCDManagers are the field managers of Argo CD's application controller
// across its versions.
var argoCDManagers = []string{"argocd-controller", "argocd-application-controller"}

// gitOpsOwner names the GitOps tool and its object that apply obj, or returns
// "" when none does.
func gitOpsOwner(obj metav1.Object) string {
	labels, annotations := obj.GetLabels(), obj.GetAnnotations()
	if name := labels[fluxKustomizationNameLabel]; name != "" {
		return "Flux (Kustomization " + qualified(labels[fluxKustomizationNamespaceLabel], name) + ")"
	}
	if name := labels[fluxHelmReleaseNameLabel]; name != "" {
		return "Flux (HelmRelease " + qualified(labels[fluxHelmReleaseNamespaceLabel], name) + ")"
	}
	if id := annotations[argoCDTrackingIDAnnotation]; id != "" {
		// <app>:<group>/<kind>:<namespace>/<name>; the app may itself be <namespace>_<name>.
		app, _, _ := strings.Cut(id, ":")
		return fmt.Sprintf("Argo CD (Application %s)", app)
	}
	if app := labels[argoCDInstanceLabel]; app != "" {
		for _, entry := range obj.GetManagedFields() {
			for _, manager := range argoCDManagers {
				if entry.Manager == manager {
					return fmt.Sprintf("Argo CD (Application %s)", app)
				}
			}
		}
	}
	return ""
}

func qualified(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
