// Package harness is what the chaos, end-to-end and benchmark tests share:
// a control plane that survives kube-apiserver restarts (controlplane), the
// operator run as a process or in-process (operator), the simulated kubelet
// with the one plan grammar that the KWOK stages also play (sim), and
// builders for test objects (builders). This package itself finds the
// repository and the binaries the others need.
package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// module is the main module's path, which tells the repository's go.mod
// from the api/podcontract module's.
const module = "github.com/pybase/extraction-operator"

// RepoRoot is the repository's directory: the nearest directory above the
// working directory whose go.mod is the operator's module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(data), "module "+module+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", module)
		}
		dir = parent
	}
}

// AssetsDir is the directory with etcd and kube-apiserver: KUBEBUILDER_ASSETS,
// or else the newest bin/envtest-* that hack/build-tools.sh built.
func AssetsDir(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "bin", "envtest-*"))
	if len(dirs) == 0 {
		return "", fmt.Errorf("no KUBEBUILDER_ASSETS and no bin/envtest-*: run `make envtest-assets`")
	}
	return dirs[len(dirs)-1], nil
}

// Environment is the envtest environment every suite starts from: the
// binaries of AssetsDir and the operator's CRDs from config/crd/bases. A
// suite adds what it needs (API server flags, a scheme) before Start.
func Environment() (*envtest.Environment, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := AssetsDir(root)
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}, nil
}
