// Package kube pins the control-plane commands built by hack/build-kube.sh.
// Importing their app packages keeps every dependency of the three binaries
// in this module's go.mod and go.sum after `go mod tidy`.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
