package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A test of a refused address must not rely on the refusal to stay safe:
// were the check broken, a test of http://169.254.169.254/ would really
// connect there. Such tests run again in a child of the test binary, in a
// network namespace of its own whose only interface is loopback (the kernel
// answers every other address with "network is unreachable", so no packet
// leaves the machine), and in a mount namespace of its own whose
// /etc/hosts (isolatedHosts) resolves test names to internal addresses.
const (
	// isolatedTestEnv names, in the child, the test it runs isolated.
	isolatedTestEnv = "EXTRACTOR_TEST_ISOLATED"
	// extractorBinaryEnv hands the child the binary the parent built.
	extractorBinaryEnv = "EXTRACTOR_TEST_BINARY"
)

// isolatedHosts is /etc/hosts inside the isolated network: host names that
// resolve to the metadata service and to a Service ClusterIP.
const isolatedHosts = `127.0.0.1 localhost
::1 localhost
169.254.169.254 metadata.test
fd00:ec2::254 metadata6.test
10.96.0.1 kubernetes.test
`

// runIsolated reports whether the calling test runs in the isolated network.
// Outside it, it runs the test there as root and reports false once the
// child has passed or failed it; without root the test is skipped.
func runIsolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolatedTestEnv) == t.Name() {
		if err := checkIsolated(); err != nil {
			t.Fatalf("refusing to run outside an isolated network: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run in a network namespace of its own, where the refused addresses cannot be reached should the refusal fail")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), isolatedTestEnv+"="+t.Name(), extractorBinaryEnv+"="+extractorBinary)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("in an isolated network:\n%s", out)
	if err != nil {
		t.Fatalf("the isolated run failed: %v", err)
	}
	return false
}

// enterIsolatedNetwork prepares the child's namespaces, before any test
// runs: loopback up, and isolatedHosts, written to dir, as /etc/hosts.
func enterIsolatedNetwork(dir string) error {
	if err := checkIsolated(); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifreq, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifreq); err != nil {
		return fmt.Errorf("reading the flags of lo: %w", err)
	}
	ifreq.SetUint16(ifreq.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifreq); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	// Private first, so the bind mount stays in this mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mounts private: %w", err)
	}
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte(isolatedHosts), 0o644); err != nil {
		return err
	}
	if err := unix.Mount(hosts, "/etc/hosts", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mounting the test's /etc/hosts: %w", err)
	}
	return nil
}

// checkIsolated fails unless loopback is the only network interface.
func checkIsolated() error {
	interfaces, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range interfaces {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("interface %s is not loopback", i.Name)
		}
	}
	return nil
}
