package operator

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// Build builds the operator binary from the repository's ./cmd into dir
// and returns its path.
func Build(root, dir string) (string, error) {
	binary := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", binary, "./cmd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd: %w\n%s", err, out)
	}
	return binary, nil
}
