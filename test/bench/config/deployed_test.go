package config

import (
	"strconv"
	"strings"
	"testing"
)

// goMemLimitBytes parses the GOMEMLIMIT forms the Go runtime takes: a number
// of bytes with an optional B, KiB, MiB, GiB or TiB suffix.
func goMemLimitBytes(t *testing.T, v string) int64 {
	t.Helper()
	scale := int64(1)
	for i, suffix := range []string{"TiB", "GiB", "MiB", "KiB"} {
		if strings.HasSuffix(v, suffix) {
			v, scale = strings.TrimSuffix(v, suffix), int64(1)<<(10*(4-i))
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(v, "B"), 10, 64)
	if err != nil {
		t.Fatalf("GOMEMLIMIT %q: %v", v, err)
	}
	return n * scale
}

func TestTheOperatorShipsASoftMemoryLimitBelowItsContainerLimit(t *testing.T) {
	manager, err := ManagerContainer("../../..")
	if err != nil {
		t.Fatal(err)
	}
	env, err := DeployedEnv("../../..")
	if err != nil {
		t.Fatal(err)
	}
	var soft int64
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOMEMLIMIT="); ok {
			soft = goMemLimitBytes(t, v)
		}
	}
	if soft == 0 {
		t.Fatalf("the manager container sets no GOMEMLIMIT; env %v", env)
	}
	hard := manager.Resources.Limits.Memory().Value()
	// The soft limit counts the Go runtime's memory only; the rest of the
	// process needs room below the hard limit, or the GC is pushed to the
	// kernel's OOM killer.
	if soft > hard*80/100 {
		t.Errorf("GOMEMLIMIT %d bytes leaves less than 20 %% of the container's %d-byte limit", soft, hard)
	}
}

func TestGoMemLimitBytes(t *testing.T) {
	for v, want := range map[string]int64{"128MiB": 128 << 20, "1GiB": 1 << 30, "4096": 4096, "512KiB": 512 << 10, "100B": 100} {
		if got := goMemLimitBytes(t, v); got != want {
			t.Errorf("%s: got %d, want %d", v, got, want)
		}
	}
}
