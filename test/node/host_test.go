//go:build node

package node

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// hostState is what a real node changes on this machine and must give back
// on `hack/node.sh down`, read here independently of the script.
type hostState struct {
	// Processes are the node's: the kubelet, kube-proxy, containerd and its
	// shims (no one else runs them here), and anything whose command line
	// names the node's directory (its etcd and control plane).
	Processes []string
	// Mounts are mount points under the node's directories.
	Mounts []string
	// Cgroups are the kubelet's kubepods cgroups, in every hierarchy.
	Cgroups []string
	// Links are the machine's network interfaces (the bridge, veths).
	Links []string
	// Netns are the named network namespaces.
	Netns []string
	// Rules are iptables and ip6tables rules and chains, per table
	// (`iptables -S`, without counters).
	Rules []string
	// Sysctls are the kernel settings the kubelet, the bridge plugin and
	// kube-proxy may change.
	Sysctls map[string]string
	// Paths are directories a node may create outside its own.
	Paths []string
}

var nodeSysctls = []string{
	"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "vm/panic_on_oom",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
	"net/ipv4/conf/all/route_localnet", "net/netfilter/nf_conntrack_max",
}

// readHostState reads the state; nodeDir is the node's directory (bin/node),
// nodeBinaries the absolute paths of the binaries only a node runs.
func readHostState(nodeDir string, nodeBinaries []string) (hostState, error) {
	var s hostState
	var err error
	if s.Processes, err = nodeProcesses(nodeDir, nodeBinaries); err != nil {
		return s, err
	}
	if s.Mounts, err = mountsUnder(nodeDir, "/run/extraction-node"); err != nil {
		return s, err
	}
	s.Cgroups, _ = filepath.Glob("/sys/fs/cgroup/*/kubepods")
	links, err := net.Interfaces()
	if err != nil {
		return s, fmt.Errorf("listing network interfaces: %w", err)
	}
	for _, l := range links {
		s.Links = append(s.Links, l.Name)
	}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			s.Netns = append(s.Netns, e.Name())
		}
	}
	if s.Rules, err = firewallRules(); err != nil {
		return s, err
	}
	s.Sysctls = map[string]string{}
	for _, name := range nodeSysctls {
		if value, err := os.ReadFile(filepath.Join("/proc/sys", name)); err == nil {
			s.Sysctls[name] = strings.TrimSpace(string(value))
		}
	}
	for _, p := range []string{"/var/log/containers", "/var/lib/cni", "/run/extraction-node", "/var/run/netns"} {
		if _, err := os.Stat(p); err == nil {
			s.Paths = append(s.Paths, p)
		}
	}
	return s, nil
}

func nodeProcesses(nodeDir string, nodeBinaries []string) ([]string, error) {
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	var found []string
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil {
			continue // gone, or a kernel thread
		}
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		args := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		if slices.Contains(nodeBinaries, exe) || strings.Contains(args, nodeDir+"/") {
			found = append(found, fmt.Sprintf("pid %s: %s", filepath.Base(p), args))
		}
	}
	return found, nil
}

func mountsUnder(dirs ...string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var found []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		for _, d := range dirs {
			if fields[4] == d || strings.HasPrefix(fields[4], d+"/") {
				found = append(found, fields[4])
			}
		}
	}
	return found, scanner.Err()
}

// firewallRules lists the rules and chains of every table. An empty table
// that iptables-nft leaves once its last chain is gone lists nothing, so
// only rules and chains count.
func firewallRules() ([]string, error) {
	var rules []string
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			out, err := exec.Command(cmd, "-t", table, "-S").Output()
			if err != nil {
				continue // no such table in this kernel
			}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if strings.HasPrefix(line, "-P ") || line == "" {
					continue // the built-in chains' policies
				}
				rules = append(rules, cmd+" -t "+table+" "+line)
			}
		}
	}
	return rules, nil
}
