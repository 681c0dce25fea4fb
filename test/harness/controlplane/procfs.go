package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// envtest keeps its processes to itself; /proc finds them.

// childPID is the process ID of this process's child with the given command
// name (at most 15 characters, as the kernel keeps it).
func childPID(comm string) (int, error) {
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended meanwhile
		}
		name, state, ppid, ok := parseStat(string(raw))
		if !ok || ppid != self || name != comm || state == "Z" {
			continue
		}
		return strconv.Atoi(filepath.Base(filepath.Dir(path)))
	}
	return 0, fmt.Errorf("no child process %q", comm)
}

// parseStat reads the command name, state and parent of /proc/PID/stat:
// "PID (COMM) STATE PPID ...", where COMM may hold spaces and parentheses.
func parseStat(s string) (comm, state string, ppid int, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", "", 0, false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 2 {
		return "", "", 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return s[open+1 : end], fields[0], ppid, err == nil
}

// waitGone waits until a process has exited (a zombie holds no port), at
// most a minute.
func waitGone(pid int) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if _, state, _, ok := parseStat(string(raw)); ok && state == "Z" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
