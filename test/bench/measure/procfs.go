package measure

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of utime and stime in /proc/PID/stat. Linux fixes it at
// 100 for user space on every architecture Go supports.
const userHZ = 100

// CPUSeconds is the user plus system CPU time a process has used so far.
func CPUSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	st, err := parseStat(string(raw))
	if err != nil {
		return 0, err
	}
	return float64(st.utime+st.stime) / userHZ, nil
}

type procStat struct {
	comm         string
	ppid         int
	utime, stime uint64
}

// parseStat reads /proc/PID/stat. The command name is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last ')'.
func parseStat(s string) (procStat, error) {
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("malformed stat line %q", s)
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15), 1-based as in proc(5).
	fields := strings.Fields(s[closing+1:])
	if len(fields) < 13 {
		return procStat{}, fmt.Errorf("short stat line %q", s)
	}
	ppid, err1 := strconv.Atoi(fields[1])
	utime, err2 := strconv.ParseUint(fields[11], 10, 64)
	stime, err3 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("malformed stat line %q", s)
	}
	return procStat{comm: s[open+1 : closing], ppid: ppid, utime: utime, stime: stime}, nil
}

// Memory is what /proc/PID/status says about a process's resident memory.
type Memory struct {
	RSS     int64 `json:"rssBytes"`
	PeakRSS int64 `json:"peakRssBytes"`
}

// ReadMemory reads a process's current and peak resident memory.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	return parseStatusMemory(f)
}

func parseStatusMemory(r io.Reader) (Memory, error) {
	var m Memory
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var target *int64
		switch name {
		case "VmRSS":
			target = &m.RSS
		case "VmHWM":
			target = &m.PeakRSS
		default:
			continue
		}
		fields := strings.Fields(value) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", name, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return m, err
		}
		*target = kb * 1024
	}
	return m, sc.Err()
}
