// Package kube pins the Kubernetes commands built by hack/build-tools.sh.
// Importing their app packages keeps every dependency of the five binaries
// in this module's go.mod and go.sum after `go mod tidy`.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	// The real node of test/node: a kubelet and kube-proxy next to the control plane.
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
	// kubectl, built only on a machine that has none.
	_ "k8s.io/kubectl/pkg/cmd"
)
