package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Run runs a command and returns its stdout; stderr is added to the error.
func Run(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

// LastLine is the last line of a command's output, such as the kubeconfig
// path that hack/kwok-cluster.sh and hack/node.sh print last.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// EnvOr is the environment variable key, or fallback when it is unset or empty.
func EnvOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
