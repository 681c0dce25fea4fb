// Package kube pins the control-plane commands built by hack/build-kube.sh.
// Importing their app packages keeps every dependency of the three binaries
// in this module's go.mod and go.sum after `go mod tidy`.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	// kubectl, built only on a machine that has none.
	_ "k8s.io/kubectl/pkg/cmd"
)
